"""The upload engine's front: each image goes up once, and only links that serve are handed out.

One item (a local path, a ``file://`` URI or an http(s) URL, as an editor hands it over) becomes
one :class:`UploadResult`. This module decides what to do with it; the work below it is split by
subject:

1. **cache** - ``stat`` the file; if the cache knows its md5 for this exact stat stamp, and the
   remote object for that md5, the answer costs no request and no read. This happens before the
   API layer (and ``requests``) is even imported: it is the path of every paste in an editor.
2. **check, hash, create, slices, complete, detail** - :mod:`imgsync.engine.transfer` reads and
  hashes
   the file (a small one exactly once) and puts the content on the image bed once: instant reuse
   when the service already holds it, else slices, completion and its polling, then the link and
   the content-review status. A rejected image fails its item and is never cached as good.
3. **folders and names** - :mod:`imgsync.engine.folders` finds or creates the configured folder and
   resolves same-name refusals without leaving duplicates.

Remote URLs are migrated by the service's offline download, or downloaded and uploaded here when
the service cannot fetch them (:mod:`imgsync.engine.remote`).

Failures of one item never raise: they become a failed :class:`UploadResult` with a clear
``error``. Only whole-run failures raise (authentication, configuration, an unusable cache),
because every other item would fail the same way.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgsync.engine.content import Content, load_local
from imgsync.engine.folders import ImageBedFolders
from imgsync.engine.items import is_url, item_key, resolve_item
from imgsync.engine.keyedlocks import KeyedLocks
from imgsync.engine.results import Kind, Status, UploadResult, failed_result
from imgsync.engine.transfer import FATAL_ERRORS, Transfer
from imgsync.errors import NetworkError
from imgsync.service import MAX_IMAGE_BYTES

if TYPE_CHECKING:
    from imgsync.client.api import Api, RemoteFile
    from imgsync.config import Settings
    from imgsync.store.cache import Cache, RemoteObject

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Helpers


def _is_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` is a whole-run failure: every other item would fail the same way, so the
    run stops (authentication, configuration, usage, an unusable cache)."""
    from imgsync.store.cache import CacheError

    return isinstance(exc, FATAL_ERRORS + (CacheError,))


# --------------------------------------------------------------------------------------------------
# The uploader


class Uploader:
    """Uploads local files and remote URLs; thread-safe; one per run (it holds the API session).

    Side effects are injected: ``api`` (created on first need from the settings, so a run answered
    from the cache never imports the HTTP stack), ``cache``, ``now`` (the date in folder and file
    names), ``sleep`` and ``clock`` (poll spacing and deadlines). The uploader hands them on to the
    parts it is built from: its image-bed folders (:mod:`imgsync.engine.folders`) and its transfer
    (:mod:`imgsync.engine.transfer`), which reach the API and the cache through it, so they stay
    lazy.
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
        self._url_locks = KeyedLocks()
        self._folders = ImageBedFolders(
            api=lambda: self.api, cache=lambda: self.cache, now=self._now
        )
        self._transfer = Transfer(
            settings,
            api=lambda: self.api,
            cache=lambda: self.cache,
            folders=self._folders,
            now=self._now,
            sleep=sleep,
            clock=clock,
        )
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
                from imgsync.store.cache import Cache

                self._cache = Cache.open(
                    self.settings.data_dir, namespace=self.settings.account.key
                )
            return self._cache

    @property
    def api(self) -> Api:
        """The API client (created on first use: a run answered from the cache never needs it)."""
        if self._outage is not None:
            raise NetworkError(f"not tried: {self._outage}")
        with self._api_lock:
            if self._api is None:
                from imgsync.client.api import Api

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
            prefixes = tuple(sorted(found | self.cache.link_folders()))
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
        return failed_result(shown, kind, exc)

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
            groups.setdefault(item_key(item), []).append(index)
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

    # -- storing content and folders (for imgsync.engine.remote)
    # -----------------------------------------

    def store(
        self, content: Content, *, name: str, ext: str, folder: str | None = None
    ) -> tuple[RemoteObject, Status]:
        """Put ``content`` on the image bed (once) and remember it; return the object and whether
        it was ``uploaded``, ``reused`` or (found meanwhile by another thread) ``cached``."""
        return self._transfer.store(content, name=name, ext=ext, folder=folder)

    def remember(
        self,
        remote: RemoteFile,
        *,
        md5: str | None = None,
        size: int | None = None,
        source_url: str | None = None,
    ) -> RemoteObject:
        """Check a remote file's review status and link, then cache it as good."""
        return self._transfer.remember(remote, md5=md5, size=size, source_url=source_url)

    def ensure_folder(self, template: str) -> str:
        """The ID of the image-bed folder ``template`` renders to, created on demand."""
        return self._folders.ensure(template)

    def find_file(self, folder_id: str, filename: str) -> RemoteFile | None:
        """The file named ``filename`` in the folder, found by listing it (None if absent)."""
        return self._folders.find_file(folder_id, filename)

    # -- remote URLs ------------------------------------------------------------------------------

    def _upload_remote(self, url: str) -> UploadResult:
        obj = self.cache.get_url(url)
        if obj is not None and not obj.rejected:
            return UploadResult(url, "remote", "cached", self._link(obj), obj.md5, obj.file_id)
        from imgsync.engine.remote import RemoteFetcher

        with self._api_lock:
            if self._remote is None:
                self._remote = RemoteFetcher(self)
        with self._url_locks.hold("url:" + url):
            obj = self.cache.get_url(url)
            if obj is not None and not obj.rejected:
                return UploadResult(url, "remote", "cached", self._link(obj), obj.md5, obj.file_id)
            obj, status = self._remote.fetch(url)
        return UploadResult(url, "remote", status, self._link(obj), obj.md5, obj.file_id)
