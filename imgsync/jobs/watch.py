"""``imgsync watch``: keep a notes folder synced as the user writes.

The watcher is the sync job run again and again, at the right moments, and never on its own
writes:

1. **Start-up.** The observer starts first (so nothing written meanwhile is missed), then one full
   sync of the paths catches up with what changed while nobody watched.
2. **Events** (:mod:`imgsync.notes.events`) mark notes as touched; each note is looked at once it
   has been left alone for the debounce time and its size and mtime no longer change
   (:mod:`imgsync.jobs.watch_schedule`).
3. **A look** (:mod:`imgsync.jobs.watch_look`) reads the note without any request. It is passed
   over when it holds what the last pass over it left (imgsync's own write, or a save that changed
   nothing imgsync cares about). It waits while an image it names is still being written, or, for
   a grace period, is not there yet (editors write a pasted image and the note in either order).
4. **A pass** syncs the notes that are ready through one seam, :class:`SyncSession`; a note the
   user edits meanwhile is read again by the sync job and the edit kept. A failed image is tried
   again later with backoff; a remote link that failed keeps its own back-off (remembered across
   runs, as ``imgsync sync`` keeps it): no pass tries it sooner, and a note whose only failures
   are such links is retried when the first of them is due; a note whose image shows up later is
   looked at again then; a note deleted or moved away while queued is dropped quietly.

Everything the watcher does is told to ``on_event`` as a :class:`WatchEvent` (the command line turns
them into lines on stderr, or JSON lines); nothing here prints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgsync.engine.results import FAILED
from imgsync.errors import ImgsyncError, UsageError
from imgsync.jobs.sync_report import NoteOutcome, SyncReport
from imgsync.jobs.watch_lock import watching_lock
from imgsync.jobs.watch_look import ImageSettling, NoteScan, scan_note
from imgsync.jobs.watch_schedule import Schedule, Trigger
from imgsync.jobs.watch_sync import SyncSession
from imgsync.notes import events
from imgsync.notes.freshness import content_digest
from imgsync.notes.notefile import notes_written
from imgsync.notes.walk import NOTE_SUFFIXES, walk_notes

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.notes.resolve import Resolver

__all__ = [
    "FellBack",
    "NoteSynced",
    "Ready",
    "Started",
    "WatchEvent",
    "Watcher",
    "Waiting",
]

log = logging.getLogger(__name__)

#: How often a note waiting for its images looks again: one stat per image, nothing more.
WAIT_POLL_S = 0.25
#: How long a note waits for an image that keeps being written before it is synced all the same
#: (the pass then reports whatever is wrong with the image): a large file copied over a slow link.
IMAGE_WRITE_MAX_S = 600.0
#: After a folder appears, how long to let the native observer add its watches before counting
#: them (a shortfall means the system's watch limit was reached).
WATCH_CHECK_DELAY_S = 1.0


# ---------------------------------------------------------------------------------- the events


@dataclass(frozen=True)
class Started:
    """The observer runs; the start-up sync begins."""

    paths: tuple[str, ...]
    observer: str  # events.NATIVE or events.POLLING
    fallback: str | None  # why polling, when it was not asked for


@dataclass(frozen=True)
class FellBack:
    """The native observer ran out of watches while running: polling from now on."""

    reason: str


@dataclass(frozen=True)
class Ready:
    """The start-up (or catch-up) sync is done; from now on, changes are synced as they come."""

    totals: dict[str, int]
    trigger: Trigger = "startup"


@dataclass(frozen=True)
class Waiting:
    """A note waits for images it names: ``reason`` "missing" (not there yet) or "being written"."""

    path: str
    targets: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class NoteSynced:
    """A pass over one note ended. ``retry_in``: seconds until its failed images are retried."""

    outcome: NoteOutcome
    trigger: Trigger
    retry_in: float | None = None


WatchEvent = Started | FellBack | Ready | Waiting | NoteSynced


@dataclass
class _Ready:
    """A note a look found ready for its pass."""

    path: str
    trigger: Trigger
    scan: NoteScan | None


@dataclass
class _Round:
    """What one round of looks shares: a resolver per root (their name index is per round)."""

    resolvers: dict[Path, Resolver] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- the watcher


class Watcher:
    """Watches ``paths`` (folders, or notes) and syncs their notes as they change.

    Timings come from ``settings.watch`` unless given. ``native_factory`` makes the native
    observer (tests make it fail as an exhausted system would); ``session`` is the seam onto the
    sync job; ``clock`` is the monotonic clock all waits are measured on.
    """

    def __init__(
        self,
        settings: Settings,
        paths: Sequence[Path],
        *,
        on_event: Callable[[WatchEvent], None],
        root: Path | None = None,
        poll: bool = False,
        allow_outside_root: bool = False,
        allow_data: bool = False,
        debounce: float | None = None,
        image_grace: float | None = None,
        retry_initial: float | None = None,
        retry_max: float | None = None,
        poll_interval: float = events.POLL_INTERVAL_S,
        native_factory: Callable[[], Any] | None = None,
        session: SyncSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        watch = settings.watch
        self.settings = settings
        self.paths = [Path(os.path.abspath(p)) for p in paths]
        self._check_paths()
        self._on_event = on_event
        self._poll = poll
        self._poll_interval = poll_interval
        self._native_factory = native_factory
        self.debounce = watch.debounce if debounce is None else debounce
        self.image_grace = watch.image_grace if image_grace is None else image_grace
        self.retry_initial = watch.retry_initial if retry_initial is None else retry_initial
        self.retry_max = watch.retry_max if retry_max is None else retry_max
        self._clock = clock
        self._session = session or SyncSession(
            settings,
            self.paths,
            root=root,
            allow_outside_root=allow_outside_root,
            allow_data=allow_data,
        )
        self._schedule = Schedule(debounce=self.debounce, clock=clock)
        self._images = ImageSettling(self.debounce, clock=clock)
        self._changes: queue.SimpleQueue[events.Change | None] = queue.SimpleQueue()
        self._written: dict[str, str] = {}  # note -> digest of the bytes imgsync wrote into it
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_stack: contextlib.ExitStack | None = None
        self._observing: events.Observing | None = None
        self._watch_check_at: float | None = None
        self.failure: BaseException | None = None
        self.passes = 0  # passes run (start-up included): what tests and benchmarks wait on

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Take the folders' watcher lock (raises AlreadyWatched) and start watching in a thread."""
        stack = contextlib.ExitStack()
        stack.enter_context(watching_lock(self.settings.data_dir, [str(p) for p in self.paths]))
        self._lock_stack = stack
        self._thread = threading.Thread(target=self._main, name="imgsync-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the watcher to stop; the pass in flight (if any) is finished first."""
        self._stopping.set()
        self._changes.put(None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the watcher to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def observer(self) -> str | None:
        return None if self._observing is None else self._observing.kind

    def _main(self) -> None:
        try:
            with notes_written(self._remember_write):
                self._run()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever started the watcher
            log.debug("the watcher stopped on an error", exc_info=True)
            self.failure = exc
        finally:
            if self._observing is not None:
                self._observing.stop()
            self._session.close()
            if self._lock_stack is not None:
                self._lock_stack.close()

    def _run(self) -> None:
        self._observing = self._observe(poll=self._poll)
        self._emit(
            Started(
                tuple(str(p) for p in self.paths), self._observing.kind, self._observing.fallback
            )
        )
        self._full_sync("startup")
        while not self._stopping.is_set():
            self._drain(self._wait_time())
            if self._stopping.is_set():
                break
            self._check_watches()
            self._round()

    def _check_paths(self) -> None:
        for path in self.paths:
            if path.is_dir():
                continue
            if not path.is_file() or not path.name.lower().endswith(NOTE_SUFFIXES):
                raise UsageError(f"{path}: no such folder or note")

    # -- events -----------------------------------------------------------------------------------

    def _observe(self, *, poll: bool) -> events.Observing:
        folders = sorted({str(p if p.is_dir() else p.parent) for p in self.paths})
        return events.start_observing(
            folders,
            self._changes.put,
            poll=poll,
            poll_interval=self._poll_interval,
            native_factory=self._native_factory,
        )

    def _wait_time(self) -> float | None:
        times = [t for t in (self._schedule.next_time(), self._watch_check_at) if t is not None]
        return None if not times else max(0.0, min(times) - self._clock())

    def _drain(self, timeout: float | None) -> None:
        try:
            change = self._changes.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            if change is not None:  # None only wakes the loop (to stop)
                self._apply(change)
            try:
                change = self._changes.get_nowait()
            except queue.Empty:
                return

    def _apply(self, change: events.Change) -> None:
        if change.kind == "folder":
            if change.gone:
                self._schedule.forget_below(change.path)
                return
            for key, _given, problem in walk_notes([Path(change.path)]):
                if problem is None and self._is_watched(key):
                    self._schedule.touched(key, _stat_key(key))
            if self._observing is not None and self._observing.kind == events.NATIVE:
                self._watch_check_at = self._clock() + WATCH_CHECK_DELAY_S
        elif change.kind == "image":
            for note in self._schedule.waiting_for_images():
                self._schedule.touched(note, _stat_key(note), "image")
        elif self._is_watched(change.path):
            # Gone or changed, it is looked at: a name that is gone for good is dropped then,
            # quietly; one that came straight back (a swap, vim's rename and rewrite) keeps what
            # the watcher knew of it.
            self._schedule.touched(change.path, _stat_key(change.path))

    def _is_watched(self, note: str) -> bool:
        for path in self.paths:
            text = str(path)
            if note == text or note.startswith(text.rstrip(os.sep) + os.sep):
                return True
        return False

    def _check_watches(self) -> None:
        """After folders appeared, see that the native observer still watches every folder; if
        the system's watch limit was reached, go on by polling, and catch up by a full sync."""
        if self._watch_check_at is None or self._clock() < self._watch_check_at:
            return
        self._watch_check_at = None
        if self._observing is None or self._observing.missing_watches() == 0:
            return
        self._observing.stop()
        self._observing = self._observe(poll=True)
        self._emit(FellBack(events.limit_reason()))
        self._full_sync("catch-up")

    def _remember_write(self, path: Path, raw: bytes) -> None:
        # Called from the writing thread, during a pass; read once the pass has ended.
        self._written[str(path)] = content_digest(raw)

    # -- passes -----------------------------------------------------------------------------------

    def _full_sync(self, trigger: Trigger) -> None:
        outcomes, _retry = self._sync(lambda: self._session.sync_all(self.paths), [])
        self._after_pass(outcomes, {}, trigger, announce_unchanged=False)
        self._written.clear()
        self._emit(Ready(SyncReport(notes=outcomes).totals(), trigger))

    def _round(self) -> None:
        """Look at every note that is due, and sync those that are ready in one pass."""
        ready: list[_Ready] = []
        shared = _Round()
        for path, trigger in self._schedule.pop_due():
            found = self._look(path, trigger, shared)
            if found is not None:
                ready.append(found)
        self._images.prune()
        if not ready:
            return
        notes = [item.path for item in ready]
        triggers = {item.path: item.trigger for item in ready}
        outcomes, retry = self._sync(lambda: self._session.sync_notes(notes), notes)
        scans = {item.path: item.scan for item in ready}
        for outcome in outcomes:
            trigger = triggers.get(outcome.key, "change")
            self._after_pass([outcome], scans, trigger, retry=retry)
        self._written.clear()

    def _sync(
        self, run: Callable[[], list[NoteOutcome]], notes: list[str]
    ) -> tuple[list[NoteOutcome], bool]:
        """Run one pass. A failure of the whole pass that may pass (the service unreachable)
        fails its notes, to be retried (True); any other (authentication, an unusable cache) ends
        the watch: every later pass would fail the same way."""
        self.passes += 1
        try:
            return run(), False
        except ImgsyncError as exc:
            if not exc.retryable:
                raise
            log.info("the pass failed and will be retried: %s", exc)
            return [NoteOutcome(note, error=str(exc)) for note in notes], True

    def _look(self, path: str, trigger: Trigger, shared: _Round) -> _Ready | None:
        """Whether the note at ``path`` is ready for a pass now; else schedule what comes next."""
        schedule = self._schedule
        key = _stat_key(path)
        if key is None:
            schedule.forget(path)  # deleted or moved away while queued: dropped quietly
            return None
        state = schedule.state(path)
        if trigger != "retry" and key != state.seen:
            log.debug("%s: changed since its last event; waiting", path)
            schedule.touched(path, key, trigger)  # still being written: wait until it is not
            return None
        root = self._session.root_of(path)
        resolver = shared.resolvers.get(root)
        if resolver is None:
            resolver = shared.resolvers[root] = self._session.resolver(root)
        scan = scan_note(path, resolver)
        if scan is None or not scan.consistent:
            return _Ready(path, trigger, scan)  # the pass reports what is wrong with it
        if trigger != "retry" and state.last_digest == scan.digest and not _news(scan, state):
            log.debug("%s: as its last pass left it; nothing to do", path)
            state.waiting_since, state.told_waiting = None, False
            return None  # what the last pass left (imgsync's own write): nothing to do
        log.debug(
            "%s: looked at (%s): digest %s, last %s", path, trigger, scan.digest, state.last_digest
        )
        now = self._clock()
        busy = tuple(t for t, image in scan.present.items() if not self._images.settled(image))
        new_missing = tuple(sorted(scan.missing - state.missing))
        waited = now - (state.waiting_since if state.waiting_since is not None else now)
        if busy and waited < IMAGE_WRITE_MAX_S:
            return self._wait(path, trigger, busy, "being written")
        if new_missing and trigger != "retry" and waited < self.image_grace:
            return self._wait(path, trigger, new_missing, "missing")
        state.waiting_since, state.told_waiting = None, False
        return _Ready(path, trigger, scan)

    def _wait(self, path: str, trigger: Trigger, targets: tuple[str, ...], reason: str) -> None:
        state = self._schedule.state(path)
        if state.waiting_since is None:
            state.waiting_since = self._clock()
        if not state.told_waiting:
            state.told_waiting = True
            self._emit(Waiting(path, targets, reason))
        self._schedule.later(path, WAIT_POLL_S, trigger)

    def _after_pass(
        self,
        outcomes: list[NoteOutcome],
        scans: dict[str, NoteScan | None],
        trigger: Trigger,
        *,
        announce_unchanged: bool = True,
        retry: bool = False,
    ) -> None:
        """Remember what each pass left, schedule retries, and tell the outcome."""
        for outcome in outcomes:
            path = outcome.key
            written = self._written.pop(path, None)
            if outcome.error is not None and _stat_key(path) is None:
                self._schedule.forget(path)  # gone during its pass: dropped quietly
                continue
            if outcome.unchanged_since_last_sync and not announce_unchanged:
                continue
            state = self._schedule.state(path)
            scan = scans.get(path)
            log.debug(
                "%s: passed (%s): changed %s, wrote %s, error %s",
                path,
                trigger,
                outcome.changed,
                written,
                outcome.error,
            )
            if written is not None:
                state.last_digest = written
            elif not outcome.changed and scan is not None:
                state.last_digest = scan.digest
            state.handled = frozenset(image.target for image in outcome.images)
            failed = [image for image in outcome.images if image.status == FAILED]
            if failed and scan is None:
                scan = self._rescan(path)
            state.missing = scan.missing if scan is not None else frozenset()
            retry_in = None
            if retry or (failed and scan is not None and _upload_failed(failed, scan)):
                held = 0.0 if retry or scan is None else self._held_for(failed, scan)
                retry_in = self._schedule.retry(
                    path, initial=self.retry_initial, maximum=self.retry_max, at_least=held
                )
            else:
                self._schedule.succeeded(path)
            self._emit(NoteSynced(outcome, trigger, retry_in))

    def _held_for(self, failed: list[Any], scan: NoteScan) -> float:
        """How long a retry would try nothing: 0 when an image failed that a pass may try again
        now, else the shortest time left of the back-offs holding back the failed remote links."""
        held: list[float] = []
        for image in failed:
            if image.target not in scan.uploadable:
                continue  # the user's to fix: no retry waits for it
            left = self._session.held_for(image.target)
            if left is None:
                return 0.0
            held.append(left)
        return min(held, default=0.0)

    def _rescan(self, path: str) -> NoteScan | None:
        return scan_note(path, self._session.resolver(self._session.root_of(path)))

    def _emit(self, event: WatchEvent) -> None:
        self._on_event(event)


def _news(scan: NoteScan, state: Any) -> bool:
    """Whether the note names an image its last pass did not deal with (an edit made during that
    pass, say), or one that was missing and is there now."""
    for target in scan.targets:
        if target in scan.hosted:
            continue
        if target in scan.missing and target in state.missing:
            continue  # still missing, still waited for
        if target in state.handled and target not in state.missing:
            continue
        if target not in scan.uploadable and target not in scan.missing:
            continue  # declined by policy (outside the root, a data URI...): as before
        return True
    return False


def _upload_failed(failed: list[Any], scan: NoteScan) -> bool:
    """Whether an image failed that was there to upload (the upload failed: worth a retry), as
    opposed to one the user must fix (missing, ambiguous...)."""
    return any(image.target in scan.uploadable for image in failed)


def _stat_key(path: str) -> tuple[int, int, int] | None:
    """(size, mtime_ns, inode) of a regular file, or None when there is none at ``path``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)
