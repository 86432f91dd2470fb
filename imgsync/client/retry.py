"""The one retry loop: whether, when and how often a request is sent again.

Everything that decides *whether to send again* lives in :meth:`RetryLoop.run` and nowhere else:
the API's calls and the presigned PUT (:mod:`imgsync.client.transport`) and the image download
(:mod:`imgsync.client.download`) all send through it. A send step raises :class:`TryAgain` for a
failure worth another attempt; the loop waits (exponential backoff with jitter, a server's
``Retry-After`` honoured) and sends again, at most ``max_attempts`` times in all, fewer when the
failure says trying again soon will not help (a refused connection, a name that does not resolve:
:data:`imgsync.client.failures.FIRM_ATTEMPTS`).

While it waits, the loop says so: a notice names what failed and when the next attempt comes
("open-api.123pan.com did not answer within 60 s (create); retrying in 2.1 s (attempt 3 of 6)"),
at WARNING for the API (so a run waiting on the service is never silent on stderr) and at INFO
for image downloads (their failure is reported per image anyway). The first retry after rate
limiting is INFO: backing off from a 429 is routine, not news. No notice holds a secret: they
name hosts and endpoints, never URLs with their query strings.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from imgsync.client.limiter import RateLimiter
from imgsync.errors import AuthError, ImgsyncError

__all__ = ["CODE_UNAUTHORIZED", "RetryLoop", "RetryPolicy", "TokenSource", "TryAgain"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CODE_UNAUTHORIZED = 401


class TokenSource(Protocol):
    """What the retry loop needs from :class:`imgsync.client.tokens.TokenProvider`."""

    def token(self) -> str:
        """A bearer token valid now (fetching or loading one if needed)."""

    def invalidate_and_refresh(self, old_token: str, rejected: AuthError | None = None) -> str:
        """``old_token`` was refused with code 401: return a different one, or raise AuthError."""


class TryAgain(Exception):
    """Raised by a send step: this attempt failed in a way that may pass if sent again.

    ``error`` is what the caller gets when the attempts run out; ``reason`` says in words what
    failed (the retry notice shows it, so it names a host, never a URL with its query);
    ``retry_after`` is the server's ``Retry-After``, if any; ``attempts``, if set, caps the attempts
    for this kind of failure below the policy's; ``routine`` marks a failure whose first retry is
    no news (rate limiting).
    """

    def __init__(
        self,
        error: ImgsyncError,
        reason: str,
        retry_after: float | None = None,
        *,
        attempts: int | None = None,
        routine: bool = False,
    ) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.retry_after = retry_after
        self.attempts = attempts
        self.routine = routine


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop (from :class:`imgsync.config.NetworkSettings`)."""

    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0

    def delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure: exponential with "equal jitter".

        Half the exponential step is kept so waits still grow; the other half is random so many
        clients (or threads) hit by the same outage do not come back in lockstep. A server's
        Retry-After is honoured up to ``backoff_max``.
        """
        step = min(self.backoff_max, self.backoff_initial * (2 ** (failures - 1)))
        delay = step / 2 + rng.uniform(0, step / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    def attempts_for(self, retry: TryAgain) -> int:
        """How many attempts in all a failure of this kind gets."""
        if retry.attempts is None:
            return self.max_attempts
        return max(1, min(self.max_attempts, retry.attempts))


class RetryLoop:
    """Sends one request until it succeeds, fails for good, or runs out of attempts.

    Each attempt first waits for the rate limiter (under ``limit_key``) and, when authenticated,
    takes the current token. ``send(token)`` makes the attempt: it returns the result, raises
    :class:`TryAgain` for a failure worth another attempt (after a backoff, at most
    ``policy.max_attempts`` attempts in all, or the fewer the failure asks for), or raises anything
    else to end the loop. An :class:`~imgsync.errors.AuthError` on an authenticated attempt asks
    the token source for one refresh and sends once more.

    ``notice_level`` is the log level of the notice shown while the loop waits to retry.

    Thread-safe: the limiter and the token source lock for themselves; the loop keeps its state on
    the stack.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        limiter: RateLimiter | None = None,
        tokens: TokenSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        notice_level: int = logging.WARNING,
    ) -> None:
        self.policy = policy
        self._limiter = limiter or RateLimiter({})
        self._tokens = tokens
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._notice_level = notice_level

    def with_tokens(self, tokens: TokenSource) -> RetryLoop:
        """The same loop (policy, limiter, sleep, jitter, notices), authenticating with
        ``tokens``."""
        return RetryLoop(
            self.policy,
            limiter=self._limiter,
            tokens=tokens,
            sleep=self._sleep,
            rng=self._rng,
            notice_level=self._notice_level,
        )

    def run(
        self,
        endpoint: str,
        shown: str,
        send: Callable[[str | None], T],
        *,
        limit_key: str | None = None,
        authed: bool = False,
    ) -> T:
        """Run ``send`` until it returns; ``endpoint`` and ``shown`` (a URL without its query)
        name the request in log lines."""
        failures = 0
        refreshed = False
        while True:
            self._limiter.acquire(limit_key)
            token = self._require_tokens().token() if authed else None
            try:
                result = send(token)
            except TryAgain as retry:
                failures += 1
                attempts = self.policy.attempts_for(retry)
                if failures >= attempts:
                    # INFO, not WARNING: the raised error reaches the user; this is the trail.
                    log.info(
                        "%s %s: giving up after %d attempts (%s)",
                        endpoint,
                        shown,
                        failures,
                        retry.reason,
                    )
                    raise retry.error from None
                delay = self.policy.delay(failures, self._rng, retry.retry_after)
                level = logging.INFO if retry.routine and failures == 1 else self._notice_level
                log.log(
                    level,
                    "%s (%s); retrying in %.1f s (attempt %d of %d)",
                    retry.reason,
                    endpoint,
                    delay,
                    failures + 1,
                    attempts,
                )
                self._sleep(delay)
                continue
            except AuthError as exc:
                if token is None or refreshed:
                    raise
                refreshed = True
                log.info(
                    "%s: token rejected (code %s, trace %s); refreshing once",
                    endpoint,
                    exc.code,
                    exc.trace_id,
                )
                self._require_tokens().invalidate_and_refresh(token, exc)
                continue
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s %s: ok (attempt %d, trace %s)",
                    endpoint,
                    shown,
                    failures + 1,
                    getattr(result, "trace_id", "") or "-",  # an Envelope names its x-traceID
                )
            return result

    def _require_tokens(self) -> TokenSource:
        if self._tokens is None:
            raise AuthError(CODE_UNAUTHORIZED, "no token source configured")
        return self._tokens
