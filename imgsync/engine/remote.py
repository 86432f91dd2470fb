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

What came of the tries is remembered per URL (:mod:`imgsync.store.attempts`): the task started
for it, recorded as soon as the service names it, so a later run (after a kill, or after the poll
deadline) asks that task or finds its file by name instead of starting a second one; and a failure
(the service could not fetch the image and neither could imgsync, what it serves is not an image,
or the content review rejected it), with its reason and the time before which it is not tried
again (:func:`imgsync.engine.remote_policy.backoff_ns`). A failure of the user's own image bed
(unreachable, refusing a request) says nothing about the URL and is not remembered. A success
forgets everything.
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
from imgsync.engine import transfer as transfer_module
from imgsync.engine.content import Content
from imgsync.engine.folders import ImageBedFolders
from imgsync.engine.items import shown_url
from imgsync.engine.remote_policy import NS_PER_S, backoff_ns
from imgsync.engine.results import MIGRATED, Status
from imgsync.engine.transfer import ReviewRejected, Transfer
from imgsync.errors import ApiError, AuthError, ItemError, NotAnImage, PrivateAddressError
from imgsync.store.attempts import FAILED, NOT_IMAGE, PRIVATE_ADDRESS

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


class MigrationPending(ItemError):
    """The service's migration was still running at the deadline: the next run asks its task."""


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
        """Migrate ``url`` (or download and upload it); cache and return the object and status.

        A failure that is the URL's (see the module's docstring) is remembered before it is
        raised: :class:`~imgsync.errors.NotAnImage` for a link that is not an image, an
        :class:`~imgsync.errors.ItemError` saying why for the others.
        """
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ItemError(f"unsupported URL scheme {scheme!r}: only http and https")
        try:
            ext = url_extension(url)
            if ext is not None:
                try:
                    return self.migrate(url, ext), MIGRATED
                except OfflineFailed as exc:
                    log.info("%s: %s; downloading it here instead", shown_url(url), exc)
            try:
                data, image_ext = self.download(url)
            except ItemError as exc:  # unreachable, refused, not found, not an image, too big
                self._remember_failure(url, exc)
                raise
            content = Content.from_bytes(data)
            obj, status = self._transfer.store(content, name=url_stem(url), ext=image_ext)
        except ReviewRejected as exc:  # asking again gets the same verdict
            self._remember_failure(url, exc)
            raise
        self._cache.put_url(url, obj)
        return obj, status

    def _remember_failure(self, url: str, exc: ItemError) -> None:
        if isinstance(exc, NotAnImage):
            kind = NOT_IMAGE
        elif isinstance(exc, PrivateAddressError):
            kind = PRIVATE_ADDRESS  # forgotten once upload.allow_private_urls lets it through
        else:
            kind = FAILED
        attempt = self._cache.attempts.failed(url, str(exc), kind=kind, backoff_ns=backoff_ns)
        log.info(
            "%s: failure %d in a row remembered; not tried again for %g s",
            shown_url(url),
            attempt.failures,
            (attempt.next_try_ns - attempt.last_try_ns) / NS_PER_S,
        )

    # -- offline migration ------------------------------------------------------------------------

    def migrate(self, url: str, ext: str) -> RemoteObject:
        """Have the service fetch ``url`` into the remote folder; find and check the result.

        A task started for ``url`` in an earlier run and not settled is asked instead of starting
        another; a task started now is remembered as soon as the service names it.
        """
        name = migration_name(url, ext)
        folder_id, existing = self._folders.within(  # a folder that is gone is made again
            self.settings.upload.remote_folder,
            lambda folder: (folder, self._folders.find_file(folder, name)),
        )
        if existing is not None:
            log.info("%s: already migrated as %s", shown_url(url), existing.file_id)
            return self._transfer.remember(existing, source_url=url)
        attempt = self._cache.attempts.get(url)
        known = attempt.task_id if attempt is not None else ""
        # The reference's task IDs are numbers: anything else stored is not asked about.
        status = self._known_task_status(url, int(known)) if known.isdigit() else None
        task_id = int(known) if status is not None else self._start_task(url, name, folder_id)
        deadline = self._clock() + self.settings.upload.poll_deadline
        while status != TASK_DONE:
            if status == TASK_FAILED:
                raise OfflineFailed("the service could not fetch it")
            if self._clock() > deadline:
                raise MigrationPending(
                    f"the service's migration did not finish within "
                    f"{self.settings.upload.poll_deadline:g} s; the next run picks it up"
                )
            self._sleep(transfer_module.POLL_INTERVAL_S)
            status = self._api.offline_process(task_id).status
        found = self._folders.find_file(folder_id, name)
        if found is None:
            raise OfflineFailed(f"the service reported the migration done, but no {name} appeared")
        return self._transfer.remember(found, source_url=url)

    def _start_task(self, url: str, name: str, folder_id: str) -> int:
        """Start the service's offline download of ``url``; remember and return its task ID."""
        try:
            task = self._api.offline_download(url, file_name=name, business_dir_id=folder_id)
        except ApiError as exc:
            if exc.retryable or isinstance(exc, AuthError):
                raise
            # A URL the service will not take (or an account without offline download) may
            # still be fetched here.
            raise OfflineFailed(f"the service refused to fetch it ({exc.message})") from None
        self._cache.attempts.started_task(url, str(task.task_id))
        return task.task_id

    def _known_task_status(self, url: str, task_id: int) -> int | None:
        """The status of the task an earlier run started for ``url``, or None when the service no
        longer knows it (then a new task may be started)."""
        try:
            status = self._api.offline_process(task_id).status
        except ApiError as exc:
            if exc.retryable or isinstance(exc, AuthError):
                raise
            log.info("%s: task %s is unknown to the service (%s)", shown_url(url), task_id, exc)
            return None
        log.info("%s: asking task %s, started by an earlier run", shown_url(url), task_id)
        return status

    # -- our own download -------------------------------------------------------------------------

    def download(self, url: str) -> tuple[bytes, str]:
        """Download the image at ``url`` here; return its bytes and its real extension.

        Enforces ``upload.max_download_bytes`` and ``upload.download_timeout`` (the client's
        downloader), sends ``upload.referer`` if set, and checks the leading bytes: only an image
        the image bed takes goes on. A ``Content-Type`` that is not an image is
        :class:`~imgsync.errors.NotAnImage` (the downloader's judgement, before any byte is read).
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
