"""The upload engine's front: each image goes up once, and only links that serve are handed out.

One item (a local path, a ``file://`` URI or an http(s) URL, as an editor hands it over) becomes
one :class:`~imgsync.engine.results.UploadResult`. This module decides what to do with it; the work
below it is split by subject:

1. **cache** - :mod:`imgsync.engine.cached` answers what the local index knows without a read or a
   request. A job asks it first and builds an uploader only for the rest; the uploader asks it
   again (another thread or run may have stored the item meanwhile), and checks with one
   ``detail`` an entry the index cannot vouch for (too old, its review not ended) before its link
   is handed out: a deleted image is uploaded afresh, a rejected one reported.
2. **read and hash** - :mod:`imgsync.engine.content` reads a small image exactly once.
3. **create, slices, complete, detail** - :mod:`imgsync.engine.transfer` puts the content on the
   image bed once: instant reuse when the service already holds it, else slices, completion and
   its polling, then the link and the content-review status. A rejected image fails its item and
   is never cached as good.
4. **folders and names** - :mod:`imgsync.engine.folders` finds or creates the configured folder and
   resolves same-name refusals without leaving duplicates.

Remote URLs are migrated by the service's offline download, or downloaded and uploaded here when
the service cannot fetch them (:mod:`imgsync.engine.remote`), as the remote-image policy allows
(:mod:`imgsync.engine.remote_policy`, asked through the cache answers: ``sync.remote = "keep"``,
links that are not images, failures still in their back-off). A link found not to be an image is
``skipped`` with the reason, not failed.

Failures of one item never raise: they become a failed result with a clear ``error``. Only
whole-run failures raise (authentication, configuration, an unusable cache), because every other
item would fail the same way. Once the service proved unreachable (after the transport's retries),
the items after it fail at once instead of each waiting as long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from imgsync.client.api import Api
from imgsync.engine.cached import CacheAnswers
from imgsync.engine.content import load_local
from imgsync.engine.folders import ImageBedFolders
from imgsync.engine.items import Item, is_file_uri, is_url, item_key, resolve_item
from imgsync.engine.keyedlocks import KeyedLocks
from imgsync.engine.remote import RemoteFetcher
from imgsync.engine.results import CACHED, LOCAL, REMOTE, SKIPPED, Kind, UploadResult, failed_result
from imgsync.engine.review import ReviewCheck, recheck_reviews
from imgsync.engine.transfer import FATAL_ERRORS, Transfer
from imgsync.errors import CacheError, NetworkError, NotAnImage
from imgsync.store.cache import Cache

if TYPE_CHECKING:
    from imgsync.config import Settings

log = logging.getLogger(__name__)


class Uploader:
    """Uploads local files and remote URLs; thread-safe; one per run.

    Built from ready collaborators, as s3transfer's ``TransferManager(client, config)`` is: the
    ``api`` client, the ``cache`` (local index), the image-bed ``folders`` and the ``transfer``
    that moves content over them; ``sleep`` and ``clock`` space and bound the polls of remote
    migrations. :meth:`from_settings` builds the real ones. :meth:`close` closes only what
    ``close_with`` names (what the factory opened), never what a caller passed in.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        api: Api,
        cache: Cache,
        folders: ImageBedFolders,
        transfer: Transfer,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        close_with: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.settings = settings
        self.api = api
        self.cache = cache
        self.folders = folders
        self.transfer = transfer
        self._answers = CacheAnswers(settings, cache, trust=transfer.trust)
        self._remote = RemoteFetcher(
            settings,
            api=api,
            cache=cache,
            folders=folders,
            transfer=transfer,
            clock=clock,
            sleep=sleep,
        )
        self._url_locks = KeyedLocks()
        self._close_with = list(close_with)
        # Set when an item failed because the service could not be reached even after the
        # transport's retries: the items after it fail at once instead of each waiting as long.
        self._outage: NetworkError | None = None

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
        """The uploader for ``settings``, with its collaborators built.

        ``api`` and ``cache`` are opened here when not given (needing the account's credentials,
        and the data folder) and closed with the uploader; ``now`` dates folder and file names,
        ``sleep`` and ``clock`` drive the client's backoff and the engine's polls.
        """
        owned: list[Callable[[], None]] = []
        try:
            if api is None:
                settings.require_credentials()
                api = Api.from_settings(settings, sleep=sleep, clock=clock)
                owned.append(api.close)
            if cache is None:
                cache = Cache.open(settings.data_dir, namespace=settings.account.key)
                owned.append(cache.close)
        except BaseException:
            for close in reversed(owned):
                close()
            raise
        now = now or datetime.now
        folders = ImageBedFolders(api=api, cache=cache, now=now, use_cache=not settings.skip_index)
        transfer = Transfer(
            settings, api=api, cache=cache, folders=folders, now=now, sleep=sleep, clock=clock
        )
        return cls(
            settings,
            api=api,
            cache=cache,
            folders=folders,
            transfer=transfer,
            sleep=sleep,
            clock=clock,
            close_with=owned,
        )

    # -- life cycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close what this uploader opened (not what it was given)."""
        self._remote.close()
        while self._close_with:
            self._close_with.pop()()

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
            return self._item_failed(shown, LOCAL, exc)

    def upload_url(self, url: str) -> UploadResult:
        """Upload one remote image by URL: migrated by the service, else downloaded and uploaded.

        ``file://`` URLs are local files; URLs on the user's image bed are left alone.
        """
        if is_file_uri(url):
            result = self.upload_path(Path(resolve_item(url)))
            return replace(result, input=url)
        try:
            return self._answers.answer_url(url) or self._upload_remote(url)
        except BaseException as exc:
            return self._item_failed(url, REMOTE, exc)

    def upload_item(self, item: Item) -> UploadResult:
        """Upload a Path, or a string that is a URL or a local path."""
        if isinstance(item, Path):
            return self.upload_path(item)
        if is_url(item) or is_file_uri(item):
            result = self.upload_url(item)
        else:
            result = self.upload_path(Path(item))
        return replace(result, input=item)

    def upload_many(
        self,
        items: Sequence[Item],
        on_result: Callable[[int, UploadResult], None] | None = None,
    ) -> list[UploadResult]:
        """Upload ``items`` in parallel (``upload.concurrency`` at once); results in input order.

        Identical items are uploaded once and share the result. ``on_result(index, result)`` is
        called for every index as soon as its result is known, from worker threads, one call at a
        time. A whole-run failure (authentication, configuration, cache) stops the run and raises
        once the items already in flight have finished.
        """
        results: list[UploadResult | None] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item_key(item), []).append(index)
        report_lock = threading.Lock()

        def run(indices: list[int]) -> None:
            result = self.upload_item(items[indices[0]])
            with report_lock:
                for index in indices:
                    results[index] = replace(result, input=str(items[index]))
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

    def recheck_reviews(self) -> ReviewCheck:
        """Check every image of the index whose content review had not ended (``sync`` does it
        before reading the notes); see :func:`imgsync.engine.review.recheck_reviews`."""
        return recheck_reviews(self.cache, self.transfer)

    # -- local files ------------------------------------------------------------------------------

    def _upload_local(self, path: Path, shown: str) -> UploadResult:
        answers = self._answers
        found, known_md5 = answers.lookup_path(path)
        if found is not None:
            return answers.result(shown, LOCAL, CACHED, found)
        image, content = load_local(path, self.settings.upload.memory_threshold)
        if known_md5 != content.md5:
            self.cache.put_file_md5(path, image.stat, content.md5)
            found = answers.lookup_object(content.md5, content.size)
            if found is not None:
                return answers.result(shown, LOCAL, CACHED, found)
        self._check_outage()
        obj, status = self.transfer.store(content, name=path.stem, ext=image.ext)
        return answers.result(shown, LOCAL, status, obj)

    # -- remote URLs ------------------------------------------------------------------------------

    def _upload_remote(self, url: str) -> UploadResult:
        with self._url_locks.hold(url):
            # Another thread (or process) may have migrated it, or failed at it, meanwhile.
            answered = self._answers.answer_url(url)
            if answered is not None:
                return answered
            self._check_outage()
            known = None if self.transfer.trust.skip else self.cache.get_url(url)
            checked = self.transfer.vouched(known) if known is not None else None
            if checked is not None:
                self.cache.put_url(url, checked)
                return self._answers.result(url, REMOTE, CACHED, checked)
            obj, status = self._remote.fetch(url)
        return self._answers.result(url, REMOTE, status, obj)

    # -- failures ---------------------------------------------------------------------------------

    def _check_outage(self) -> None:
        """Fail at once once the service proved unreachable in this run (before any request)."""
        if self._outage is not None:
            raise NetworkError(f"not tried: {self._outage}")

    def _item_failed(self, shown: str, kind: Kind, exc: BaseException) -> UploadResult:
        """The failed result for one item, or re-raise a whole-run failure."""
        if _is_fatal(exc) or not isinstance(exc, Exception):
            raise exc
        log.debug("%s failed", shown, exc_info=True)
        if isinstance(exc, NotAnImage):  # left alone on purpose: a skip with its reason
            return UploadResult(shown, kind, SKIPPED, error=str(exc))
        if isinstance(exc, NetworkError) and self._outage is None:
            self._outage = exc
        return failed_result(shown, kind, exc)


def _is_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` is a whole-run failure: every other item would fail the same way, so the
    run stops (authentication, configuration, usage, an unusable cache)."""
    return isinstance(exc, (*FATAL_ERRORS, CacheError))
