"""The transport under :mod:`imgsync.client.api`: timeouts, envelopes and the one retry loop.

Everything that decides *whether to send again* lives in :meth:`RetryLoop.run` and nowhere else
(the API's calls, the presigned PUT and :mod:`imgsync.client.download` all send through it):

- connection errors, timeouts, HTTP 5xx, HTTP 429 and body code 429 are retried with exponential
  backoff and jitter, at most ``max_attempts`` times in all; a ``Retry-After`` header (seconds or
  an HTTP-date) on a 429 or 5xx is honoured up to ``backoff_max``;
- body code 401 on an authenticated call asks the token source for one refresh, then sends once more
  (that retry is not counted against ``max_attempts``: it is not a failure of the network);
- every other non-zero code is raised at once as the class :func:`imgsync.errors.api_error` picks.
  In particular code 20103 (still verifying) is *not* retried here: waiting for verification is the
  upload engine's policy, not the transport's.

A transport gets its token source when it is built (:meth:`Transport.with_tokens`); the call that
obtains a token (:mod:`imgsync.client.auth`) goes through the same transport, unauthenticated.

Secrets never leave this module in a log line or an exception message: the Authorization header is
set by an auth hook (so no log sees it), presigned URLs are logged by path only (their query string
is a credential), and requests' own exception texts, which quote full URLs, are reduced to the OS
reason (:mod:`imgsync.client.session`).
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests

from imgsync.client.limiter import RateLimiter
from imgsync.client.session import USER_AGENT, HttpSession, reason, without_query
from imgsync.errors import (
    ApiError,
    AuthError,
    ImgsyncError,
    ItemError,
    NetworkError,
    RateLimited,
    ServerError,
    api_error,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# The service wants this exact header on every API call; the presigned PUT must not carry it.
PLATFORM = "open_platform"

# Bytes per read when streaming a slice from a file: large enough that a 100 MB slice is a few
# thousand reads, small enough that memory stays flat whatever the slice size.
STREAM_CHUNK = 256 * 1024

# How much of a non-envelope response body an error message may quote: enough to recognise an HTML
# error page or a proxy's complaint, short enough to keep one log line one line.
BODY_EXCERPT = 120

# HTTP statuses this loop sends again. 429 also arrives as a body code (the service's usual way).
RETRY_HTTP_STATUS_FLOOR = 500
HTTP_TOO_MANY = 429
CODE_TOO_MANY = 429
CODE_UNAUTHORIZED = 401


class TokenSource(Protocol):
    """What the transport needs from :class:`imgsync.client.tokens.TokenProvider`."""

    def token(self) -> str:
        """A bearer token valid now (fetching or loading one if needed)."""

    def invalidate_and_refresh(self, old_token: str, rejected: AuthError | None = None) -> str:
        """``old_token`` was refused with code 401: return a different one, or raise AuthError."""


# --------------------------------------------------------------------------------------------------
# Auth hooks. Passing an explicit ``auth`` to requests also keeps ~/.netrc from adding its own
# Authorization header (requests consults netrc only when no auth is given).


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:  # never show the token
        return "<BearerAuth>"


class _Strip(requests.auth.AuthBase):
    """Removes the named headers, whoever set them (a caller's session headers, netrc)."""

    def __init__(self, *names: str) -> None:
        self._names = names

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        for name in self._names:
            r.headers.pop(name, None)
        return r


# access_token: Platform yes, Authorization no. Presigned PUT: neither (the reference says so).
_NO_BEARER = _Strip("Authorization")
_PUT_HEADERS_ONLY = _Strip("Authorization", "Platform")


# --------------------------------------------------------------------------------------------------
# Slice bodies


SliceData = bytes | bytearray | memoryview | IO[bytes] | Callable[[], IO[bytes]]


class _LimitedReader:
    """Streams exactly ``length`` bytes of a file-like; a short source is an ItemError, not a hang.

    ``__len__`` is what makes requests send ``Content-Length`` (instead of chunked encoding) for a
    streamed body.
    """

    def __init__(self, source: IO[bytes], length: int) -> None:
        self._source = source
        self._length = length
        self._left = length

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        chunk = self._source.read(want)
        if not chunk:
            raise ItemError(
                f"slice source ended {self._left} bytes short of its declared {self._length} "
                "(did the file change during the upload?)"
            )
        self._left -= len(chunk)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(STREAM_CHUNK):
            yield chunk


def _body_factory(data: SliceData, length: int) -> Callable[[], Any]:
    """Return a function giving a fresh body for each attempt, so a retried PUT starts over."""
    if isinstance(data, bytes | bytearray | memoryview):
        if len(data) != length:
            raise ValueError(f"slice is {len(data)} bytes, declared length {length}")
        return lambda: data
    if callable(data) and not hasattr(data, "read"):
        return lambda: _LimitedReader(data(), length)
    if hasattr(data, "seek") and hasattr(data, "tell"):
        start = data.tell()

        def rewind() -> _LimitedReader:
            data.seek(start)
            return _LimitedReader(data, length)

        return rewind
    raise TypeError("slice data must be bytes, a seekable binary file, or a callable returning one")


# --------------------------------------------------------------------------------------------------
# The one retry loop


class TryAgain(Exception):
    """Raised by a send step: this attempt failed in a way that may pass if sent again.

    ``error`` is what the caller gets when the attempts run out; ``reason`` is the short,
    secret-free text of the log line; ``retry_after`` is the server's ``Retry-After``, if any.
    """

    def __init__(self, error: ImgsyncError, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.retry_after = retry_after


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


class RetryLoop:
    """Sends one request until it succeeds, fails for good, or runs out of attempts.

    Each attempt first waits for the rate limiter (under ``limit_key``) and, when authenticated,
    takes the current token. ``send(token)`` makes the attempt: it returns the result, raises
    :class:`TryAgain` for a failure worth another attempt (after a backoff, at most
    ``policy.max_attempts`` attempts in all), or raises anything else to end the loop. An
    :class:`~imgsync.errors.AuthError` on an authenticated attempt asks the token source for one
    refresh and sends once more.

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
    ) -> None:
        self.policy = policy
        self._limiter = limiter or RateLimiter({})
        self._tokens = tokens
        self._sleep = sleep
        self._rng = rng or random.Random()

    def with_tokens(self, tokens: TokenSource) -> RetryLoop:
        """The same loop (policy, limiter, sleep, jitter) authenticating with ``tokens``."""
        return RetryLoop(
            self.policy, limiter=self._limiter, tokens=tokens, sleep=self._sleep, rng=self._rng
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
                if failures >= self.policy.max_attempts:
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
                log.info(
                    "%s %s: attempt %d failed (%s), retrying in %.2fs",
                    endpoint,
                    shown,
                    failures,
                    retry.reason,
                    delay,
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


# --------------------------------------------------------------------------------------------------
# The transport


@dataclass(frozen=True, slots=True)
class Envelope:
    """A successful answer: the envelope's ``data``, its ``x-traceID`` and the endpoint asked."""

    data: Any
    trace_id: str
    endpoint: str = ""

    @contextmanager
    def parsing(self) -> Iterator[None]:
        """Read ``data`` inside this block: a missing or mistyped field becomes a ServerError
        naming the endpoint and trace (the service broke its documented shape)."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ServerError(
                0,
                f"unexpected response data ({type(exc).__name__}: {exc})",
                endpoint=self.endpoint,
                trace_id=self.trace_id,
            ) from None


class Transport:
    """Sends requests to one 123pan base URL and turns answers into data or typed errors.

    Thread-safe: the session's connection pool is shared, the limiter and token source lock for
    themselves, and the loop keeps its state on the stack.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        tokens: TokenSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self._http = HttpSession(session)
        self._timeout = timeout
        self._loop = RetryLoop(
            policy or RetryPolicy(), limiter=limiter, tokens=tokens, sleep=sleep, rng=rng
        )
        self._api_headers = {
            "Platform": PLATFORM,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._put_headers = {"Content-Type": "application/octet-stream", "User-Agent": USER_AGENT}

    def with_tokens(self, tokens: TokenSource) -> Transport:
        """A transport on this one's session, limiter and retry policy that authenticates with
        ``tokens``.

        This is how the token source's own fetch (an unauthenticated call on this transport) and
        the authenticated calls share one connection pool; closing either closes that pool.
        """
        twin = copy.copy(self)
        twin._loop = self._loop.with_tokens(tokens)
        return twin

    def close(self) -> None:
        """Close the session if this transport created it (an injected one belongs to its owner)."""
        self._http.close()

    # ---- public entry points -------------------------------------------------------------------

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        authed: bool = True,
        limit_key: str | None = None,
    ) -> Envelope:
        """Send one API request (through the retry loop) and return its successful envelope.

        ``endpoint`` names the call in logs and errors; ``limit_key`` picks the rate-limiter bucket
        (defaults to ``endpoint``).
        """
        url = self.base_url + path

        def send(token: str | None) -> Envelope:
            with self._network_errors(endpoint):
                resp = self._http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=self._api_headers,
                    auth=_BearerAuth(token) if token is not None else _NO_BEARER,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
                return self._read_envelope(resp, endpoint)

        return self._loop.run(endpoint, path, send, limit_key=limit_key or endpoint, authed=authed)

    def put(self, url: str, data: SliceData, length: int) -> None:
        """PUT one slice to a presigned URL: exact Content-Length, no Authorization, no Platform.

        The URL itself is the credential, so it is logged by path only.
        """
        make_body = _body_factory(data, length)
        headers = {**self._put_headers, "Content-Length": str(length)}

        def send(_token: str | None) -> Envelope:
            with self._network_errors("put_slice"):
                resp = self._http.request(
                    "PUT",
                    url,
                    data=make_body(),
                    headers=headers,
                    auth=_PUT_HEADERS_ONLY,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            status = resp.status_code
            if 200 <= status < 300:
                # Storage answers 200 with an empty body. A body that is an API envelope (a
                # gateway in front of storage, or the emulator's code faults) is judged as one.
                if resp.content and resp.content.lstrip().startswith(b"{"):
                    return self._read_envelope(resp, "put_slice")
                return Envelope(None, "", "put_slice")
            # The body is not quoted: a storage error page may echo the signed request.
            message = f"upload refused: HTTP {status} {resp.reason}"
            if status >= RETRY_HTTP_STATUS_FLOOR:
                raise TryAgain(
                    ServerError(status, message, endpoint="put_slice", http_status=status),
                    f"HTTP {status}",
                    _retry_after(resp),
                )
            if status == HTTP_TOO_MANY:
                raise TryAgain(
                    RateLimited(status, message, endpoint="put_slice", http_status=status),
                    f"HTTP {status}",
                    _retry_after(resp),
                )
            raise ApiError(status, message, endpoint="put_slice", http_status=status)

        self._loop.run("put_slice", without_query(url), send)

    # ---- helpers --------------------------------------------------------------------------------

    @contextmanager
    def _network_errors(self, endpoint: str) -> Iterator[None]:
        """A request that did not get an answer (refused, reset, timed out) is worth another try;
        the error raised at the end names the host and the OS reason, never the URL."""
        try:
            yield
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TryAgain(self._network_error(endpoint, exc), reason(exc)) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise TryAgain(self._network_error(endpoint, exc), "connection broken") from None

    def _network_error(self, endpoint: str, exc: Exception) -> NetworkError:
        return NetworkError(
            f"could not reach {self.host} ({endpoint}): {reason(exc)}; "
            f"gave up after {self._loop.policy.max_attempts} attempts"
        )

    def _read_envelope(self, resp: requests.Response, endpoint: str) -> Envelope:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = None
        code: int | None = None
        message = ""
        trace_id = ""
        if isinstance(body, dict) and "code" in body:
            try:
                code = int(body["code"])
            except (TypeError, ValueError):
                code = None
            message = str(body.get("message") or "")
            trace_id = str(body.get("x-traceID") or "")

        if status >= RETRY_HTTP_STATUS_FLOOR:
            error = ServerError(
                code if code else status,
                message or resp.reason or "server error",
                endpoint=endpoint,
                trace_id=trace_id,
                http_status=status,
            )
            # A 503 in maintenance (or any 5xx) may say when to come back.
            raise TryAgain(error, f"HTTP {status}", _retry_after(resp))
        if status == HTTP_TOO_MANY or code == CODE_TOO_MANY:
            error = RateLimited(
                CODE_TOO_MANY,
                message or "too many requests",
                endpoint=endpoint,
                trace_id=trace_id,
                http_status=status,
            )
            raise TryAgain(error, f"rate limited (trace {trace_id})", _retry_after(resp))
        if code is None:
            if status == CODE_UNAUTHORIZED:
                raise AuthError(
                    CODE_UNAUTHORIZED, "unauthorized", endpoint=endpoint, http_status=status
                )
            excerpt = " ".join(resp.text[:BODY_EXCERPT].split())
            raise ServerError(
                status,
                f"not a 123pan API response (is base_url right?): {excerpt!r}",
                endpoint=endpoint,
                http_status=status,
            )
        if code != 0:
            raise api_error(code, message, endpoint=endpoint, trace_id=trace_id, http_status=status)
        return Envelope(body.get("data"), trace_id, endpoint)


def _retry_after(resp: requests.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for: a number of seconds or an HTTP-date (RFC 9110,
    10.2.3; gateways and CDNs send either). None when absent or unreadable."""
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" in an HTTP-date means UTC
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
