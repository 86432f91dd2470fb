"""Downloading a remote image ourselves: one GET through the client's session, loop and guard.

When the service cannot fetch a note's remote image (offline migration failed), imgsync downloads
it here and uploads the bytes like a local file. The download goes through the same machinery as
the API's calls (:mod:`imgsync.client.session`: user agent, proxies, secret-free reasons and logs;
:class:`~imgsync.client.transport.RetryLoop`: the one retry loop, here with
:data:`DOWNLOAD_ATTEMPTS`), plus what only a download of an arbitrary URL needs:

- the private-address guard (:mod:`imgsync.client.netguard`) on every connection, so every
  redirect hop, unless ``upload.allow_private_urls``: a shared note must not publish what only
  this machine or its network can reach;
- a byte cap, checked against ``Content-Length`` before reading and while reading;
- a deadline per attempt: no read may wait longer than ``timeout``, nor the whole body take longer.

Failures are :class:`DownloadError` (an :class:`~imgsync.errors.ItemError`: one image fails, the
run goes on) in plain words ("download failed: connection refused by example.com"), or the guard's
:class:`~imgsync.client.netguard.PrivateAddressError` ("refused: ..."). Neither quotes the URL: its
query string may hold a signature or a token. Whether the bytes are an image is the caller's
question (:mod:`imgsync.engine.imagefile`).

Usage (once per run; thread-safe)::

    with Downloader.from_settings(settings) as downloader:
        got = downloader.download(url, referer=settings.upload.referer,
                                  max_bytes=settings.upload.max_download_bytes,
                                  timeout=settings.upload.download_timeout)
        got.data, got.content_type, got.final_url
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NameResolutionError, ReadTimeoutError

from imgsync.client.netguard import GuardedAdapter, PrivateAddressError
from imgsync.client.session import USER_AGENT, HttpSession, reason, without_query
from imgsync.client.transport import RETRY_HTTP_STATUS_FLOOR, RetryLoop, RetryPolicy, TryAgain
from imgsync.config import Settings
from imgsync.errors import ItemError

__all__ = [
    "DOWNLOAD_ATTEMPTS",
    "DownloadError",
    "Downloaded",
    "Downloader",
    "PrivateAddressError",
]

# Attempts in all when the connection fails or the host answers 5xx: one more try covers a blip,
# and an image host that is down stays down for longer than a run should wait.
DOWNLOAD_ATTEMPTS = 2

# Bytes per read while downloading: small enough that the size cap and the deadline are enforced
# promptly, large enough that a 100 MB image is a couple of thousand reads.
DOWNLOAD_CHUNK = 64 * 1024

# The one answer that carries the image (a redirect is followed; 203, 206 and the like are not what
# a plain GET of an image should get).
HTTP_OK = 200

# How many of an exception's causes to look through for the OS-level one (requests wraps urllib3's
# MaxRetryError, which wraps NewConnectionError, which is raised from the OSError: a handful): a
# bound, so a long or odd chain of causes cannot cost more.
MAX_CAUSES = 16

SCHEMES = ("http", "https")


class DownloadError(ItemError):
    """A remote image could not be downloaded. The message says why in plain words and never
    quotes the URL (its query string may hold a token)."""


@dataclass(frozen=True)
class Downloaded:
    """The body of a successful download."""

    data: bytes = field(repr=False)
    #: The response's Content-Type header, "" when absent (a hint only: sniff the bytes).
    content_type: str
    #: Where the bytes came from after redirects: scheme, host and path, no query string.
    final_url: str


class Downloader:
    """Downloads remote images for one run. Thread-safe; :meth:`close` releases the connections.

    ``connect_timeout`` bounds each connection attempt; ``allow_private_urls`` switches the
    private-address guard off (the user's choice, ``upload.allow_private_urls``). ``policy``
    bounds the retry loop (default: :data:`DOWNLOAD_ATTEMPTS` attempts); ``session`` replaces the
    HTTP session (the guard is mounted on it; its owner closes it); ``sleep``, ``clock`` and
    ``rng`` drive the backoff between attempts and the deadline, real by default.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        allow_private_urls: bool = False,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        adapter = None if allow_private_urls else GuardedAdapter()
        self._http = HttpSession(session, adapter=adapter)
        self._connect_timeout = connect_timeout
        self._loop = RetryLoop(
            policy or RetryPolicy(max_attempts=DOWNLOAD_ATTEMPTS), sleep=sleep, rng=rng
        )
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> Downloader:
        """A downloader with the settings' connect timeout, backoff and private-address choice.

        The per-download limits (``upload.max_download_bytes``, ``upload.download_timeout``,
        ``upload.referer``) are arguments of :meth:`download`.
        """
        network = settings.network
        return cls(
            connect_timeout=network.connect_timeout,
            allow_private_urls=settings.upload.allow_private_urls,
            policy=RetryPolicy(DOWNLOAD_ATTEMPTS, network.backoff_initial, network.backoff_max),
            session=session,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )

    def close(self) -> None:
        """Release the connection pool (if the session was made here)."""
        self._http.close()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def download(
        self, url: str, *, referer: str = "", max_bytes: int, timeout: float
    ) -> Downloaded:
        """GET ``url`` (following redirects) and return its body, at most ``max_bytes`` long.

        ``referer`` is sent as the Referer header when set (hotlink-protected hosts). ``timeout``
        bounds each attempt: no read waits longer, and the whole body must arrive within it. A
        connection failure, a timeout or an HTTP 5xx is tried again (see :data:`DOWNLOAD_ATTEMPTS`);
        nothing else is.

        Raises :class:`DownloadError` (unreachable, refused, not HTTP 200, over the cap, empty,
        too slow) or :class:`~imgsync.client.netguard.PrivateAddressError` (a host whose address
        is not public, before connecting to it).
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise DownloadError(f"unsupported URL scheme {scheme!r}: only http and https")
        headers = {"User-Agent": USER_AGENT}
        if referer:
            headers["Referer"] = referer
        host = parts.hostname or parts.netloc

        def send(_token: str | None) -> Downloaded:
            deadline = self._clock() + timeout
            try:
                with self._http.request(
                    "GET",
                    url,
                    headers=headers,
                    timeout=(self._connect_timeout, timeout),
                    stream=True,
                    allow_redirects=True,
                ) as resp:
                    return self._read(resp, max_bytes, timeout, deadline)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                why = self._failure(exc, host, timeout)
                raise TryAgain(DownloadError(f"download failed: {why}"), why) from None
            except requests.RequestException as exc:  # too many redirects, a malformed URL, ...
                raise DownloadError(f"download failed: {reason(exc)}") from None

        return self._loop.run("download", without_query(url), send)

    def _read(
        self, resp: requests.Response, max_bytes: int, timeout: float, deadline: float
    ) -> Downloaded:
        status = resp.status_code
        if status != HTTP_OK:
            error = DownloadError(f"download failed: HTTP {status} {resp.reason or ''}".rstrip())
            if status >= RETRY_HTTP_STATUS_FLOOR:
                raise TryAgain(error, f"HTTP {status}")
            raise error
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise DownloadError(f"download is {int(declared)} bytes, over the {max_bytes}-byte cap")
        buf = bytearray()
        for chunk in resp.iter_content(DOWNLOAD_CHUNK):
            buf += chunk
            if len(buf) > max_bytes:
                raise DownloadError(f"download is over the {max_bytes}-byte cap")
            if self._clock() > deadline:
                raise DownloadError(f"download took longer than {timeout:g} s")
        if not buf:
            raise DownloadError("download is empty")
        return Downloaded(bytes(buf), resp.headers.get("Content-Type", ""), without_query(resp.url))

    def _failure(self, exc: requests.RequestException, host: str, timeout: float) -> str:
        """Plain words for a download that got no (whole) answer; names the host of the hop that
        failed (a redirect's target, maybe), never its URL."""
        if exc.request is not None and exc.request.url:
            host = urlsplit(exc.request.url).hostname or host
        causes = _causes(exc)
        if isinstance(exc, requests.ConnectTimeout):
            return f"{host} did not accept a connection within {self._connect_timeout:g} s"
        if isinstance(exc, requests.Timeout) or _any(causes, ReadTimeoutError):
            return f"the host did not answer within {timeout:g} s"
        if isinstance(exc, requests.exceptions.ProxyError):
            return f"the proxy could not connect to {host}"
        if isinstance(exc, requests.exceptions.SSLError):
            return f"the secure connection to {host} failed (TLS)"
        if _any(causes, NameResolutionError, socket.gaierror):
            return f"could not resolve host {host}"
        if _any(causes, ConnectionRefusedError):
            return f"connection refused by {host}"
        if _any(causes, ConnectionResetError):
            return f"connection reset by {host}"
        return reason(exc)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from, through requests' and urllib3's wrappers."""
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(found) < MAX_CAUSES:
        current = todo.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
        inner = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if isinstance(inner, BaseException):
            todo.append(inner)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return found


def _any(causes: list[BaseException], *kinds: type[BaseException]) -> bool:
    return any(isinstance(cause, kinds) for cause in causes)
