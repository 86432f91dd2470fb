"""The transport under :mod:`imgsync.client.api`: timeouts, envelopes and the one retry loop.

Every request goes through :class:`~imgsync.client.retry.RetryLoop` (the API's calls, the
presigned PUT, and :mod:`imgsync.client.download`):

- connection errors, timeouts, HTTP 5xx with the envelope or from a gateway, HTTP 429 and body
  code 429 are retried with exponential backoff and jitter, at most ``max_attempts`` times in all
  (a ``Retry-After`` header is honoured up to ``backoff_max``); a refused connection or a name that
  does not resolve at most twice (:data:`imgsync.client.failures.FIRM_ATTEMPTS`): those are a wrong
  address or a network that is down, and six tries would only make the user wait;
- body code 401 on an authenticated call asks the token source for one refresh, then sends once more
  (that retry is not counted against ``max_attempts``: it is not a failure of the network);
- every other non-zero code is raised at once as the class :func:`imgsync.errors.api_error` picks.
  In particular code 20103 (still verifying) is *not* retried here: waiting for verification is the
  upload engine's policy, not the transport's;
- an answer that is not the API's (:mod:`imgsync.client.envelope`: a 404, a web page) says so.

Failures are told in words naming the host and what to check (:mod:`imgsync.client.failures`):
"127.0.0.1:8080 refused the connection (tried 2 times): check account.base_url …". The raw
exception text is logged at INFO (``-v``), with query strings cut.

A transport gets its token source when it is built (:meth:`Transport.with_tokens`); the call that
obtains a token (:mod:`imgsync.client.auth`) goes through the same transport, unauthenticated.

Secrets never leave this module in a log line or an exception message: the Authorization header is
set by an auth hook (so no log sees it), presigned URLs are logged by path only (their query string
is a credential), and requests' own exception texts, which quote full URLs, never reach a message.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from imgsync.client.envelope import (
    HTTP_TOO_MANY,
    RETRY_HTTP_STATUS_FLOOR,
    Envelope,
    read_envelope,
    retry_after,
)
from imgsync.client.failures import connection_failure, raw_text
from imgsync.client.limiter import RateLimiter
from imgsync.client.retry import RetryLoop, RetryPolicy, TokenSource, TryAgain
from imgsync.client.session import USER_AGENT, HttpSession, without_query
from imgsync.errors import ApiError, ConfigError, ItemError, NetworkError, RateLimited, ServerError

__all__ = ["STREAM_CHUNK", "Envelope", "RetryPolicy", "SliceData", "Transport"]

log = logging.getLogger(__name__)

# The service wants this exact header on every API call; the presigned PUT must not carry it.
PLATFORM = "open_platform"

# Bytes per read when streaming a slice from a file: large enough that a 100 MB slice is a few
# thousand reads, small enough that memory stays flat whatever the slice size.
STREAM_CHUNK = 256 * 1024

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
    streamed body. :meth:`close` closes the source when it was opened for this reader (``owned``);
    a file the caller handed in stays open, for the caller to close.
    """

    def __init__(self, source: IO[bytes], length: int, *, owned: bool = False) -> None:
        self._source = source
        self._length = length
        self._left = length
        self._owned = owned

    def close(self) -> None:
        if self._owned:
            self._source.close()

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
        return lambda: _LimitedReader(data(), length, owned=True)
    if hasattr(data, "seek") and hasattr(data, "tell"):
        start = data.tell()

        def rewind() -> _LimitedReader:
            data.seek(start)
            return _LimitedReader(data, length)

        return rewind
    raise TypeError("slice data must be bytes, a seekable binary file, or a callable returning one")


# --------------------------------------------------------------------------------------------------
# The transport


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
            with self._network_errors(endpoint, url):
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

        host = urlsplit(url).netloc

        def send(_token: str | None) -> Envelope:
            body = make_body()
            try:
                with self._network_errors("put_slice", url, api=False):
                    resp = self._http.request(
                        "PUT",
                        url,
                        data=body,
                        headers=headers,
                        auth=_PUT_HEADERS_ONLY,
                        timeout=self._timeout,
                        allow_redirects=False,
                    )
            finally:
                if isinstance(body, _LimitedReader):
                    body.close()  # a file opened for this attempt; requests never closes a body
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
                    f"{host} answered HTTP {status}",
                    retry_after(resp),
                )
            if status == HTTP_TOO_MANY:
                raise TryAgain(
                    RateLimited(status, message, endpoint="put_slice", http_status=status),
                    f"{host} asks to slow down (HTTP {status})",
                    retry_after(resp),
                    routine=True,
                )
            raise ApiError(status, message, endpoint="put_slice", http_status=status)

        self._loop.run("put_slice", without_query(url), send)

    # ---- helpers --------------------------------------------------------------------------------

    @contextmanager
    def _network_errors(self, endpoint: str, url: str, *, api: bool = True) -> Iterator[None]:
        """A request that got no answer (refused, reset, timed out) may be worth another try; the
        error raised at the end says in words what happened and what to check, naming the host
        (``api``: the configured base URL's; else the URL's), never the URL. The raw text is for
        ``-v``."""
        try:
            yield
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            parts = urlsplit(url)
            failure = connection_failure(
                exc,
                self.host if api else parts.netloc,
                connect_timeout=self._timeout[0],
                read_timeout=self._timeout[1],
                scheme=parts.scheme,
            )
            log.info("%s %s: %s (%s)", endpoint, without_query(url), failure.words, raw_text(exc))
            if api and failure.wrong_scheme:
                # https:// against plain HTTP (or the reverse): the configuration, not the network.
                raise ConfigError(
                    f"{failure.words} in account.base_url (it is {self.base_url!r})"
                ) from None
            attempts = self._loop.policy.max_attempts
            if failure.attempts is not None:
                attempts = max(1, min(attempts, failure.attempts))
            tries = "tried once" if attempts == 1 else f"tried {attempts} times"
            where = f"account.base_url ({self.base_url}), " if api else ""
            error = NetworkError(
                f"{failure.words} ({endpoint}; {tries}): check {where}{failure.hint}"
            )
            raise TryAgain(error, failure.words, attempts=failure.attempts) from None

    def _read_envelope(self, resp: requests.Response, endpoint: str) -> Envelope:
        return read_envelope(resp, endpoint, base_url=self.base_url)
