"""The transport under :mod:`imgsync.client.api`: session, timeouts, rate limiter and the one retry
loop.

Everything that decides *whether to send again* lives in :meth:`Transport.call` and nowhere else:

- connection errors, timeouts, HTTP 5xx, HTTP 429 and body code 429 are retried with exponential
  backoff and jitter, at most ``max_attempts`` times in all; a ``Retry-After`` header (seconds or
  an HTTP-date) on a 429 or 5xx is honoured up to ``backoff_max``;
- body code 401 on an authenticated call asks the token source for one refresh, then sends once more
  (that retry is not counted against ``max_attempts``: it is not a failure of the network);
- every other non-zero code is raised at once as the class :func:`imgsync.errors.api_error` picks.
  In particular code 20103 (still verifying) is *not* retried here: waiting for verification is the
  upload engine's policy, not the transport's.

Secrets never leave this module in a log line or an exception message: the Authorization header is
set by an auth hook (so no log sees it), presigned URLs are logged by path only (their query string
is a credential), and requests' own exception texts, which quote full URLs, are reduced to the OS
reason.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

import requests

from imgsync import __version__
from imgsync.client.limiter import RateLimiter
from imgsync.errors import (
    ApiError,
    AuthError,
    ItemError,
    NetworkError,
    RateLimited,
    ServerError,
    api_error,
)

log = logging.getLogger(__name__)

# The service wants this exact header on every API call; the presigned PUT must not carry it.
PLATFORM = "open_platform"
USER_AGENT = f"imgsync/{__version__}"

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

# requests quotes the full URL (query string included) in its exception texts; keep only the
# OS-level reason, e.g. "[Errno 111] Connection refused".
_ERRNO_REASON = re.compile(r"\[Errno -?\d+\] [^'\")]*")


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
# The transport


@dataclass(frozen=True, slots=True)
class Envelope:
    """A successful answer: the envelope's ``data`` and its ``x-traceID``."""

    data: Any
    trace_id: str


class _Retry(Exception):
    """Internal: this attempt may succeed if sent again; ``error`` is what to raise at the end."""

    def __init__(self, error: Exception, reason: str, retry_after: float | None = None) -> None:
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
        self._own_session = session is None
        self._session = session if session is not None else _environment_once(requests.Session())
        self._proxies: dict[str, dict[str, str]] = {}
        self._timeout = timeout
        self._policy = policy or RetryPolicy()
        self._limiter = limiter or RateLimiter({})
        self.tokens = tokens
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._api_headers = {
            "Platform": PLATFORM,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._put_headers = {"Content-Type": "application/octet-stream", "User-Agent": USER_AGENT}
        _install_query_redaction()

    def close(self) -> None:
        """Close the session if this transport created it (an injected one belongs to its owner)."""
        if self._own_session:
            self._session.close()

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
            resp = self._session.request(
                method,
                url,
                json=json,
                params=params,
                headers=self._api_headers,
                auth=_BearerAuth(token) if token is not None else _NO_BEARER,
                proxies=self._proxies_for(url),
                timeout=self._timeout,
                allow_redirects=False,
            )
            return self._read_envelope(resp, endpoint)

        return self._loop(endpoint, limit_key or endpoint, path, authed, send)

    def put(self, url: str, data: SliceData, length: int) -> None:
        """PUT one slice to a presigned URL: exact Content-Length, no Authorization, no Platform.

        The URL itself is the credential, so it is logged by path only.
        """
        make_body = _body_factory(data, length)
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
        headers = {**self._put_headers, "Content-Length": str(length)}

        def send(_token: str | None) -> Envelope:
            resp = self._session.request(
                "PUT",
                url,
                data=make_body(),
                headers=headers,
                auth=_PUT_HEADERS_ONLY,
                proxies=self._proxies_for(url),
                timeout=self._timeout,
                allow_redirects=False,
            )
            status = resp.status_code
            if 200 <= status < 300:
                # Storage answers 200 with an empty body. A body that is an API envelope (a
                # gateway in front of storage, or the emulator's code faults) is judged as one.
                if resp.content and resp.content.lstrip().startswith(b"{"):
                    return self._read_envelope(resp, "put_slice")
                return Envelope(None, "")
            # The body is not quoted: a storage error page may echo the signed request.
            message = f"upload refused: HTTP {status} {resp.reason}"
            if status >= RETRY_HTTP_STATUS_FLOOR:
                raise _Retry(
                    ServerError(status, message, endpoint="put_slice", http_status=status),
                    f"HTTP {status}",
                    _retry_after(resp),
                )
            if status == HTTP_TOO_MANY:
                raise _Retry(
                    RateLimited(status, message, endpoint="put_slice", http_status=status),
                    f"HTTP {status}",
                    _retry_after(resp),
                )
            raise ApiError(status, message, endpoint="put_slice", http_status=status)

        self._loop("put_slice", None, shown, False, send)

    # ---- the one retry loop --------------------------------------------------------------------

    def _loop(
        self,
        endpoint: str,
        limit_key: str | None,
        shown: str,
        authed: bool,
        send: Callable[[str | None], Envelope],
    ) -> Envelope:
        failures = 0
        refreshed = False
        while True:
            self._limiter.acquire(limit_key)
            token = self._token() if authed else None
            try:
                try:
                    result = send(token)
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise _Retry(self._network_error(endpoint, exc), _reason(exc)) from None
                except requests.exceptions.ChunkedEncodingError as exc:
                    raise _Retry(self._network_error(endpoint, exc), "connection broken") from None
            except _Retry as retry:
                failures += 1
                if failures >= self._policy.max_attempts:
                    # INFO, not WARNING: the raised error reaches the user; this is the trail.
                    log.info(
                        "%s %s: giving up after %d attempts (%s)",
                        endpoint,
                        shown,
                        failures,
                        retry.reason,
                    )
                    raise retry.error from None
                delay = self._policy.delay(failures, self._rng, retry.retry_after)
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
                    result.trace_id,
                )
            return result

    # ---- helpers --------------------------------------------------------------------------------

    def _proxies_for(self, url: str) -> dict[str, str] | None:
        """The environment's proxies for ``url``'s host, looked up once per host.

        Only for a session this transport made (see :func:`_environment_once`); an injected
        session keeps requests' own per-call lookup.
        """
        if not self._own_session:
            return None
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        proxies = self._proxies.get(key)
        if proxies is None:
            proxies = self._proxies[key] = requests.utils.get_environ_proxies(key)
        return proxies

    def _require_tokens(self) -> TokenSource:
        if self.tokens is None:
            raise AuthError(CODE_UNAUTHORIZED, "no token source configured")
        return self.tokens

    def _token(self) -> str:
        return self._require_tokens().token()

    def _network_error(self, endpoint: str, exc: Exception) -> NetworkError:
        return NetworkError(
            f"could not reach {self.host} ({endpoint}): {_reason(exc)}; "
            f"gave up after {self._policy.max_attempts} attempts"
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
            raise _Retry(error, f"HTTP {status}", _retry_after(resp))
        if status == HTTP_TOO_MANY or code == CODE_TOO_MANY:
            error = RateLimited(
                CODE_TOO_MANY,
                message or "too many requests",
                endpoint=endpoint,
                trace_id=trace_id,
                http_status=status,
            )
            raise _Retry(error, f"rate limited (trace {trace_id})", _retry_after(resp))
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
        return Envelope(body.get("data"), trace_id)


def _environment_once(session: requests.Session) -> requests.Session:
    """Read the environment's TLS settings once instead of on every request.

    With ``trust_env`` on, requests scans the whole environment for proxies and CA bundles on every
    call (a measurable share of a loopback call) and consults ~/.netrc. Proxies are still honoured,
    per host, through :meth:`Transport._proxies_for`; the CA bundle variables are read here.
    """
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


def _reason(exc: Exception) -> str:
    """A short, secret-free reason for a requests exception (its text quotes the full URL)."""
    if isinstance(exc, requests.Timeout):
        return "connect timeout" if isinstance(exc, requests.ConnectTimeout) else "read timeout"
    found = _ERRNO_REASON.search(str(exc))
    if found:
        return found.group(0).strip()
    text = str(exc)
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed without a response"
    if "reset" in text.lower():
        return "connection reset"
    return type(exc).__name__


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
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

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


# --------------------------------------------------------------------------------------------------
# urllib3 logs every request line at DEBUG, query string included; a presigned URL's query string is
# a credential. This filter keeps the path and drops the query from those records.


class _RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "?" in a for a in args):
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a
                for a in args
            )
        return True


_redaction_lock = threading.Lock()
_redaction_installed = False


def _install_query_redaction() -> None:
    global _redaction_installed
    with _redaction_lock:
        if not _redaction_installed:
            logging.getLogger("urllib3.connectionpool").addFilter(_RedactQuery())
            _redaction_installed = True
