"""imgsync's own download of a remote image, for when the service's migration cannot fetch it.

This is the one module of the engine that talks HTTP itself (``requests``): it is kept apart so that
switching :class:`~imgsync.engine.remote.RemoteFetcher` to the client layer's downloader is a small
edit (this module goes; the fetcher's one ``download`` call is pointed at the client's).

The download has a timeout, a size cap, an optional Referer and a check that the bytes really are
an image. It refuses hosts whose address is not public (loopback, LAN, link-local:
:mod:`imgsync.client.netguard`), at every redirect, unless ``upload.allow_private_urls``: the image
would otherwise publish what only this machine can reach.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from imgsync import __version__
from imgsync.client.netguard import GuardedAdapter
from imgsync.engine import imagefile
from imgsync.engine.items import shown_url
from imgsync.errors import ItemError

if TYPE_CHECKING:
    from imgsync.config import Settings

log = logging.getLogger(__name__)

# Bytes per read while downloading: small enough that the size cap is enforced promptly.
DOWNLOAD_CHUNK = 64 * 1024

# Attempts for our own download when the connection fails or the host answers 5xx.
DOWNLOAD_ATTEMPTS = 2

USER_AGENT = f"imgsync/{__version__}"


class ImageDownload:
    """Downloads remote images with one HTTP session (opened on first use); thread-safe.

    ``clock`` bounds each whole download by ``upload.download_timeout``.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self._session: Any = None
        self._session_lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _requests_session(self) -> Any:
        with self._session_lock:
            if self._session is None:
                session = requests.Session()
                session.headers["User-Agent"] = USER_AGENT
                if not self.settings.upload.allow_private_urls:
                    adapter = GuardedAdapter()
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                self._session = session
            return self._session

    def download(self, url: str) -> tuple[bytes, str]:
        """Download the image at ``url``; return its bytes and its real extension.

        Enforces ``upload.max_download_bytes`` (from Content-Length, and while reading) and
        ``upload.download_timeout`` (for the whole download), and checks the leading bytes.
        """
        up = self.settings.upload
        headers = {"Referer": up.referer} if up.referer else {}
        timeout = (self.settings.network.connect_timeout, up.download_timeout)
        session = self._requests_session()
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                data = self._get(session, url, headers, timeout)
                break
            except _Transient as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise ItemError(f"download failed: {exc}") from None
                log.info("%s: download failed (%s); trying again", shown_url(url), exc)
            except requests.RequestException as exc:
                raise ItemError(f"download failed: {_reason(exc)}") from None
        kind = imagefile.sniff(data[: imagefile.SNIFF_BYTES])
        if kind is None:
            what = imagefile.describe(data[: imagefile.SNIFF_BYTES])
            raise ItemError(
                f"download is not an image the image bed takes (it looks like {what}); "
                f"accepted: {imagefile.ACCEPTED_KINDS_TEXT}"
            )
        return data, imagefile.IMAGE_TYPES[kind].ext

    def _get(self, session: Any, url: str, headers: dict[str, str], timeout: Any) -> bytes:
        cap = self.settings.upload.max_download_bytes
        deadline = self._clock() + self.settings.upload.download_timeout
        try:
            with session.get(url, headers=headers, timeout=timeout, stream=True) as resp:
                if resp.status_code >= 500:
                    raise _Transient(f"HTTP {resp.status_code} {resp.reason}")
                if resp.status_code != 200:
                    raise ItemError(f"download failed: HTTP {resp.status_code} {resp.reason}")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise ItemError(f"download is {int(declared)} bytes, over the {cap}-byte cap")
                if declared == "0":
                    raise ItemError("download is empty")
                buf = bytearray()
                for chunk in resp.iter_content(DOWNLOAD_CHUNK):
                    buf += chunk
                    if len(buf) > cap:
                        raise ItemError(f"download is over the {cap}-byte cap")
                    if self._clock() > deadline:
                        raise ItemError(
                            f"download took longer than {self.settings.upload.download_timeout:g} s"
                        )
                if not buf:
                    raise ItemError("download is empty")
                return bytes(buf)
        except requests.Timeout:
            raise _Transient(
                f"the host did not answer within {self.settings.upload.download_timeout:g} s"
            ) from None
        except requests.ConnectionError as exc:
            raise _Transient(_reason(exc)) from None


class _Transient(Exception):
    """A download failure worth one more try."""


def _reason(exc: Exception) -> str:
    """requests' messages quote whole URLs; keep the OS-level reason where there is one."""
    found = re.search(r"\[Errno -?\d+\] [^'\")]*", str(exc))
    if found:
        return found.group(0).strip()
    return type(exc).__name__
