"""The transfer engine: each image goes up exactly once, and only links that serve are handed out.

One local image goes through these steps (docs/api-facts.md, "Upload"):

1. **cache** - ``stat`` the file; if the cache knows its md5 for this exact stat stamp, and the
   remote object for that md5, the answer costs no request and no read. This happens before the
   API layer (and ``requests``) is even imported: it is the path of every paste in an editor.
2. **check and hash** - a small image is read once, into memory: its kind is sniffed from those
   bytes, which are then hashed and uploaded. Anything else goes through
   :func:`imgsync.imagefile.check_image` (a readable, non-empty regular file of at most 100 MB whose
   leading bytes are an image), is hashed by streaming and streamed again slice by slice.
3. **create** in the configured folder (created on demand, IDs cached) under the configured name.
   ``reuse`` means the service already holds the bytes: done. A same-name refusal means an earlier
   run (perhaps killed) already put the file there: it is found by listing, so no duplicate
   appears; other content under that name gets the md5 added to the name.
4. **slices** - each slice gets a fresh upload URL just before its PUT; a failed PUT is retried
   with a new URL; slices of one file go up in parallel.
5. **complete** - ``upload_complete``; while the service is still verifying (``async``, code
   20103), ``upload_async_result`` at least 1 s apart until a deadline. The preuploadID is kept
   from step 3: the completion answers do not echo it.
6. **detail** - the link (``downloadURL``, or ``userSelfURL`` falling back to it) and the review
   status: above 100 the content review rejected the image and its link will not serve, so the
   item fails and nothing is cached as good.

Remote URLs are migrated by the service's offline download, or downloaded and uploaded here when
the service cannot fetch them (:mod:`imgsync.remote`).

Failures of one item never raise: they become a failed :class:`UploadResult` with a clear
``error``. Only whole-run failures raise (authentication, configuration, an unusable cache),
because every other item would fail the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from imgsync.errors import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    ApiError,
    AuthError,
    ConfigError,
    ImgsyncError,
    ItemError,
    NetworkError,
    StillVerifying,
    UsageError,
)

if TYPE_CHECKING:
    from imgsync.api import Api, CreateResult, RemoteFile
    from imgsync.cache import Cache, RemoteObject
    from imgsync.config import Settings
    from imgsync.imagefile import ImageFile

log = logging.getLogger(__name__)

# The service's size limit (api-facts.md, "Formats and size"), as in imagefile. Checked from
# ``stat`` on the cache-hit path too (without importing imagefile): a file that grew is re-checked.
MAX_IMAGE_BYTES = 100 * 1024 * 1024

# "请至少1秒后再次调用此接口": the reference's minimum spacing of async-result polls, used for
# offline-task progress too. Measured from the previous answer, so polls are >= 1 s apart however
# long a request takes.
POLL_INTERVAL_S = 1.0

# Attempts per slice, each with a fresh upload URL (the transport already retried each PUT on its
# own URL). An expired URL or a PUT that kept failing gets a new URL; four URLs is plenty.
SLICE_ATTEMPTS = 4

# Bytes per read when hashing a file too large to hold: a few hundred reads for 100 MB, flat memory.
HASH_CHUNK = 1024 * 1024

# The service's generic business error: it is how "same name exists" and "folder exists" arrive.
CODE_GENERIC = 1

Kind = Literal["local", "remote", "hosted"]
Status = Literal["uploaded", "reused", "cached", "migrated", "skipped", "failed"]


@dataclass(frozen=True)
class UploadResult:
    """What happened to one item given to the uploader.

    ``status``: ``uploaded`` (bytes sent), ``reused`` (the service already had them: instant upload,
    or an earlier run's file found by name), ``cached`` (answered from the local index, no request),
    ``migrated`` (a remote URL fetched by the service's offline download), ``skipped`` (already on
    the image bed), ``failed`` (``error`` says why). ``exit_code`` is the status the command line
    maps a failure to: 4 when the service could not be reached or kept failing, else 1.
    """

    input: str
    kind: Kind
    status: Status
    url: str | None = None
    md5: str | None = None
    file_id: str | None = None
    error: str | None = None
    exit_code: int = EXIT_OK

    @property
    def ok(self) -> bool:
        """Whether the item has a link that serves (or was left alone on purpose)."""
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        """The object ``imgsync upload --json`` prints for this item (docs/contract.md)."""
        return {
            "input": self.input,
            "ok": self.ok,
            "url": self.url,
            "md5": self.md5,
            "fileID": self.file_id,
            "error": self.error,
            "kind": self.kind,
            "status": self.status,
        }


class ReviewRejected(ItemError):
    """The service's content review rejected the image: its link will not serve."""


def cache_namespace(settings: Settings) -> str:
    """The cache namespace of the configured account: base URL + client ID.

    With only a pasted access token there is no client ID; a hash of the token stands in for it (the
    token itself never goes into the cache file). A new token then starts a new namespace, which
    costs one re-check per image, never a wrong link.
    """
    from imgsync.cache import account_namespace

    acc = settings.account
    token_hash = hashlib.sha256(acc.access_token.encode()).hexdigest()[:16]
    account = acc.client_id or f"token:{token_hash}"
    return account_namespace(acc.base_url, account)


# --------------------------------------------------------------------------------------------------
# Items


def is_url(text: str) -> bool:
    """Whether ``text`` is an http(s) URL (a remote image) rather than a local path."""
    return text[:8].lower().startswith(("http://", "https://"))


def resolve_item(text: str) -> Path | str:
    """Turn one command-line or editor item into a local Path or a remote URL string.

    Editors hand over paths in several spellings (docs/users.md): plain, percent-encoded (``%20``,
    encoded Chinese) and ``file://`` URIs. A plain path that exists wins over its decoded spelling,
    so a file really named ``a%20b.png`` still works.
    """
    from urllib.parse import unquote, urlsplit

    if is_url(text):
        return text
    if text[:7].lower() == "file://":
        parts = urlsplit(text)
        path = unquote(parts.path)
        if parts.netloc and parts.netloc.lower() != "localhost":
            path = f"//{parts.netloc}{path}"  # a UNC-style host; left for the OS to judge
        return Path(path)
    if "%" in text and not os.path.lexists(text):
        decoded = unquote(text)
        if os.path.lexists(decoded):
            return Path(decoded)
    return Path(text)


def _item_key(item: Path | str) -> str:
    """Identical items are uploaded once: paths compare by absolute spelling, URLs as given."""
    if isinstance(item, Path):
        return "path:" + os.path.abspath(item)
    if is_url(item):
        return "url:" + item
    return "path:" + os.path.abspath(item)


# --------------------------------------------------------------------------------------------------
# Local content


@dataclass(frozen=True)
class Content:
    """Bytes to upload: held in memory, or a file streamed slice by slice.

    ``stat`` is the stamp taken before hashing; a streamed file whose stamp changed before
    completion is refused rather than uploaded under the wrong md5.
    """

    md5: str
    size: int
    data: bytes | None = None
    path: Path | None = None
    stat: os.stat_result | None = None

    def slice_body(self, offset: int, length: int) -> bytes | memoryview | Callable[[], IO[bytes]]:
        """The body of one slice: bytes for held content, else a factory of fresh readers (a
        retried PUT must start from the slice's first byte again)."""
        if self.data is not None:
            if offset == 0 and length == len(self.data):
                return self.data
            return memoryview(self.data)[offset : offset + length]
        path = self.path
        assert path is not None

        def open_at() -> IO[bytes]:
            handle = open(path, "rb")  # noqa: SIM115 - the transport reads it to the end
            handle.seek(offset)
            return handle

        return open_at

    def check_unchanged(self) -> None:
        """Refuse a streamed file that changed since it was hashed."""
        if self.path is None or self.stat is None:
            return
        try:
            now = os.stat(self.path)
        except OSError as exc:
            raise ItemError(f"file vanished while uploading: {exc.strerror or exc}") from None
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            raise ItemError("file changed while uploading; run again to upload the new content")


def read_content(path: Path, size: int, st: os.stat_result, memory_threshold: int) -> Content:
    """Hash a checked file: into memory when it fits (one read), else streaming."""
    try:
        with open(path, "rb", buffering=0) as handle:
            if size <= memory_threshold:
                data = handle.readall()
                if len(data) != size:
                    raise ItemError("file changed while it was being read; run again")
                return Content(hashlib.md5(data).hexdigest(), size, data=data, stat=st)
            digest = hashlib.md5()
            total = 0
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
                total += len(chunk)
    except OSError as exc:
        raise ItemError(f"cannot read: {exc.strerror or exc}") from None
    if total != size:
        raise ItemError("file changed while it was being read; run again")
    return Content(digest.hexdigest(), size, path=path, stat=st)


# Open flags of imagefile.check_image: a FIFO swapped in after the stat must not block the open.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def load_local(path: Path, memory_threshold: int) -> tuple[ImageFile, Content]:
    """Check and hash a local image, reading a small one exactly once.

    A small image (up to ``memory_threshold``) is read whole in one go; its kind is sniffed from
    those bytes, which are then hashed and uploaded: no byte is read twice. Anything unusual (a
    missing file, a folder, a loop, no permission, a large or non-image file) goes through
    :func:`imagefile.check_image`, which raises the error that names the problem.
    """
    from imgsync import imagefile

    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError):
        fd = None
    data: bytes | None = None
    st: os.stat_result | None = None
    if fd is not None:
        try:
            st = os.fstat(fd)
            if stat_module.S_ISREG(st.st_mode) and 0 < st.st_size <= min(
                memory_threshold, imagefile.MAX_IMAGE_BYTES
            ):
                with open(fd, "rb", buffering=0, closefd=False) as handle:
                    data = handle.readall()
        except OSError:
            data = None
        finally:
            os.close(fd)
    if data is None or st is None:
        image = imagefile.check_image(path)  # raises the precise error, if there is one
        return image, read_content(path, image.size, image.stat, memory_threshold)
    kind = imagefile.sniff(data[: imagefile.SNIFF_BYTES])
    if kind is None:
        imagefile.check_image(path)  # raises "not an image", with what it looks like
        raise ItemError("file changed while it was being read; run again")
    if len(data) != st.st_size:
        raise ItemError("file changed while it was being read; run again")
    image_type = imagefile.IMAGE_TYPES[kind]
    image = imagefile.ImageFile(path, st.st_size, kind, image_type.ext, image_type.mime, st)
    return image, Content(hashlib.md5(data).hexdigest(), st.st_size, data=data, stat=st)


# --------------------------------------------------------------------------------------------------
# Helpers


class _KeyedLocks:
    """One lock per key, so two threads never upload the same content or create the same folder at
    once (the second then finds the first one's result), while different keys run in parallel."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list[Any]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


def _failure(item: str, kind: Kind, exc: BaseException) -> UploadResult:
    if isinstance(exc, ImgsyncError):
        # A file check names the path in its message; the result already carries the input.
        text = getattr(exc, "detail", None) or str(exc)
        return UploadResult(item, kind, "failed", error=text, exit_code=exc.exit_code)
    return UploadResult(
        item,
        kind,
        "failed",
        error=f"internal error: {type(exc).__name__}: {exc}",
        exit_code=EXIT_PARTIAL,
    )


# Whole-run failures: every other item would fail the same way, so the run stops.
_FATAL = (AuthError, ConfigError, UsageError)


def _is_fatal(exc: BaseException) -> bool:
    from imgsync.cache import CacheError

    return isinstance(exc, _FATAL + (CacheError,))


# --------------------------------------------------------------------------------------------------
# The uploader


class Uploader:
    """Uploads local files and remote URLs; thread-safe; one per run (it holds the API session).

    Side effects are injected: ``api`` (created on first need from the settings, so a run answered
    from the cache never imports the HTTP stack), ``cache``, ``now`` (the date in folder and file
    names), ``sleep`` and ``clock`` (poll spacing and deadlines).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        api: Api | None = None,
        cache: Cache | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._api = api
        self._owns_api = api is None
        self._cache = cache
        self._owns_cache = cache is None
        self._now = now or datetime.now
        self.sleep = sleep
        self.clock = clock
        self._api_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._content_locks = _KeyedLocks()
        self._folder_locks = _KeyedLocks()
        # Folder IDs confirmed during this run (the persistent cache may hold stale ones).
        self._folders: dict[str, str] = {}
        self._confirmed: set[str] = set()
        self._remote: Any = None
        # Set when an item failed because the service could not be reached even after the
        # transport's retries: the items after it fail at once instead of each waiting as long.
        self._outage: NetworkError | None = None
        self._prefixes: tuple[str, ...] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        api: Api | None = None,
        cache: Cache | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Uploader:
        """The uploader for ``settings``; ``api`` and ``cache`` are opened lazily when not given."""
        return cls(settings, api=api, cache=cache, now=now, sleep=sleep, clock=clock)

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def cache(self) -> Cache:
        """The local index (opened on first use)."""
        with self._cache_lock:
            if self._cache is None:
                from imgsync.cache import Cache

                self._cache = Cache.open(
                    self.settings.data_dir, namespace=cache_namespace(self.settings)
                )
            return self._cache

    @property
    def api(self) -> Api:
        """The API client (created on first use: a run answered from the cache never needs it)."""
        if self._outage is not None:
            raise NetworkError(f"not tried: {self._outage}")
        with self._api_lock:
            if self._api is None:
                from imgsync.api import Api

                self.settings.require_credentials()
                self._api = Api.from_settings(self.settings, sleep=self.sleep, clock=self.clock)
            return self._api

    def close(self) -> None:
        """Close what this uploader opened (not what it was given)."""
        if self._remote is not None:
            self._remote.close()
        if self._owns_api and self._api is not None:
            self._api.close()
            self._api = None
        if self._owns_cache and self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public operations ------------------------------------------------------------------------

    def upload_path(self, path: Path) -> UploadResult:
        """Upload one local image (or answer from the cache); never raises for an item failure."""
        shown = str(path)
        try:
            return self._upload_local(Path(path), shown)
        except BaseException as exc:
            return self._item_failed(shown, "local", exc)

    def upload_url(self, url: str) -> UploadResult:
        """Upload one remote image by URL: migrated by the service, else downloaded and uploaded.

        ``file://`` URLs are local files; URLs under ``upload.hosted_prefixes`` are left alone.
        """
        if url[:7].lower() == "file://":
            result = self.upload_path(Path(resolve_item(url)))
            return replace(result, input=url)
        if url.startswith(self._hosted_prefixes()):
            return UploadResult(url, "hosted", "skipped", url=url)
        try:
            return self._upload_remote(url)
        except BaseException as exc:
            return self._item_failed(url, "remote", exc)

    def _hosted_prefixes(self) -> tuple[str, ...]:
        """Where links on the user's image bed start: ``upload.hosted_prefixes``, plus the
        download folder (``https://host/uid/``) of every link this account was handed out."""
        with self._cache_lock:
            prefixes = self._prefixes
        if prefixes is None:
            found = {p for p in self.settings.upload.hosted_prefixes if p}
            for obj in self.cache.iter_objects():
                for link in (obj.download_url, obj.user_self_url):
                    folder = _url_folder(link)
                    if folder:
                        found.add(folder)
            prefixes = tuple(sorted(found))
            with self._cache_lock:
                self._prefixes = prefixes
        return prefixes

    def _item_failed(self, shown: str, kind: Kind, exc: BaseException) -> UploadResult:
        """The failed result for one item, or re-raise a whole-run failure."""
        if _is_fatal(exc) or not isinstance(exc, Exception):
            raise exc
        log.debug("%s failed", shown, exc_info=True)
        if isinstance(exc, NetworkError) and self._outage is None:
            self._outage = exc
        return _failure(shown, kind, exc)

    def upload_item(self, item: Path | str) -> UploadResult:
        """Upload a Path, or a string that is a URL or a local path."""
        if isinstance(item, Path):
            return self.upload_path(item)
        if is_url(item) or item[:7].lower() == "file://":
            result = self.upload_url(item)
        else:
            result = self.upload_path(Path(item))
        return replace(result, input=item)

    def upload_many(
        self,
        items: Sequence[Path | str],
        on_result: Callable[[int, UploadResult], None] | None = None,
    ) -> list[UploadResult]:
        """Upload ``items`` in parallel (``upload.concurrency`` at once); results in input order.

        Identical items are uploaded once and share the result. ``on_result(index, result)`` is
        called for every index as soon as its result is known, from worker threads, one call at a
        time. A whole-run failure (authentication, configuration, cache) stops the run and raises
        once the items already in flight have finished.
        """
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        results: list[UploadResult | None] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(_item_key(item), []).append(index)
        report_lock = threading.Lock()

        def run(indices: list[int]) -> None:
            result = self.upload_item(items[indices[0]])
            with report_lock:
                for index in indices:
                    shown = items[index] if isinstance(items[index], str) else str(items[index])
                    results[index] = replace(result, input=str(shown))
                    if on_result is not None:
                        on_result(index, results[index])  # type: ignore[arg-type]

        workers = max(1, min(self.settings.upload.concurrency, len(groups)))
        if workers == 1:
            for indices in groups.values():
                run(indices)
            return [r for r in results if r is not None]
        pool = ThreadPoolExecutor(workers, thread_name_prefix="imgsync-upload")
        try:
            futures = [pool.submit(run, indices) for indices in groups.values()]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            fatal = next((f.exception() for f in done if f.exception() is not None), None)
            if fatal is not None:
                raise fatal
        except BaseException:
            # Items not started yet are dropped; those already in flight are let finish.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return [r for r in results if r is not None]

    # -- local files ------------------------------------------------------------------------------

    def _upload_local(self, path: Path, shown: str) -> UploadResult:
        hit, known_md5 = self._cached_local(path)
        if hit is not None:
            return UploadResult(shown, "local", "cached", self._link(hit), hit.md5, hit.file_id)
        threshold = self.settings.upload.memory_threshold
        image, content = load_local(path, threshold)
        cache = self.cache
        if known_md5 != content.md5:
            cache.put_file_md5(path, image.stat, content.md5)
            obj = cache.get_object(content.md5, content.size)
            if obj is not None and not obj.rejected:
                return UploadResult(shown, "local", "cached", self._link(obj), obj.md5, obj.file_id)
        obj, status = self.store(content, name=path.stem, ext=image.ext)
        return UploadResult(shown, "local", status, self._link(obj), obj.md5, obj.file_id)

    def _cached_local(self, path: Path) -> tuple[RemoteObject | None, str | None]:
        """The cache-only answer for a local file: one stat, two indexed lookups, no read.

        Returns the good remote object if there is one, and the md5 known for the file if any.
        """
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None, None  # check_image explains what is wrong with the path
        if not stat_module.S_ISREG(st.st_mode) or not 0 < st.st_size <= MAX_IMAGE_BYTES:
            return None, None
        md5 = self.cache.get_file_md5(path, st)
        if md5 is None:
            return None, None
        obj = self.cache.get_object(md5, st.st_size)
        if obj is None or obj.rejected:
            return None, md5
        return obj, md5

    def _link(self, obj: RemoteObject) -> str:
        """The link to hand out: ``downloadURL``, or ``userSelfURL`` falling back to it."""
        if self.settings.upload.link == "userSelfURL" and obj.user_self_url:
            return obj.user_self_url
        return obj.download_url

    # -- storing content --------------------------------------------------------------------------

    def store(
        self, content: Content, *, name: str, ext: str, folder: str | None = None
    ) -> tuple[RemoteObject, Status]:
        """Put ``content`` on the image bed (once) and remember it; return the object and whether
        it was ``uploaded``, ``reused`` or (found meanwhile by another thread) ``cached``."""
        with self._content_locks.hold(f"{content.md5}:{content.size}"):
            obj = self.cache.get_object(content.md5, content.size)
            if obj is not None and not obj.rejected:
                return obj, "cached"
            folder_template = self.settings.upload.folder if folder is None else folder
            file_id, status = self._put(content, name, ext, folder_template)
            remote = self.api.detail(file_id)
            obj = self.remember(remote, md5=content.md5, size=content.size)
            return obj, status

    def remember(
        self,
        remote: RemoteFile,
        *,
        md5: str | None = None,
        size: int | None = None,
        source_url: str | None = None,
    ) -> RemoteObject:
        """Check a remote file's review status and link, then cache it as good."""
        from imgsync.cache import RemoteObject

        if remote.rejected:
            raise ReviewRejected(
                f"rejected by content review (status {remote.status}): the image bed will not "
                f"serve it ({remote.filename}, fileID {remote.file_id})"
            )
        if not remote.download_url:
            raise ItemError(f"the service gave no link for {remote.filename} ({remote.file_id})")
        obj = RemoteObject(
            md5=md5 or remote.etag,
            size=remote.size if size is None else size,
            file_id=remote.file_id,
            download_url=remote.download_url,
            user_self_url=remote.user_self_url or "",
            status=remote.status,
            filename=remote.filename,
        )
        if source_url is not None:
            self.cache.put_url(source_url, obj)
        else:
            self.cache.put_object(obj)
        return obj

    def _put(
        self, content: Content, name: str, ext: str, folder_template: str
    ) -> tuple[str, Status]:
        """create → (reuse | slices → complete); return the file ID and the status word."""
        from imgsync.naming import render_filename

        now = self._now()
        wanted = render_filename(
            self.settings.upload.filename, md5=content.md5, name=name, ext=ext, now=now
        )
        candidates = [wanted]
        unique = _with_hash(wanted, content.md5, ext, now)
        if unique != wanted:
            candidates.append(unique)
        folder_id = self.ensure_folder(folder_template)
        revalidated = False
        index = 0
        while index < len(candidates):
            filename = candidates[index]
            try:
                created = self.api.create(folder_id, filename, content.md5, content.size)
            except ApiError as exc:
                if exc.retryable or exc.code != CODE_GENERIC:
                    raise
                existing = self._find_file_or_none(folder_id, filename)
                if existing is None:
                    # Perhaps the cached folder was deleted on the image bed: look it up afresh.
                    if revalidated or not self._forget_unconfirmed(folder_template):
                        raise
                    revalidated = True
                    folder_id = self.ensure_folder(folder_template)
                    continue
                if existing.etag.lower() == content.md5 and existing.size == content.size:
                    # An earlier run (perhaps killed before it could cache) put it there.
                    log.info("%s already on the image bed as %s", filename, existing.file_id)
                    return existing.file_id, "reused"
                log.info("%s is taken by other content; adding the hash", filename)
                index += 1
                continue
            self._confirm(folder_template)
            if created.reuse:
                return created.file_id, "reused"
            return self._transfer(content, created, folder_id, filename), "uploaded"
        raise ItemError(f"the name {candidates[-1]} is taken by other content in that folder")

    def _find_file_or_none(self, folder_id: str, filename: str) -> RemoteFile | None:
        try:
            return self.find_file(folder_id, filename)
        except ApiError as exc:
            if exc.retryable or isinstance(exc, _FATAL):
                raise
            return None  # e.g. the folder does not exist (any more)

    def _transfer(
        self, content: Content, created: CreateResult, folder_id: str, filename: str
    ) -> str:
        """Send the slices and wait for completion; return the new file ID."""
        preupload_id = created.preupload_id
        slice_size = created.slice_size if created.slice_size > 0 else content.size
        count = max(1, -(-content.size // slice_size))
        self._send_slices(content, preupload_id, slice_size, count)
        content.check_unchanged()
        return self._complete(preupload_id, content, folder_id, filename)

    def _send_slices(
        self, content: Content, preupload_id: str, slice_size: int, count: int
    ) -> None:
        failed = threading.Event()

        def send(slice_no: int) -> None:
            if failed.is_set():
                return  # a sibling failed: the upload is lost anyway, save the bandwidth
            offset = (slice_no - 1) * slice_size
            length = min(slice_size, content.size - offset)
            body = content.slice_body(offset, length)
            for attempt in range(1, SLICE_ATTEMPTS + 1):
                url = self.api.get_upload_url(preupload_id, slice_no).presigned_url
                try:
                    self.api.put_slice(url, body, length)
                    return
                except ImgsyncError as exc:
                    if isinstance(exc, _FATAL) or attempt == SLICE_ATTEMPTS:
                        failed.set()
                        raise
                    log.info(
                        "slice %d/%d failed (%s); retrying with a fresh URL", slice_no, count, exc
                    )
                except ValueError as exc:  # the file ended early: it changed under us
                    failed.set()
                    raise ItemError(f"file changed while uploading ({exc}); run again") from None

        workers = min(count, self.settings.upload.slice_concurrency)
        if workers <= 1:
            for slice_no in range(1, count + 1):
                send(slice_no)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="imgsync-slice") as pool:
            futures = [pool.submit(send, n) for n in range(1, count + 1)]
            errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def _complete(self, preupload_id: str, content: Content, folder_id: str, filename: str) -> str:
        """Finish the upload; return the file ID.

        ``upload_complete`` until it stops answering 20103 ("still verifying, try again after
        1 s"), then, if it answered ``async``, ``upload_async_result`` until ``completed`` (20103
        there is "not yet" too). Every call waits >= 1 s after the previous answer; the whole
        wait is bounded by ``upload.poll_deadline``.
        """
        deadline_s = self.settings.upload.poll_deadline
        deadline = self.clock() + deadline_s
        completing = True  # still asking upload_complete; False once it answered async
        calls = 0
        last = self.clock()  # when the previous answer arrived
        while True:
            if calls:
                self.sleep(max(0.0, last + POLL_INTERVAL_S - self.clock()))
                if self.clock() > deadline:
                    break
            calls += 1
            try:
                if completing:
                    done = self.api.upload_complete(preupload_id)
                    if done.file_id and (done.completed or not done.is_async):
                        return done.file_id
                    completing = not done.is_async
                else:
                    result = self.api.upload_async_result(preupload_id)
                    if result.completed:
                        if result.file_id:
                            return result.file_id
                        break  # completed without a file: look for it by name below
            except StillVerifying:
                pass
            except ApiError as exc:
                if exc.retryable or isinstance(exc, _FATAL):
                    raise
                # A completion whose answer was lost and that was sent again may be refused
                # although the upload went through: then the file is in the folder by its name.
                found = self._find_uploaded(folder_id, filename, content)
                if found is not None:
                    return found
                raise
            last = self.clock()
        found = self._find_uploaded(folder_id, filename, content)
        if found is not None:
            return found
        raise ItemError(
            f"the service did not confirm the upload within {deadline_s:g} s ({calls} calls);"
            " run again later: the finished upload will be found, not repeated"
        )

    def _find_uploaded(self, folder_id: str, filename: str, content: Content) -> str | None:
        existing = self.find_file(folder_id, filename)
        if existing is not None and existing.etag.lower() == content.md5:
            return existing.file_id
        return None

    # -- folders ----------------------------------------------------------------------------------

    def ensure_folder(self, template: str) -> str:
        """The ID of the image-bed folder ``template`` renders to, created on demand.

        Each level is looked up in this run's memo, then the cache, then created; a level that
        already exists is found by listing its parent. ``""`` is the root.
        """
        parent = ""
        for key, name in self._folder_levels(template):
            folder_id = self._folders.get(key)
            if folder_id is None:
                with self._folder_locks.hold(key):
                    folder_id = self._folders.get(key)
                    if folder_id is None:
                        folder_id = self.cache.get_folder(key)
                        if folder_id is None:
                            folder_id = self._make_folder(name, parent)
                            self.cache.put_folder(key, folder_id)
                            self._confirmed.add(key)
                        self._folders[key] = folder_id
            parent = folder_id
        return parent

    def _folder_levels(self, template: str) -> list[tuple[str, str]]:
        """(cache key, name) of each level of the folder ``template`` renders to, top first."""
        from imgsync.naming import render_folder

        parts = render_folder(template, now=self._now())
        return [("/".join(parts[: depth + 1]), parts[depth]) for depth in range(len(parts))]

    def _confirm(self, template: str) -> None:
        """The service accepted a create in this folder: its cached IDs are right."""
        self._confirmed.update(key for key, _ in self._folder_levels(template))

    def _forget_unconfirmed(self, template: str) -> bool:
        """Forget the folder IDs of ``template`` that came from the cache and were not confirmed
        this run (the folder may have been deleted or moved); True if there were any."""
        stale = False
        for key, _ in self._folder_levels(template):
            with self._folder_locks.hold(key):
                if key in self._confirmed:
                    continue
                stale = True
                self._folders.pop(key, None)
                self.cache.forget_folder(key)
        return stale

    def _make_folder(self, name: str, parent_id: str) -> str:
        try:
            made = self.api.mkdir(name, parent_id)
            for folder in made:
                if folder.filename == name:
                    return folder.dir_id
            if made:
                return made[0].dir_id
            raise ItemError(f"the service created folder {name!r} but returned no ID")
        except ApiError as exc:
            if exc.retryable or exc.code != CODE_GENERIC:
                raise
            for entry in self.api.iter_files(parent_id):
                if entry.is_folder and entry.filename == name:
                    return entry.file_id
            raise

    def find_file(self, folder_id: str, filename: str) -> RemoteFile | None:
        """The file named ``filename`` in the folder, found by listing it (None if absent)."""
        for entry in self.api.iter_files(folder_id):
            if not entry.is_folder and entry.filename == filename:
                return entry
        return None

    # -- remote URLs ------------------------------------------------------------------------------

    def _upload_remote(self, url: str) -> UploadResult:
        obj = self.cache.get_url(url)
        if obj is not None and not obj.rejected:
            return UploadResult(url, "remote", "cached", self._link(obj), obj.md5, obj.file_id)
        from imgsync.remote import RemoteFetcher

        with self._api_lock:
            if self._remote is None:
                self._remote = RemoteFetcher(self)
        with self._content_locks.hold("url:" + url):
            obj = self.cache.get_url(url)
            if obj is not None and not obj.rejected:
                return UploadResult(url, "remote", "cached", self._link(obj), obj.md5, obj.file_id)
            obj, status = self._remote.fetch(url)
        return UploadResult(url, "remote", status, self._link(obj), obj.md5, obj.file_id)


def _url_folder(url: str) -> str | None:
    """``https://host/uid/x.png`` → ``https://host/uid/``: what every link of the account shares
    (downloadURL looks like ``https://vip.123pan.cn/<uid>/<fileId>.<ext>``)."""
    scheme, sep, rest = url.partition("://")
    parts = rest.split("/")
    if not sep or not scheme or len(parts) < 3:
        return None
    return f"{scheme}://{'/'.join(parts[:-1])}/"


def _with_hash(filename: str, md5: str, ext: str, now: datetime) -> str:
    """``filename`` made unique by content, for names the template did not make unique (the
    stem gives way if the name would be too long; md5 and extension stay)."""
    from imgsync.naming import render_filename

    if md5 in filename:
        return filename
    stem = filename[: -len(ext)] if ext and filename.lower().endswith(ext.lower()) else filename
    return render_filename("{name}-{md5}{ext}", md5=md5, name=stem, ext=ext, now=now)


# --------------------------------------------------------------------------------------------------
# Reporting helpers for front ends (the command line, the PicGo server)


class InOrder:
    """Hands results to ``emit`` in input order, each as soon as it and all before it are known.

    Use as ``on_result`` of :meth:`Uploader.upload_many`: the Typora protocol wants exactly one
    stdout line per item, in order, and a long upload should not hold back the lines before it.
    """

    def __init__(self, count: int, emit: Callable[[UploadResult], None]) -> None:
        self.results: list[UploadResult] = []
        self._count = count
        self._emit = emit
        self._waiting: dict[int, UploadResult] = {}
        self._lock = threading.Lock()

    def __call__(self, index: int, result: UploadResult) -> None:
        with self._lock:
            self._waiting[index] = result
            while len(self.results) in self._waiting:
                ready = self._waiting.pop(len(self.results))
                self.results.append(ready)
                self._emit(ready)

    def fail_rest(self, items: Sequence[str], error: str, exit_code: int) -> None:
        """Emit a failure for every item not reported yet (the run stopped early)."""
        with self._lock:
            for index in range(len(self.results), self._count):
                result = self._waiting.pop(index, None) or UploadResult(
                    str(items[index]),
                    "remote" if is_url(str(items[index])) else "local",
                    "failed",
                    error=error,
                    exit_code=exit_code,
                )
                self.results.append(result)
                self._emit(result)


def exit_status(results: Sequence[UploadResult]) -> int:
    """The command's exit status (docs/contract.md): 0 all done; 4 when every item failed because
    the service could not be reached or kept failing; else 1 if any item failed."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return EXIT_OK
    if len(failed) == len(results) and all(r.exit_code == EXIT_UNREACHABLE for r in failed):
        return EXIT_UNREACHABLE
    return EXIT_PARTIAL
