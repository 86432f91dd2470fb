"""What happens to every request before an endpoint sees it: it is logged, and it may be throttled.

The request log is how tests check what a client really sent (headers, body, spacing of polls)
without mocking it. The rate limiter answers code 429 the way the service does when a client
exceeds an endpoint's queries per second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Keep the newest entries only, so a long-running `imgsync emulator` does not grow without bound.
REQUEST_LOG_LIMIT = 20_000
REDACTED_BEARER = "Bearer <redacted>"
REDACTED = "<redacted>"
# The qps key that applies to every path without a key of its own.
ANY_PATH = "*"


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names as sent; the Authorization value hidden but its scheme kept."""
    result: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == "authorization":
            value = REDACTED_BEARER if value.startswith("Bearer ") else REDACTED
        result[name] = value
    return result


class RequestLog:
    """Every API, PUT and download request in arrival order (control-plane calls are not logged)."""

    def __init__(self, clock: Callable[[], float] = time.time, limit: int = REQUEST_LOG_LIMIT):
        self._lock = threading.Lock()
        self._clock = clock
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)

    def begin(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Iterable[tuple[str, str]],
        body: Any,
    ) -> dict[str, Any]:
        """Record a request as it arrives; :meth:`finish` fills in the answer."""
        entry: dict[str, Any] = {
            "time": self._clock(),
            "method": method,
            "path": path,
            "query": dict(query),
            "headers": redact_headers(headers),
            "json": body,
            "status": None,  # stays None when the connection was closed without an answer
            "code": None,
            "fault": None,  # the injected fault action, if any (our addition to the contract)
        }
        with self._lock:
            self._entries.append(entry)
        return entry

    def finish(
        self, entry: dict[str, Any], status: int | None, code: int | None, fault: str | None
    ) -> None:
        with self._lock:
            entry.update(status=status, code=code, fault=fault)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _Bucket:
    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)  # a one-second burst, at least one request
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """A token bucket per (clientID, path), sized from the current ``qps`` setting."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def allow(self, client_id: str, path: str, qps: Mapping[str, float]) -> bool:
        """Whether one more request fits; a rate of 0 (the default) never throttles."""
        rate = qps.get(path, qps.get(ANY_PATH, 0.0))
        if rate <= 0:
            return True
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get((client_id, path))
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[(client_id, path)] = _Bucket(rate, now)
            return bucket.take(now)

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
