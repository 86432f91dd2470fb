"""Downloading a remote image ourselves: one GET through the client's session, loop and guard.

When the service cannot fetch a note's remote image (offline migration failed), imgsync downloads
it here and uploads the bytes like a local file. The download goes through the same machinery as
the API's calls (:mod:`imgsync.client.session`: user agent, proxies, secret-free reasons and logs;
:class:`~imgsync.client.retry.RetryLoop`: the one retry loop, here with :data:`DOWNLOAD_ATTEMPTS`
and only one more try for a refused connection or a name that does not resolve), plus what only a
download of an arbitrary URL needs:

- the private-address guard (:mod:`imgsync.client.netguard`) on every connection, so every
  redirect hop, unless ``upload.allow_private_urls``: a shared note must not publish what only
  this machine or its network can reach;
- a byte cap, checked against ``Content-Length`` before reading and while reading;
- a deadline per attempt: no read may wait longer than ``timeout``, nor the whole body take longer;
- a ``Content-Type`` that is neither ``image/*`` nor absent (or ``application/octet-stream``) is
  not an image: :class:`~imgsync.errors.NotAnImage` ("not an image: the link serves text/html"),
  before the body is read. Untyped bytes are the caller's to sniff
  (:mod:`imgsync.engine.imagefile`).

Failures are :class:`DownloadError` (an :class:`~imgsync.errors.ItemError`: one image fails, the
run goes on) in plain words ("download failed: could not resolve example.com",
:mod:`imgsync.client.failures`; the raw exception text is logged at INFO, ``-v``), or the guard's
:class:`~imgsync.client.netguard.PrivateAddressError` ("refused: ..."). Neither quotes the URL: its
query string may hold a signature or a token.

Usage (once per run; thread-safe)::

    with Downloader.from_settings(settings) as downloader:
        got = downloader.download(url, referer=settings.upload.referer,
                                  max_bytes=settings.upload.max_download_bytes,
                                  timeout=settings.upload.download_timeout)
        got.data, got.content_type, got.final_url
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from imgsync.client.envelope import RETRY_HTTP_STATUS_FLOOR
from imgsync.client.failures import connection_failure, raw_text, request_failure
from imgsync.client.netguard import GuardedAdapter, PrivateAddressError
from imgsync.client.retry import RetryLoop, RetryPolicy, TryAgain
from imgsync.client.session import USER_AGENT, HttpSession, without_query
from imgsync.config import Settings
from imgsync.errors import ItemError, NotAnImage

__all__ = [
    "DOWNLOAD_ATTEMPTS",
    "DownloadError",
    "Downloaded",
    "Downloader",
    "NotAnImage",
    "PrivateAddressError",
]

log = logging.getLogger(__name__)

# Attempts in all when the connection fails or the host answers 5xx: one more try covers a blip,
# and an image host that is down stays down for longer than a run should wait.
DOWNLOAD_ATTEMPTS = 2

# Bytes per read while downloading: small enough that the size cap and the deadline are enforced
# promptly, large enough that a 100 MB image is a couple of thousand reads.
DOWNLOAD_CHUNK = 64 * 1024

# The one answer that carries the image (a redirect is followed; 203, 206 and the like are not what
# a plain GET of an image should get).
HTTP_OK = 200

# Content-Types that say nothing about what the bytes are: the bytes are sniffed instead. Any
# other type that is not image/* (a page, a video, JSON) means the link is not an image.
UNTYPED_CONTENT = frozenset({"", "application/octet-stream", "binary/octet-stream"})

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
        # Retry notices at INFO: an image that fails is reported on its own anyway.
        self._loop = RetryLoop(
            policy or RetryPolicy(max_attempts=DOWNLOAD_ATTEMPTS),
            sleep=sleep,
            rng=rng,
            notice_level=logging.INFO,
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
                # The hop that failed may be a redirect's target: name its host.
                hop = exc.request.url if exc.request is not None and exc.request.url else url
                failure = connection_failure(
                    exc,
                    urlsplit(hop).hostname or host,
                    connect_timeout=self._connect_timeout,
                    read_timeout=timeout,
                    scheme=urlsplit(hop).scheme,
                )
                log.info("download %s: %s (%s)", without_query(hop), failure.words, raw_text(exc))
                raise TryAgain(
                    DownloadError(f"download failed: {failure.words}"),
                    failure.words,
                    attempts=failure.attempts,
                ) from None
            except requests.RequestException as exc:  # too many redirects, a malformed URL, ...
                log.info("download %s: %s", without_query(url), raw_text(exc))
                raise DownloadError(f"download failed: {request_failure(exc)}") from None

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
        content_type = resp.headers.get("Content-Type", "")
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime not in UNTYPED_CONTENT and not mime.startswith("image/"):
            # Judged before reading a byte of it: a page or a video is not downloaded for nothing.
            raise NotAnImage(f"not an image: the link serves {mime}")
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
        return Downloaded(bytes(buf), content_type, without_query(resp.url))
