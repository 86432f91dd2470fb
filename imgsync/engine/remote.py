"""Remote images: let the service fetch them (offline migration), else fetch them here and upload.

Offline migration (docs/api-facts.md, "Offline migration") saves our bandwidth: the service
downloads the URL itself. Its progress answer names no file, so the task downloads into the
dedicated folder ``upload.remote_folder`` under a name we choose, and the result is found by
listing that folder.

The name is derived from the URL (a hash, plus the image extension the service wants to see), not
random: a run killed while a task was running finds the migrated file by name next time instead of
starting a second task and leaving a duplicate behind.

When the service cannot fetch the image (task status "failed": a host that blocks it, a URL only
reachable from here, a hotlink check that needs a Referer), imgsync downloads it itself, with a
timeout, a size cap, an optional Referer and a check that the bytes really are an image, and uploads
it like a local file. That download refuses hosts whose address is not public (loopback, LAN,
link-local: :mod:`imgsync.client.netguard`), at every redirect, unless
``upload.allow_private_urls``: the
image would otherwise publish what only this machine can reach. The service's own migration needs
no such check: it fetches from the internet, not from here. A URL without a recognisable image
extension skips the service's attempt: the offline API only takes image extensions.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from imgsync import __version__
from imgsync.engine.content import Content
from imgsync.engine.items import shown_url
from imgsync.engine.results import Status
from imgsync.engine.transfer import POLL_INTERVAL_S
from imgsync.errors import ApiError, AuthError, ItemError

if TYPE_CHECKING:
    from imgsync.engine.uploader import Uploader
    from imgsync.store.cache import RemoteObject

log = logging.getLogger(__name__)

# Extensions the offline API accepts (reference, offline section), mapped to the one we keep.
OFFLINE_EXTENSIONS = {
    ".png": ".png",
    ".gif": ".gif",
    ".jpeg": ".jpeg",
    ".jpg": ".jpg",
    ".tiff": ".tiff",
    ".tif": ".tif",
    ".webp": ".webp",
    ".svg": ".svg",
    ".bmp": ".bmp",
}

# Hex digits of the URL's sha256 in the migrated file's name: 128 bits, collision-free in practice.
NAME_HASH_CHARS = 32

# Offline task statuses (reference): 0 running, 1 failed, 2 done, 3 retrying.
TASK_FAILED = 1
TASK_DONE = 2

# Bytes per read while downloading: small enough that the size cap is enforced promptly.
DOWNLOAD_CHUNK = 64 * 1024

# Attempts for our own download when the connection fails or the host answers 5xx.
DOWNLOAD_ATTEMPTS = 2

USER_AGENT = f"imgsync/{__version__}"


class OfflineFailed(ItemError):
    """The service's offline download could not fetch the URL (we then try ourselves)."""


def migration_name(url: str, ext: str) -> str:
    """The image-bed name a migration of ``url`` gets: stable per URL, keeps the extension."""
    return hashlib.sha256(url.encode()).hexdigest()[:NAME_HASH_CHARS] + ext


def url_extension(url: str) -> str | None:
    """The image extension of the URL's path (lowercase, with the dot), or None."""
    path = unquote(urlsplit(url).path)
    ext = posixpath.splitext(path)[1].lower()
    return OFFLINE_EXTENSIONS.get(ext)


def url_stem(url: str) -> str:
    """The URL's file name without extension, for the ``{name}`` placeholder."""
    base = posixpath.basename(unquote(urlsplit(url).path))
    stem = posixpath.splitext(base)[0]
    return stem or "image"


class RemoteFetcher:
    """Brings remote images onto the image bed for one
    :class:`~imgsync.engine.uploader.Uploader`."""

    def __init__(self, uploader: Uploader) -> None:
        self.up = uploader
        self.settings = uploader.settings
        self._session: Any = None
        self._session_lock = threading.Lock()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def fetch(self, url: str) -> tuple[RemoteObject, Status]:
        """Migrate ``url`` (or download and upload it); cache and return the object and status."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ItemError(f"unsupported URL scheme {scheme!r}: only http and https")
        ext = url_extension(url)
        if ext is not None:
            try:
                return self.migrate(url, ext), "migrated"
            except OfflineFailed as exc:
                log.info("%s: %s; downloading it here instead", shown_url(url), exc)
        data, image_ext = self.download(url)
        content = Content.from_bytes(data)
        obj, status = self.up.store(content, name=url_stem(url), ext=image_ext)
        self.up.cache.put_url(url, obj)
        return obj, status

    # -- offline migration ------------------------------------------------------------------------

    def migrate(self, url: str, ext: str) -> RemoteObject:
        """Have the service fetch ``url`` into the remote folder; find and check the result."""
        api = self.up.api
        folder_id = self.up.ensure_folder(self.settings.upload.remote_folder)
        name = migration_name(url, ext)
        existing = self.up.find_file(folder_id, name)
        if existing is not None:
            log.info("%s: already migrated as %s", shown_url(url), existing.file_id)
            return self.up.remember(existing, source_url=url)
        try:
            task = api.offline_download(url, file_name=name, business_dir_id=folder_id)
        except ApiError as exc:
            if exc.retryable or isinstance(exc, AuthError):
                raise
            # A URL the service will not take (or an account without offline download) may
            # still be fetched here.
            raise OfflineFailed(f"the service refused to fetch it ({exc.message})") from None
        deadline = self.up.clock() + self.settings.upload.poll_deadline
        while True:
            self.up.sleep(POLL_INTERVAL_S)
            progress = api.offline_process(task.task_id)
            if progress.status == TASK_DONE:
                break
            if progress.status == TASK_FAILED:
                raise OfflineFailed("the service could not fetch it")
            if self.up.clock() > deadline:
                raise ItemError(
                    f"the service's migration did not finish within "
                    f"{self.settings.upload.poll_deadline:g} s; run again later to pick it up"
                )
        found = self.up.find_file(folder_id, name)
        if found is None:
            raise OfflineFailed(f"the service reported the migration done, but no {name} appeared")
        return self.up.remember(found, source_url=url)

    # -- our own download -------------------------------------------------------------------------

    def _requests_session(self) -> Any:
        with self._session_lock:
            if self._session is None:
                import requests

                session = requests.Session()
                session.headers["User-Agent"] = USER_AGENT
                if not self.settings.upload.allow_private_urls:
                    from imgsync.client.netguard import GuardedAdapter

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
        import requests

        from imgsync.engine import imagefile

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
        return data, _ext_of(kind)

    def _get(self, session: Any, url: str, headers: dict[str, str], timeout: Any) -> bytes:
        import requests

        cap = self.settings.upload.max_download_bytes
        deadline = self.up.clock() + self.settings.upload.download_timeout
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
                    if self.up.clock() > deadline:
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


def _ext_of(kind: str) -> str:
    from imgsync.engine.imagefile import IMAGE_TYPES

    return IMAGE_TYPES[kind].ext


def _reason(exc: Exception) -> str:
    """requests' messages quote whole URLs; keep the OS-level reason where there is one."""
    import re

    found = re.search(r"\[Errno -?\d+\] [^'\")]*", str(exc))
    if found:
        return found.group(0).strip()
    return type(exc).__name__
