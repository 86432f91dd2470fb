"""The uploads of one sync run, shared by all its notes: each distinct image goes up once, however
many notes wait for it, and the notes hear of it as soon as it settles.

A note asks for each image it needs by its key (:func:`imgsync.jobs.sync_note.item_key`). The
local index answers first, in the asking thread, with no request
(:class:`~imgsync.engine.cached.CacheAnswers`, through the answer the note hands over); an image
it does not know goes to one pool of
``upload.concurrency`` workers, in the order asked, and the uploader (built on the first such
image only, so a run answered by the index never builds the API client) puts it on the image bed.
A second note asking for an image already on its way is added to the waiters of that upload.

Results come back through a queue read by the job's own thread, which rewrites the notes: notes
are written by one thread, in one place, and a signal that stops the run stops it there. Items
not started when the run stops are dropped; those in flight are let finish unless a second signal
cuts the wait (see :mod:`imgsync.cli.signals`).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from imgsync.engine.items import Item
    from imgsync.engine.results import UploadResult
    from imgsync.engine.uploader import Uploader

__all__ = ["SharedUploads"]

log = logging.getLogger(__name__)

W = TypeVar("W")


class SharedUploads(Generic[W]):
    """Each distinct item once, answered by the index or uploaded by a pool; waiters of type W.

    ``make_uploader`` builds the uploader on the first item the index cannot answer;
    ``on_settled`` hears of each distinct item's result once, when it is first known (the index's
    answer when asked, or the upload's when collected). Not thread-safe: one thread asks and
    collects; only the uploads run in the pool.
    """

    def __init__(
        self,
        *,
        make_uploader: Callable[[], Uploader],
        concurrency: int,
        on_settled: Callable[[UploadResult], None] | None = None,
    ) -> None:
        self._make_uploader = make_uploader
        self._on_settled = on_settled
        self._concurrency = max(1, concurrency)
        self._uploader: Uploader | None = None
        self._pool: ThreadPoolExecutor | None = None
        # What every item asked for came to (an image many notes use is asked for many times).
        self._results: dict[str, UploadResult] = {}
        self._known: dict[str, UploadResult | None] = {}  # the index's answers (None: unknown)
        self._waiters: dict[str, list[W]] = {}  # items on their way, and the notes they hold up
        self._settled: queue.SimpleQueue[tuple[str, UploadResult | BaseException]] = (
            queue.SimpleQueue()
        )
        self.asked = 0  # distinct items asked for
        self.submitted = 0  # of those, handed to the uploader
        self.settled = 0  # of those, came back

    # -- asking -----------------------------------------------------------------------------------

    def known(self, key: str, answer: Callable[[], UploadResult | None]) -> UploadResult | None:
        """What is known of the item now, with no request: its result in this run, else what
        ``answer`` (the index) says, asked once per item; None if it would have to be uploaded."""
        result = self._results.get(key)
        if result is not None:
            return result
        if key in self._known:
            return self._known[key]
        self.asked += 1
        result = self._known[key] = answer()
        if result is not None and self._on_settled is not None:
            self._on_settled(result)
        return result

    def peek(self, key: str) -> UploadResult | None:
        """What is known of an item asked for before (its result, or the index's answer)."""
        return self._results.get(key) or self._known.get(key)

    def want(
        self,
        key: str,
        answer: Callable[[], UploadResult | None],
        item_of: Callable[[], Item],
        waiter: W,
    ) -> UploadResult | None:
        """The item's result if it is known now (:meth:`known`); else None, and ``waiter`` comes
        back from :meth:`collect` with the result once its upload settles (started now if not yet
        on its way). ``item_of`` makes what to hand the uploader, only when it is needed."""
        waiting = self._waiters.get(key)
        if waiting is not None:
            waiting.append(waiter)
            return None
        found = self.known(key, answer)
        if found is not None:
            return found
        item = item_of()
        if self._pool is None:
            self._uploader = self._make_uploader()
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="imgsync-upload")
        self._waiters[key] = [waiter]
        self._pool.submit(self._upload, self._uploader, key, item)
        self.submitted += 1
        return None

    @property
    def in_flight(self) -> int:
        """Items handed to the uploader whose result has not been collected yet."""
        return self.submitted - self.settled

    # -- collecting -------------------------------------------------------------------------------

    def collect(self, timeout: float | None) -> list[tuple[UploadResult, list[W]]]:
        """The uploads settled since the last call, each with its waiters; waits up to
        ``timeout`` seconds (None: for ever) for the first one, then takes all that are there.

        Raises what ended an upload that is a failure of the whole run (authentication,
        configuration, an unusable cache): every other upload would fail the same way.
        """
        found: list[tuple[UploadResult, list[W]]] = []
        try:
            entry = (
                self._settled.get(timeout=timeout) if timeout != 0 else self._settled.get_nowait()
            )
        except queue.Empty:
            return found
        while True:
            key, outcome = entry
            self.settled += 1
            if isinstance(outcome, BaseException):
                raise outcome
            self._results[key] = outcome
            if self._on_settled is not None:
                self._on_settled(outcome)
            found.append((outcome, self._waiters.pop(key, [])))
            try:
                entry = self._settled.get_nowait()
            except queue.Empty:
                return found

    # -- life cycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the items not started; wait for those in flight (a second signal cuts the wait);
        close the uploader."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._uploader is not None:
            self._uploader.close()

    def _upload(self, uploader: Uploader | None, key: str, item: Item) -> None:
        """One upload, in a worker: its result (or the whole-run failure) goes to the queue."""
        assert uploader is not None
        try:
            result: UploadResult | BaseException = uploader.upload_item(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the job's thread, raised there
            log.debug("%s: the run cannot go on", key, exc_info=True)
            result = exc
        self._settled.put((key, result))
