"""Client-side spacing of requests per endpoint, and the one limiter per account in a process.

The service limits requests per client id and endpoint (the limits are undocumented; see
api-facts.md), whatever the number of connections, threads or Api objects. Spacing calls here
saves 429 round trips; the retry loop in :mod:`imgsync.client.transport` still copes when the
limits turn out tighter than configured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["RateLimiter", "shared_limiter"]


class RateLimiter:
    """Client-side spacing of requests, per endpoint key.

    Each key has its own schedule: the next call may start ``1/qps`` seconds after the previous
    one's slot. A caller reserves its slot under that key's own lock, then sleeps *outside* every
    lock, so a slow ``list`` never delays a ``detail``, and threads sharing a key queue in order.
    ``qps`` 0 (or a key not in the table) means unlimited. The service's limits are per client id
    and undocumented (see api-facts.md), so this is politeness that saves 429 round trips, not a
    guarantee.
    """

    def __init__(
        self,
        qps: Mapping[str, float],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._interval = {key: 1.0 / rate for key, rate in qps.items() if rate and rate > 0}
        self._next = dict.fromkeys(self._interval, 0.0)
        self._locks = {key: threading.Lock() for key in self._interval}

    def acquire(self, key: str | None) -> float:
        """Wait until a request under ``key`` may start; return the seconds waited."""
        interval = self._interval.get(key) if key is not None else None
        if interval is None:
            return 0.0
        with self._locks[key]:
            now = self._clock()
            slot = max(now, self._next[key])
            self._next[key] = slot + interval
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay


# Every limiter of this process that runs on real time, by account key and limits: two Api objects
# of one process (a watcher's and a server's, say) must not each take the account's whole allowance.
_SHARED_LIMITERS: dict[tuple[str, tuple[tuple[str, float], ...]], RateLimiter] = {}
_SHARED_LIMITERS_LOCK = threading.Lock()


def shared_limiter(account_key: str, qps: Mapping[str, float]) -> RateLimiter:
    """The process-wide limiter (real clock and sleep) for one account and one table of limits.

    ``account_key`` is :attr:`imgsync.config.AccountSettings.key`. A limiter built with an injected
    clock or sleep is the caller's own and is not shared.
    """
    key = (account_key, tuple(sorted(qps.items())))
    with _SHARED_LIMITERS_LOCK:
        limiter = _SHARED_LIMITERS.get(key)
        if limiter is None:
            limiter = _SHARED_LIMITERS[key] = RateLimiter(qps)
        return limiter
