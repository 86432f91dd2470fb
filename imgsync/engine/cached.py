"""Answers from the local index alone: the path of every paste in an editor.

Most items an editor hands over were uploaded before. For a local file the answer costs one
``stat`` and two indexed lookups (path + size + mtime -> md5, md5 -> object), no read and no
request; a URL costs one lookup, and one already on the user's image bed none at all. A job asks
here first and builds an :class:`~imgsync.engine.uploader.Uploader` (and its API client) only for
the items left over, so a run answered from the cache never imports the HTTP stack.

The index answers alone only what it may vouch for (:class:`IndexTrust`): an entry the service
confirmed within ``cache.verify_after``, whose content review had ended and did not reject it. Any
other entry falls through to the uploader, which checks it with one ``detail`` before its link is
handed out (:meth:`imgsync.engine.transfer.Transfer.vouched`); with ``--no-cache`` the index
answers nothing at all.

Remote URLs are also answered here when the remote-image policy says no request is to be made
(:mod:`imgsync.engine.remote_policy`): every link under ``sync.remote = "keep"``, links that are
clearly not images, and URLs that failed in an earlier run and whose back-off has not passed. A
re-sync of a vault full of dead links thus sends nothing and loads no HTTP library.

Only the standard library, the index and the engine's light modules are imported here: importing
``requests``, the API client or the markdown parser from this module would cost every paste.
"""

from __future__ import annotations

import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from imgsync.config import REMOTE_KEEP
from imgsync.engine.items import Item, local_path
from imgsync.engine.remote_policy import KEPT, not_image_reason, remembered
from imgsync.engine.results import (
    CACHED,
    FAILED,
    HOSTED,
    LOCAL,
    REMOTE,
    SKIPPED,
    Kind,
    Status,
    UploadResult,
)
from imgsync.service import MAX_IMAGE_BYTES
from imgsync.store.attempts import NOT_IMAGE, PRIVATE_ADDRESS

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.store.cache import Cache, RemoteObject

# Hears of one item's result: its index among the items given, and the result.
OnResult = Callable[[int, UploadResult], None]
# Uploads the items the index could not answer, reporting each result by its position among them.
UploadRest = Callable[[Sequence[Item], OnResult], object]

# The link settings' word for the custom-domain link (docs/contract.md, ``upload.link``).
USER_SELF_URL = "userSelfURL"

NS_PER_S = 1_000_000_000


class IndexTrust:
    """When the local index may hand out a link without asking the service.

    An entry is vouched for while the service confirmed it within ``cache.verify_after`` (its
    ``checked_ns``), its content review has ended and did not reject it; with
    ``settings.skip_index`` (``--no-cache``) no entry is. ``clock_ns`` is the wall clock (Unix
    nanoseconds) the entries' ages are judged by.
    """

    def __init__(self, settings: Settings, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.skip = settings.skip_index
        self.verify_after_ns = int(settings.cache.verify_after_s * NS_PER_S)
        self._clock_ns = clock_ns

    def vouches_for(self, obj: RemoteObject) -> bool:
        """Whether ``obj``'s link may be handed out from the index alone."""
        return not (self.skip or obj.rejected or obj.review_pending or self.stale(obj))

    def stale(self, obj: RemoteObject) -> bool:
        """Whether the service last confirmed ``obj`` longer than ``cache.verify_after`` ago."""
        return self._clock_ns() - obj.checked_ns > self.verify_after_ns


class CacheAnswers:
    """Answers items from the local index alone, or says it cannot (None); thread-safe.

    Also the one place that decides which link of a remote object is handed out, where links
    on the user's image bed start, and which remote links are not to be tried (the policy, links
    that are not images, failures still in their back-off), for the uploader's answers as much as
    its own. ``clock_ns`` (the wall clock) judges the back-offs.
    """

    def __init__(
        self,
        settings: Settings,
        cache: Cache,
        *,
        trust: IndexTrust | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        # Which entries may be answered alone; the uploader passes the one its transfer uses.
        self.trust = trust or IndexTrust(settings, clock_ns)
        self._cache = cache
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._prefixes: tuple[str, ...] | None = None

    # -- answers ----------------------------------------------------------------------------------

    def answer(self, item: Item) -> UploadResult | None:
        """The result for ``item`` if the index alone knows it, else None (it needs uploading).

        ``input`` is the item as given (a Path shown as its string).
        """
        path = local_path(item)
        if path is None:
            assert isinstance(item, str)
            return self.answer_url(item)
        found, _ = self.lookup_path(path)
        if found is None:
            return None
        return self.result(str(item), LOCAL, CACHED, found)

    def answer_url(self, url: str) -> UploadResult | None:
        """The answer for a remote URL that needs no request, or None (it is to be migrated).

        A URL already on the user's image bed is ``skipped`` (kind ``hosted``, its link kept).
        Under ``sync.remote = "keep"``, and for a link that is clearly not an image, ``skipped``
        with the reason. One migrated before is ``cached``. One that failed earlier and whose
        back-off has not passed is ``failed`` with "failed earlier (why); retry after <time>"
        (``skipped`` when it was found not to be an image), unless ``sync.retry_failed``.
        """
        if url.startswith(self.hosted_prefixes()):
            return UploadResult(url, HOSTED, SKIPPED, url=url)
        if self.settings.sync.remote == REMOTE_KEEP:
            return UploadResult(url, REMOTE, SKIPPED, error=KEPT)
        why = not_image_reason(url)
        if why is not None:
            return UploadResult(url, REMOTE, SKIPPED, error=why)
        found = self.lookup_url(url)
        if found is not None:
            return self.result(url, REMOTE, CACHED, found)
        if self.settings.sync.retry_failed:
            return None
        attempt = self._cache.attempts.get(url)
        earlier = remembered(
            attempt, self._clock_ns(), private_allowed=self.settings.upload.allow_private_urls
        )
        if earlier is None or attempt is None:
            return None
        status = SKIPPED if attempt.kind == NOT_IMAGE else FAILED
        return UploadResult(url, REMOTE, status, error=earlier)

    def held_until_ns(self, url: str) -> int | None:
        """Until when (wall clock, ns) a URL that failed earlier is answered from that failure
        under these settings, with no request (as :meth:`answer_url` answers it); None when a run
        would try it now. A job that keeps its settings (the watcher) waits this long before
        trying it again, instead of running passes that would try nothing."""
        if self.settings.sync.retry_failed:
            return None
        attempt = self._cache.attempts.get(url)
        earlier = remembered(
            attempt, self._clock_ns(), private_allowed=self.settings.upload.allow_private_urls
        )
        return None if earlier is None or attempt is None else attempt.next_try_ns

    def settled_until_ns(self, url: str) -> int | None:
        """Until when (wall clock, ns) the answer for ``url`` stays what it is without a request:
        0 for good (a link on the image bed, one migrated before, a link that is not an image by
        its host or extension), the end of its back-off for a failure remembered, None when it
        may change on any run (it needs a request, or hangs on a setting the user may change:
        ``sync.remote = "keep"``, ``--retry-failed``, a private address refused).

        A job uses it to stamp a note whose only unfinished links are such URLs as clean until
        the earliest of these times (:attr:`~imgsync.store.cache.NoteStamp.recheck_ns`), so a vault
        of dead links is skipped unread until one of them is due again.
        """
        if url.startswith(self.hosted_prefixes()):
            return 0
        if self.settings.sync.remote == REMOTE_KEEP or self.settings.sync.retry_failed:
            return None
        if not_image_reason(url) is not None or self.lookup_url(url) is not None:
            return 0
        attempt = self._cache.attempts.get(url)
        if attempt is None or attempt.kind == PRIVATE_ADDRESS:
            return None
        if remembered(attempt, self._clock_ns(), private_allowed=False) is None:
            return None
        return attempt.next_try_ns

    # -- lookups ----------------------------------------------------------------------------------

    def lookup_path(self, path: Path) -> tuple[RemoteObject | None, str | None]:
        """The good remote object for a local file, and the md5 known for it, from one ``stat``
        and two indexed lookups (no read). Either may be None: nothing known, or a file whose md5
        is known but whose object is not (or is not vouched for: rejected by the content review,
        its review not ended, not confirmed for too long). With ``--no-cache``, neither."""
        if self.trust.skip:
            return None, None
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None, None  # the uploader's file check explains what is wrong with the path
        if not stat_module.S_ISREG(st.st_mode) or not 0 < st.st_size <= MAX_IMAGE_BYTES:
            return None, None
        md5 = self._cache.get_file_md5(path, st)
        if md5 is None:
            return None, None
        return self.lookup_object(md5, st.st_size), md5

    def lookup_object(self, md5: str, size: int) -> RemoteObject | None:
        """The good remote object holding this content, or None (unknown, or not vouched for)."""
        if self.trust.skip:
            return None
        found = self._cache.get_object(md5, size)
        return found if found is not None and self.trust.vouches_for(found) else None

    def lookup_url(self, url: str) -> RemoteObject | None:
        """The good remote object a URL was migrated to, or None (unknown, or not vouched for)."""
        if self.trust.skip:
            return None
        found = self._cache.get_url(url)
        return found if found is not None and self.trust.vouches_for(found) else None

    def hosted_prefixes(self) -> tuple[str, ...]:
        """Where links on the user's image bed start: ``upload.hosted_prefixes``, plus the
        download folder (``https://host/uid/``) of every link this account was handed out."""
        with self._lock:
            prefixes = self._prefixes
        if prefixes is None:
            found = {p for p in self.settings.upload.hosted_prefixes if p}
            prefixes = tuple(sorted(found | self._cache.link_folders()))
            with self._lock:
                self._prefixes = prefixes
        return prefixes

    # -- links ------------------------------------------------------------------------------------

    def link(self, obj: RemoteObject) -> str:
        """The link to hand out: ``downloadURL``, or ``userSelfURL`` falling back to it."""
        if self.settings.upload.link == USER_SELF_URL and obj.user_self_url:
            return obj.user_self_url
        return obj.download_url

    def result(self, shown: str, kind: Kind, status: Status, obj: RemoteObject) -> UploadResult:
        """The result of an item that now has ``obj`` on the image bed."""
        return UploadResult(shown, kind, status, self.link(obj), obj.md5, obj.file_id)


def upload_cache_first(
    items: Sequence[Item],
    *,
    answers: CacheAnswers,
    upload_rest: UploadRest,
    on_result: OnResult | None = None,
) -> list[UploadResult]:
    """Answer what the index knows, then upload the rest; one result per item, in input order.

    ``upload_rest(rest, report)`` uploads the items the index does not answer and calls
    ``report(position, result)`` for each (a position in ``rest``), as
    :meth:`Uploader.upload_many <imgsync.engine.uploader.Uploader.upload_many>` does: it is called
    only if there are any, so a run answered from the cache builds no uploader and no API client.
    ``on_result(index, result)`` hears of each result as soon as it is known: the cache answers
    first, from this thread, then the uploads, one call at a time.
    """
    results: list[UploadResult | None] = [None] * len(items)
    misses: list[int] = []
    for index, item in enumerate(items):
        found = answers.answer(item)
        if found is None:
            misses.append(index)
            continue
        results[index] = found
        if on_result is not None:
            on_result(index, found)

    def report(position: int, result: UploadResult) -> None:
        results[misses[position]] = result
        if on_result is not None:
            on_result(misses[position], result)

    if misses:
        upload_rest([items[i] for i in misses], report)
    return [r for r in results if r is not None]
