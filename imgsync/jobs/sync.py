"""``imgsync sync``: upload the images a set of notes refers to and rewrite their links.

A run is a pipeline, so that each note is written as soon as its own images are on the image bed,
while the others still upload:

1. **walk** the notes (:mod:`imgsync.notes.walk`); a note that is as its last clean sync left it
   (:mod:`imgsync.notes.freshness`) is done at once, unread;
2. **scan** each other note as the walk yields it and **resolve** its references
   (:func:`~imgsync.jobs.sync_note.scan_note`);
3. **ask** for each image it needs (:class:`~imgsync.jobs.sync_uploads.SharedUploads`): the local
   index answers what it knows, the rest goes to one pool of uploads shared by every note (one
   upload per distinct image, however many notes wait for it);
4. **rewrite** each note the moment its last image settles, through notefile.update_note: the note
   is read again and rewritten from that fresh text (scanned again if it changed), so an edit made
   while its images uploaded is kept. A note with nothing to upload is done at once.

At most :data:`MAX_WAITING_NOTES` notes wait for images at a time (the walk pauses beyond that),
and a note's text and references are let go once it is written: memory does not grow with the
vault. A failed image leaves its link alone and is reported; a note that cannot be read is
reported and the run goes on. Stopped by a signal (KeyboardInterrupt, raised in this thread), the
run starts no new upload and writes no further note: every note written so far is whole (notefile
writes atomically), every other one as it was. Nothing here prints: the command line turns the
:class:`SyncReport` into output and an exit status.

A note is *clean* after a sync when every image reference in it now points at the image bed (or it
has none). A clean note is stamped in the cache and skipped next time without being parsed; so is a
note whose only unfinished links are remote URLs the index answers without a request (dead links in
their back-off, links that are not images), until the first of those back-offs ends. A note with a
missing image, a data URI or a file outside the root is looked at again on every run, since a new
file, a flag or a change elsewhere can change its outcome; so is every note with a link in
back-off under ``--retry-failed`` or ``sync.remote = "keep"``.

In a dry run nothing is uploaded, written or recorded, and no request is made: the local index
answers what it knows (those images show their real link, and the note the rewrite it would get),
the others are reported as images a real run would upload.

The markdown scanner, the resolver, the note writer and the upload engine are imported where they
are first needed: a no-op re-sync of a large vault needs none of them, and its cost is the walk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from imgsync.engine.words import FAILED, REMOTE, SKIPPED
from imgsync.errors import ImgsyncError
from imgsync.jobs.sync_report import NoteOutcome, SyncReport
from imgsync.notes.freshness import NoteFreshness
from imgsync.notes.walk import walk_note_batches
from imgsync.records import record
from imgsync.store.cache import Cache, cache_path

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.engine.cached import CacheAnswers
    from imgsync.engine.results import UploadResult
    from imgsync.engine.uploader import Uploader
    from imgsync.jobs.sync_note import ScannedNote
    from imgsync.jobs.sync_uploads import SharedUploads
    from imgsync.notes.resolve import Resolved, Resolver
    from imgsync.store.cache import RemoteObject

__all__ = ["MAX_WAITING_NOTES", "SyncCounts", "Syncer"]

log = logging.getLogger(__name__)

# Notes read and waiting for their images at most: each holds its text and references (a few
# times its size), and a thousand keep thousands of uploads queued ahead of the workers, far more
# than the service's rate limits let run at once. Beyond that the walk waits for notes to finish.
MAX_WAITING_NOTES = 1000
# How long the run waits for an upload before telling ``on_progress`` again (so a display can
# count down the time left while nothing settles).
TICK_S = 0.25
# Prefix of the scratch folder a run decodes its data: URIs into, for the uploader.
DATA_URI_SCRATCH_PREFIX = "imgsync-data-uri-"


@record
class SyncCounts:
    """How far a run is, for a progress display (images count distinct images, not links)."""

    notes_found: int = 0
    walk_done: bool = False
    notes_done: int = 0
    notes_failed: int = 0  # in whole (cannot be read or written) or in part (an image failed)
    images: int = 0  # distinct images the notes need (answered by the index or uploaded)
    images_done: int = 0
    images_failed: int = 0
    uploads: int = 0  # of those, handed to the uploader
    uploads_done: int = 0


class Syncer:
    """Runs ``sync`` over notes. Side effects (uploader, cache, clock) are injectable for tests.

    A cache passed in is the caller's to close; one opened here is closed when :meth:`run` ends.
    ``uploader_factory`` makes the Uploader of a run that has something to upload (by default one
    built from the settings over this run's cache); ``clock_ns`` is the wall clock the cache and the
    note stamps are judged by. ``keep_planned`` (a dry run's ``--diff``) hands each note that
    would change to ``on_note`` with its bytes and the bytes a real run would write.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        root: Path | None = None,
        dry_run: bool = False,
        keep_planned: bool = False,
        allow_outside_root: bool = False,
        allow_data: bool = False,
        cache: Cache | None = None,
        uploader_factory: Callable[[], Uploader] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self._clock_ns = clock_ns
        self.root = root
        self.dry_run = dry_run
        self.keep_planned = keep_planned
        self.allow_outside_root = allow_outside_root
        self.allow_data = allow_data
        self._cache = cache
        self._owns_cache = cache is None
        self._uploader_factory = uploader_factory or self._default_uploader
        self._resolvers: dict[Path, Resolver] = {}
        self._places: dict[Path, tuple[Resolver, Path]] = {}
        self._prefixes: tuple[str, ...] | None = None

    # -- collaborators ----------------------------------------------------------------------------

    def _open_cache(self) -> Cache | None:
        """The cache; in a dry run only if it already exists (a dry run creates no file)."""
        if self._cache is None:
            if self.dry_run and not cache_path(self.settings.data_dir).exists():
                return None
            self._cache = Cache.open(
                self.settings.data_dir,
                namespace=self.settings.account.key,
                clock_ns=self._clock_ns,
            )
        return self._cache

    def _close_cache(self) -> None:
        if self._owns_cache and self._cache is not None:
            self._cache.close()
            self._cache = None

    def _default_uploader(self) -> Uploader:
        from imgsync.engine.uploader import Uploader  # only a run with something to upload

        return Uploader.from_settings(self.settings, cache=self._open_cache())

    def _answers(self) -> CacheAnswers | None:
        """The local index's answers, with no request (None: a dry run with no index yet)."""
        cache = self._open_cache()
        if cache is None:
            return None
        from imgsync.engine.cached import CacheAnswers  # light: no HTTP stack

        return CacheAnswers(self.settings, cache, clock_ns=self._clock_ns)

    def _place(self, given: Path) -> tuple[Resolver, Path]:
        """The resolver of the notes root for a path given, and the folder being synced there.

        The root is ``--root``, else the nearest folder at or above the path given that holds
        ``.obsidian``, else that folder (a file given: its folder).
        """
        place = self._places.get(given)
        if place is None:
            from imgsync.notes.resolve import Resolver, find_root  # only a run that scans a note

            area = Path(os.path.abspath(given))
            area = area if area.is_dir() else area.parent
            root = (self.root or find_root(given)).resolve()
            resolver = self._resolvers.get(root)
            if resolver is None:
                resolver = Resolver(
                    root,
                    hosted_prefixes=self._hosted_prefixes(),
                    allow_outside_root=self.allow_outside_root,
                    allow_data=self.allow_data,
                )
                self._resolvers[root] = resolver
            place = self._places[given] = (resolver, area)
        return place

    def _hosted_prefixes(self) -> tuple[str, ...]:
        """Configured prefixes plus the download folders of every URL this account was given."""
        if self._prefixes is None:
            prefixes = {p for p in self.settings.upload.hosted_prefixes if p}
            cache = self._open_cache()
            if cache is not None:
                prefixes |= cache.link_folders()
            self._prefixes = tuple(sorted(prefixes))
        return self._prefixes

    def _review_rejections(self) -> dict[str, RemoteObject]:
        """The links of images the content review rejected, by link key; first (in a real run)
        the images whose review had not ended are checked again (engine/review.py)."""
        cache = self._open_cache()
        if cache is None:
            return {}
        if not self.dry_run and cache.pending_review():
            with self._uploader_factory() as uploader:
                uploader.recheck_reviews()
        rejected = cache.rejected_objects()
        if not rejected:  # nearly always: then the review module is not even loaded
            return {}
        from imgsync.engine.review import rejected_links

        return rejected_links(rejected)

    # -- the run ----------------------------------------------------------------------------------

    def run(
        self,
        paths: Sequence[Path],
        *,
        on_note: Callable[[NoteOutcome], None] | None = None,
        on_image: Callable[[UploadResult], None] | None = None,
        on_progress: Callable[[SyncCounts], None] | None = None,
    ) -> SyncReport:
        """Sync every note below ``paths``; never raises for a per-note or per-image problem.

        ``on_note`` hears of each note that was read, once it is done (a note unchanged since its
        last sync is only counted); ``on_image`` of each distinct image once it is settled
        (uploaded, found in the index, or failed), before the notes waiting for it are written;
        ``on_progress`` of the counts whenever they change, and every few tenths of a second
        while the run waits for uploads. All are called from this thread.

        Raises only for whole-run failures (authentication, configuration, an unusable cache), and
        KeyboardInterrupt when stopped: then no further note is written (those written before
        stay whole, rewritten).
        """
        # Each run looks afresh: files may have appeared, and earlier runs made new links.
        self._resolvers, self._places, self._prefixes = {}, {}, None
        try:
            return _Run(self, paths, on_note, on_image, on_progress).run(paths)
        finally:
            self._close_cache()


class _Run:
    """One run's state: the report, the counts, the notes waiting for images, the uploads."""

    def __init__(
        self,
        syncer: Syncer,
        paths: Sequence[Path],
        on_note: Callable[[NoteOutcome], None] | None,
        on_image: Callable[[UploadResult], None] | None,
        on_progress: Callable[[SyncCounts], None] | None,
    ) -> None:
        self.syncer = syncer
        self.dry_run = syncer.dry_run
        self.report = SyncReport(dry_run=syncer.dry_run)
        self.counts = SyncCounts()
        # Before the stamps are read: a rejection found now forgets them (engine/review.py).
        self.rejected = syncer._review_rejections()
        from imgsync.config import REMOTE_KEEP  # loaded already: it made the settings

        # The stamps of the notes below the paths given only: a sync of one note reads one.
        self.freshness = NoteFreshness(
            syncer._open_cache(),
            clock_ns=syncer._clock_ns,
            record=not syncer.dry_run,
            under=[os.path.abspath(path) for path in paths],
            # --retry-failed tries the links in back-off now, and under "keep" they are answered
            # otherwise: the notes stamped for those links must be read.
            with_rechecks=not (
                syncer.settings.sync.retry_failed or syncer.settings.sync.remote == REMOTE_KEEP
            ),
        )
        self.on_note = on_note
        self.on_image = on_image
        self.on_progress = on_progress
        self.waiting = 0  # notes read and waiting for images
        self._uploads: SharedUploads[ScannedNote] | None = None
        self._answers: CacheAnswers | None = None
        self._scratch: Path | None = None

    def run(self, paths: Sequence[Path]) -> SyncReport:
        try:
            self._walk(paths)
            self.counts.walk_done = True
            self._progress()
            while self.waiting:
                self._collect(TICK_S)
            if self.dry_run:
                self.report.images_to_upload = self.counts.images - self.counts.images_done
            return self.report
        finally:
            # Done, failed or stopped: drop the uploads not started, let those in flight end (a
            # second signal cuts that wait), then remove the scratch folder they read from.
            try:
                if self._uploads is not None:
                    self._uploads.close()
            finally:
                if self._scratch is not None:
                    import shutil

                    shutil.rmtree(self._scratch, ignore_errors=True)

    def _walk(self, paths: Sequence[Path]) -> None:
        counts, report, freshness = self.counts, self.report, self.freshness
        skip_index = self.syncer.settings.skip_index  # --no-cache: every note is read
        for keys, given, problem in walk_note_batches(paths):
            may_skip = problem is None and not skip_index
            done = 0
            while done < len(keys):
                # The bulk of a re-sync of a big vault: unchanged notes, counted and kept as
                # paths, nothing else; a folder's worth at a time.
                run = freshness.unchanged_run(keys, done) if may_skip else 0
                if run:
                    report.add_unchanged_notes(keys[done : done + run])
                    counts.notes_found += run
                    counts.notes_done += run
                    done += run
                    self._progress()
                else:
                    self._note(keys[done], given, problem)
                    done += 1

    def _note(self, key: str, given: Path, problem: str | None) -> None:
        """One note the walk found that is not simply unchanged (see :meth:`_walk`): changed,
        never synced, racy (proved by its content), waiting for a failed link's retry, or with a
        problem of its own."""
        counts, report = self.counts, self.report
        counts.notes_found += 1
        if (
            problem is None
            and not self.syncer.settings.skip_index
            and self.freshness.unchanged(key)
        ):
            rechecks = self.freshness.rechecks  # notes that wait for a failed link's retry: rare
            retry_after_ns = rechecks.get(key, 0) if rechecks else 0
            if retry_after_ns:  # unread, but its links that failed earlier are reported
                waiting = NoteOutcome(
                    key, unchanged_since_last_sync=True, retry_after_ns=retry_after_ns
                )
                report.add(waiting)
                if self.on_note is not None:
                    self.on_note(waiting)
            else:
                report.add_unchanged(key)
            counts.notes_done += 1
        else:
            outcome = NoteOutcome(key, error=problem)
            self._start(outcome, report.add(outcome), given)
            if self.waiting:
                self._collect(0)
                while self.waiting >= MAX_WAITING_NOTES:
                    self._collect(TICK_S)
        self._progress()

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.counts)

    # -- uploads ----------------------------------------------------------------------------------

    def _shared_uploads(self) -> SharedUploads[ScannedNote]:
        """The run's uploads and the index's answers, made for the first note with an image."""
        if self._uploads is None:
            from imgsync.jobs.sync_uploads import SharedUploads

            self._answers = self.syncer._answers()
            self._uploads = SharedUploads(
                make_uploader=self.syncer._uploader_factory,
                concurrency=self.syncer.settings.upload.concurrency,
                on_settled=self._settled,
            )
        return self._uploads

    def _settled(self, result: UploadResult) -> None:
        """A distinct image's result is known (from the index, or its upload came back)."""
        self.counts.images_done += 1
        self.counts.images_failed += result.status == FAILED
        if self.on_image is not None and not self.dry_run:
            self.on_image(result)

    def _collect(self, timeout: float) -> None:
        """Finish the notes whose last image settled (waiting up to ``timeout`` s for one)."""
        assert self._uploads is not None
        if not self._uploads.in_flight:  # pragma: no cover - a waiting note has an upload
            raise RuntimeError(f"{self.waiting} notes wait for no upload")
        settled = self._uploads.collect(timeout)
        self.counts.uploads_done = self._uploads.settled
        for _result, waiters in settled:
            for scanned in waiters:
                scanned.waiting -= 1
                if not scanned.waiting:
                    self.waiting -= 1
                    self._finish(scanned)
        self._progress()

    def _scratch_folder(self) -> Path:
        """Where this run writes the data: URIs it uploads (made on first use)."""
        if self._scratch is None:
            import tempfile

            self._scratch = Path(tempfile.mkdtemp(prefix=DATA_URI_SCRATCH_PREFIX))
        return self._scratch

    # -- one note ---------------------------------------------------------------------------------

    def _start(self, outcome: NoteOutcome, place: int, given: Path) -> None:
        """Scan a note and ask for its images; finish it now if it waits for none."""
        from imgsync.jobs.sync_note import scan_note

        scanned = None
        if outcome.error is None:
            with _note_safety_net(outcome):
                resolver, area = self.syncer._place(given)
                scanned = scan_note(outcome, place, resolver, area)
        if scanned is None:
            self._done(outcome, place)
            return
        with _note_safety_net(outcome):
            if scanned.held is None:
                self._ask(scanned)
        if scanned.waiting:
            self.waiting += 1
        else:
            self._finish(scanned)

    def _ask(self, scanned: ScannedNote) -> None:
        """Ask for each distinct image the note needs; count those it must wait for."""
        from imgsync.jobs.sync_note import answer_from_index, item_key, upload_item

        uploads = self._shared_uploads()
        answers = self._answers
        asked: set[str] = set()
        for res in scanned.resolved:
            key = item_key(res)
            if key is None or key in asked:
                continue
            asked.add(key)

            def answer(res: Resolved = res) -> UploadResult | None:
                return answer_from_index(res, answers, read_files=self.dry_run)

            if self.dry_run:
                uploads.known(key, answer)
                continue

            def item(res: Resolved = res) -> Path | str:
                return upload_item(res, self._scratch_folder)

            if uploads.want(key, answer, item, scanned) is None:
                scanned.waiting += 1
        self.counts.images = uploads.asked
        self.counts.uploads = uploads.submitted

    def _finish(self, scanned: ScannedNote) -> None:
        """The note's images are settled: its image outcomes, and its rewrite (or its plan)."""
        from imgsync.jobs.sync_note import image_outcome, item_key, link_of

        outcome = scanned.outcome
        uploads = self._uploads
        syncer = self.syncer

        def result(res: Resolved) -> UploadResult | None:
            key = item_key(res)
            return None if key is None or uploads is None else uploads.peek(key)

        def links(res: Resolved) -> str | None:
            return link_of(res, result(res))

        with _note_safety_net(outcome):
            for res in scanned.resolved:
                image = image_outcome(
                    res,
                    result(res),
                    held=scanned.held,
                    root=scanned.resolver.root,
                    allow_outside_root=syncer.allow_outside_root,
                    dry_run=self.dry_run,
                    rejected=self.rejected,
                )
                outcome.images.append(image)
                if res.skip_reason is not None and image.status == SKIPPED and res.path:
                    # A file outside the root: say so, since the link stays local.
                    outcome.warnings.append(f"line {image.line}: {image.target}: {image.error}")
            if scanned.held is not None:
                self.freshness.forget(outcome.path)
            elif self.dry_run:
                self._plan(scanned, links)
            else:
                self._write(scanned, links)
        self._done(outcome, scanned.place)

    def _plan(self, scanned: ScannedNote, links: Callable[[Resolved], str | None]) -> None:
        """A dry run's note: whether a real run would change it, and what it would write."""
        from imgsync.jobs.sync_note import note_error, plan_rewrite

        outcome = scanned.outcome
        try:
            planned = plan_rewrite(scanned, links)
        except ImgsyncError as exc:
            outcome.error = f"would be left unchanged: {note_error(exc)}"
            return
        rewritten = planned != scanned.note.raw
        outcome.changed = rewritten or any(image.would_upload for image in outcome.images)
        if rewritten and self.syncer.keep_planned:
            outcome.planned = (scanned.note.raw, planned)

    def _write(self, scanned: ScannedNote, links: Callable[[Resolved], str | None]) -> None:
        """Rewrite the note if any link changes, and stamp it if it is clean now (or clean until
        a back-off ends: see :meth:`_recheck_ns`)."""
        from imgsync.jobs.sync_note import is_done, note_error, rewrite_note

        outcome = scanned.outcome
        unfinished: list[Resolved] | None
        if any(links(res) is not None for res in scanned.resolved):
            try:
                final, unfinished = rewrite_note(scanned, links)
            except ImgsyncError as exc:
                outcome.error = note_error(exc)
                self.freshness.forget(outcome.path)
                return
        else:
            final = scanned.note.raw
            unfinished = [res for res in scanned.resolved if not is_done(res, None)]
        recheck_ns = self._recheck_ns(outcome, unfinished)
        if recheck_ns is None:
            self.freshness.forget(outcome.path)
        else:
            self.freshness.mark_clean(outcome.path, final, recheck_ns=recheck_ns)

    def _recheck_ns(self, outcome: NoteOutcome, unfinished: list[Resolved] | None) -> int | None:
        """Until when the note, as this run leaves it, needs no look (0: until it changes), or
        None when the next run must read it again.

        A clean note (every reference on the image bed) is done until it changes. A note whose
        every unfinished reference is a remote URL the local index answers without a request
        (a failure in its back-off, a link that is not an image) is done until the first of those
        answers may change (:meth:`~imgsync.engine.cached.CacheAnswers.settled_until_ns`): then
        a re-sync of a vault of dead links reads none of their notes. Anything else (a local
        image that failed, a remote one not settled, a note or image error) is looked at again
        on every run, since a new file, a flag or a change elsewhere can change its outcome.
        """
        if unfinished is None or outcome.error is not None:
            return None
        failed_kinds = {image.kind for image in outcome.images if image.status == FAILED}
        if not unfinished:
            return None if failed_kinds else 0
        answers = self._answers
        if answers is None or failed_kinds - {REMOTE}:
            return None
        times: list[int] = []
        for res in unfinished:
            if res.kind != REMOTE or res.skip_reason is not None or not res.url:
                return None
            until = answers.settled_until_ns(res.url)
            if until is None:
                return None
            times.append(until)
        # 0 is "settled for good": the stamp is due when the first timed answer is.
        return min((t for t in times if t), default=0)

    def _done(self, outcome: NoteOutcome, place: int) -> None:
        """A note is finished: count it, hand it on, keep only what the report needs of it."""
        counts = self.counts
        counts.notes_done += 1
        counts.notes_failed += outcome.failed
        if self.on_note is not None:
            self.on_note(outcome)
        outcome.planned = None  # shown by now, never kept
        self.report.settle(place)


@contextlib.contextmanager
def _note_safety_net(outcome: NoteOutcome) -> Iterator[None]:
    """Report an unexpected failure on one note as that note's error, and go on with the others.

    Every expected problem of a note is already its error; this is the last net, so one odd note
    (a name the system refuses in a way not foreseen) cannot stop the run. Whole-run failures
    (ImgsyncError: the cache, the configuration) still stop it.
    """
    try:
        yield
    except ImgsyncError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported on the note, with the traceback at -vv
        log.debug("%s: internal error", outcome.key, exc_info=True)
        outcome.error = f"internal error: {type(exc).__name__}: {exc} (run with -vv for details)"
