"""When the watcher looks at each note again: per-note debounce, waits and retries with backoff.

Pure bookkeeping over a monotonic clock, with no filesystem access: :mod:`imgsync.jobs.watch`
decides what a look finds, this module remembers what it found and when to look next.

* Every event on a note pushes its next look ``debounce`` seconds on, so a burst of writes (an
  editor saving in several steps, a script appending line by line) becomes one look.
* A look may decide to wait (the note is still changing, or an image it names is not there yet or
  still being written): the note is looked at again shortly, with the same trigger.
* A pass whose images failed schedules a retry: ``retry_initial`` seconds, then twice as long each
  time up to ``retry_max``, and never before ``at_least`` (when every failure is a remote link
  held back by its own, longer back-off, a retry before it ends would try nothing). Retries are
  kept apart from event looks, so an event (imgsync's own write, say) neither brings a retry
  forward nor cancels it.
* After a pass the note keeps what that pass saw (the digest of the bytes it left, the image
  targets it dealt with, those that were missing), so the event its own write causes, or a save
  that changes nothing imgsync cares about, is recognised and passed over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["NoteState", "Schedule", "Trigger"]

#: Why a note is looked at: the start-up sync, an event on it, an image it waits for, a retry
#: of its failed images, the catch-up sync after the observer was replaced.
Trigger = Literal["startup", "change", "image", "retry", "catch-up"]


@dataclass
class NoteState:
    """What the watcher knows of one note."""

    due: float | None = None  # next look caused by events (monotonic seconds)
    trigger: Trigger = "change"
    retry_at: float | None = None  # next retry of its failed images
    attempt: int = 0  # failed passes in a row
    seen: tuple[int, int, int] | None = None  # (size, mtime_ns, inode) at the last look
    waiting_since: float | None = None  # since when it waits for its images
    told_waiting: bool = False
    # What its last pass left and dealt with.
    last_digest: str | None = None
    handled: frozenset[str] = field(default_factory=frozenset)
    missing: frozenset[str] = field(default_factory=frozenset)


class Schedule:
    """The states of the notes the watcher knows, and which of them are due when."""

    def __init__(self, *, debounce: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.debounce = debounce
        self._clock = clock
        self._notes: dict[str, NoteState] = {}
        self._pending: set[str] = set()  # notes with a look or a retry scheduled

    def state(self, path: str) -> NoteState:
        """The state of ``path`` (created, empty, if the watcher did not know it)."""
        state = self._notes.get(path)
        if state is None:
            state = self._notes[path] = NoteState()
        return state

    def known(self, path: str) -> NoteState | None:
        return self._notes.get(path)

    def touched(
        self, path: str, seen: tuple[int, int, int] | None, trigger: Trigger = "change"
    ) -> None:
        """An event on ``path``: look at it ``debounce`` seconds after the last one."""
        state = self.state(path)
        state.due = self._clock() + self.debounce
        state.trigger = trigger
        state.seen = seen
        self._pending.add(path)

    def later(self, path: str, delay: float, trigger: Trigger) -> None:
        """Look at ``path`` again in ``delay`` seconds (a look decided to wait)."""
        state = self.state(path)
        state.due = self._clock() + delay
        state.trigger = trigger
        self._pending.add(path)

    def retry(self, path: str, *, initial: float, maximum: float, at_least: float = 0.0) -> float:
        """A pass over ``path`` failed: schedule its retry with backoff, no sooner than
        ``at_least`` seconds; returns the delay."""
        state = self.state(path)
        state.attempt += 1
        delay = max(at_least, min(maximum, initial * 2 ** (state.attempt - 1)))
        state.retry_at = self._clock() + delay
        self._pending.add(path)
        return delay

    def succeeded(self, path: str) -> None:
        """A pass over ``path`` left nothing failed: no retry, backoff starts over."""
        state = self.state(path)
        state.attempt = 0
        state.retry_at = None

    def forget(self, path: str) -> None:
        """``path`` is gone (deleted, moved away): drop it quietly."""
        self._notes.pop(path, None)
        self._pending.discard(path)

    def forget_below(self, folder: str) -> None:
        """A folder is gone: drop every note below it."""
        prefix = folder.rstrip("/") + "/"
        for path in [p for p in self._notes if p.startswith(prefix)]:
            self.forget(path)

    def waiting_for_images(self) -> Iterator[str]:
        """Notes that had images missing at their last pass (an image event may free them)."""
        return iter([path for path, state in self._notes.items() if state.missing])

    def next_time(self) -> float | None:
        """When the next note is due (monotonic), or None when none is scheduled."""
        times = [t for path in self._pending for t in self._times(self._notes[path])]
        return min(times) if times else None

    def pop_due(self) -> list[tuple[str, Trigger]]:
        """The notes due now, each with why; their schedule is cleared (a look sets it again)."""
        now = self._clock()
        due: list[tuple[str, Trigger]] = []
        for path in sorted(self._pending):
            state = self._notes[path]
            if state.retry_at is not None and state.retry_at <= now:
                state.retry_at = None
                state.due = None
                due.append((path, "retry"))
            elif state.due is not None and state.due <= now:
                state.due = None
                due.append((path, state.trigger))
                state.trigger = "change"
            if state.due is None and state.retry_at is None:
                self._pending.discard(path)
        return due

    def queued(self) -> int:
        """How many notes have a look or a retry scheduled."""
        return len(self._pending)

    @staticmethod
    def _times(state: NoteState) -> list[float]:
        return [t for t in (state.due, state.retry_at) if t is not None]
