"""Remote images: let the service fetch them (offline migration), else fetch them here and upload.

Offline migration (docs/api-facts.md, "Offline migration") saves our bandwidth: the service
downloads the URL itself. Its progress answer names no file, so the task downloads into the
dedicated folder ``upload.remote_folder`` under a name we choose, and the result is found by
listing that folder.

The name is derived from the URL (a hash, plus the image extension the service wants to see), not
random: a run killed while a task was running finds the migrated file by name next time instead of
starting a second task and leaving a duplicate behind.

When the service cannot fetch the image (task status "failed": a host that blocks it, a URL only
reachable from here, a hotlink check that needs a Referer), imgsync downloads it itself through
the client (:mod:`imgsync.client.download`: the client's session and retry policy, a timeout, a
size cap, an optional Referer, and no host whose address is not public), checks that the bytes are
an image, and uploads it like a local file. The
service's own migration needs no such address check: it fetches from the internet, not from here.
A URL without a recognisable image extension skips the service's attempt: the offline API only
takes image extensions.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from imgsync.engine import imagefile
from imgsync.engine.content import Content
from imgsync.engine.folders import ImageBedFolders
from imgsync.engine.items import shown_url
from imgsync.engine.results import MIGRATED, Status
from imgsync.engine.transfer import POLL_INTERVAL_S, Transfer
from imgsync.errors import ApiError, AuthError, ItemError

if TYPE_CHECKING:
    from imgsync.client.api import Api
    from imgsync.client.download import Downloader
    from imgsync.config import Settings
    from imgsync.store.cache import Cache, RemoteObject

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
    """Brings remote images onto the image bed: by the service's offline migration, else by
    downloading them here and storing them like a local file.

    Its collaborators are passed in ready: ``api`` starts and polls offline tasks, ``folders``
    finds the remote folder and the migrated file in it, ``transfer`` stores downloaded bytes and
    checks what the service made, ``cache`` remembers which URL became which object, ``clock``
    and ``sleep`` space the polls and bound their wait (and the download's).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        api: Api,
        cache: Cache,
        folders: ImageBedFolders,
        transfer: Transfer,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        downloader: Downloader | None = None,
    ) -> None:
        self.settings = settings
        self._api = api
        self._cache = cache
        self._folders = folders
        self._transfer = transfer
        self._clock = clock
        self._sleep = sleep
        # imgsync's own download, for what the service cannot fetch (see download()): made on
        # first use when not given, so a run that never needs it opens no second session.
        self._downloader = downloader
        self._owns_downloader = downloader is None
        self._downloader_lock = threading.Lock()

    def close(self) -> None:
        """Close what the fetcher opened (its download session)."""
        if self._owns_downloader and self._downloader is not None:
            self._downloader.close()
            self._downloader = None

    def fetch(self, url: str) -> tuple[RemoteObject, Status]:
        """Migrate ``url`` (or download and upload it); cache and return the object and status."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ItemError(f"unsupported URL scheme {scheme!r}: only http and https")
        ext = url_extension(url)
        if ext is not None:
            try:
                return self.migrate(url, ext), MIGRATED
            except OfflineFailed as exc:
                log.info("%s: %s; downloading it here instead", shown_url(url), exc)
        data, image_ext = self.download(url)
        content = Content.from_bytes(data)
        obj, status = self._transfer.store(content, name=url_stem(url), ext=image_ext)
        self._cache.put_url(url, obj)
        return obj, status

    # -- offline migration ------------------------------------------------------------------------

    def migrate(self, url: str, ext: str) -> RemoteObject:
        """Have the service fetch ``url`` into the remote folder; find and check the result."""
        name = migration_name(url, ext)
        folder_id, existing = self._folders.within(  # a folder that is gone is made again
            self.settings.upload.remote_folder,
            lambda folder: (folder, self._folders.find_file(folder, name)),
        )
        if existing is not None:
            log.info("%s: already migrated as %s", shown_url(url), existing.file_id)
            return self._transfer.remember(existing, source_url=url)
        try:
            task = self._api.offline_download(url, file_name=name, business_dir_id=folder_id)
        except ApiError as exc:
            if exc.retryable or isinstance(exc, AuthError):
                raise
            # A URL the service will not take (or an account without offline download) may
            # still be fetched here.
            raise OfflineFailed(f"the service refused to fetch it ({exc.message})") from None
        deadline = self._clock() + self.settings.upload.poll_deadline
        while True:
            self._sleep(POLL_INTERVAL_S)
            progress = self._api.offline_process(task.task_id)
            if progress.status == TASK_DONE:
                break
            if progress.status == TASK_FAILED:
                raise OfflineFailed("the service could not fetch it")
            if self._clock() > deadline:
                raise ItemError(
                    f"the service's migration did not finish within "
                    f"{self.settings.upload.poll_deadline:g} s; run again later to pick it up"
                )
        found = self._folders.find_file(folder_id, name)
        if found is None:
            raise OfflineFailed(f"the service reported the migration done, but no {name} appeared")
        return self._transfer.remember(found, source_url=url)

    # -- our own download -------------------------------------------------------------------------

    def download(self, url: str) -> tuple[bytes, str]:
        """Download the image at ``url`` here; return its bytes and its real extension.

        Enforces ``upload.max_download_bytes`` and ``upload.download_timeout`` (the client's
        downloader), sends ``upload.referer`` if set, and checks the leading bytes: only an image
        the image bed takes goes on.
        """
        up = self.settings.upload
        got = self._get_downloader().download(
            url, referer=up.referer, max_bytes=up.max_download_bytes, timeout=up.download_timeout
        )
        data = got.data
        kind = imagefile.sniff(data[: imagefile.SNIFF_BYTES])
        if kind is None:
            what = imagefile.describe(data[: imagefile.SNIFF_BYTES])
            raise ItemError(
                f"download is not an image the image bed takes (it looks like {what}); "
                f"accepted: {imagefile.ACCEPTED_KINDS_TEXT}"
            )
        return data, imagefile.IMAGE_TYPES[kind].ext

    def _get_downloader(self) -> Downloader:
        with self._downloader_lock:
            if self._downloader is None:
                # Imported here: remote images are the only reason to load the download stack.
                from imgsync.client.download import Downloader

                self._downloader = Downloader.from_settings(
                    self.settings, sleep=self._sleep, clock=self._clock
                )
            return self._downloader
