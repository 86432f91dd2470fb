"""What the watcher tests share: a watcher running in a thread over the test's vault, its events,
and a barrier that proves every event before it has been dealt with."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsync.config import Settings
from imgsync.engine.results import FAILED
from imgsync.jobs.watch import NoteSynced, Ready, Started, Waiting, Watcher

from ..support import wait_for

#: Short waits keep the tests quick; the logic does not depend on the lengths.
DEBOUNCE_S = 0.2
POLL_INTERVAL_S = 0.05
#: Long enough for every wait a test makes on purpose (an image written 0.5 s late).
IMAGE_GRACE_S = 5.0
DEADLINE_S = 60.0

_barriers = itertools.count(1)


class Watching:
    """A watcher running over a vault, and what it told."""

    def __init__(self, watcher: Watcher, events: list[Any], vault: Path) -> None:
        self.watcher = watcher
        self.events = events
        self.vault = vault

    def synced(self, note: Path) -> list[NoteSynced]:
        """The passes over ``note`` so far (start-up included)."""
        key = str(note)
        return [e for e in self.events if isinstance(e, NoteSynced) and e.outcome.key == key]

    def waits(self, note: Path) -> list[Waiting]:
        return [e for e in self.events if isinstance(e, Waiting) and e.path == str(note)]

    def started(self) -> Started:
        return next(e for e in self.events if isinstance(e, Started))

    def wait_synced(self, note: Path, count: int = 1) -> list[NoteSynced]:
        """Wait until ``note`` has had ``count`` passes; return them."""
        return wait_for(lambda: len(self.synced(note)) >= count and self.synced(note), DEADLINE_S)

    def wait_ready(self) -> None:
        wait_for(
            lambda: (
                self.watcher.failure is not None or any(isinstance(e, Ready) for e in self.events)
            ),
            DEADLINE_S,
        )
        assert self.watcher.failure is None, self.watcher.failure

    def barrier(self) -> None:
        """Write a new note and wait for its pass. Every event that came before it has then been
        looked at: its look was due no later than the barrier's, and a round looks at all that is
        due. So a second pass that was going to happen has happened."""
        note = self.vault / f"zz-barrier-{next(_barriers)}.md"
        note.write_bytes(b"barrier\n")
        self.wait_synced(note)

    def failures(self, note: Path) -> list[NoteSynced]:
        return [e for e in self.synced(note) if _failed(e)]

    def failures_of_all(self) -> list[NoteSynced]:
        """The passes over any note that failed it or one of its images."""
        return [e for e in self.events if isinstance(e, NoteSynced) and _failed(e)]


def _failed(event: NoteSynced) -> bool:
    return bool(event.outcome.error) or any(i.status == FAILED for i in event.outcome.images)


def write_slowly(path: Path, data: bytes, *, chunks: int, pause: Callable[[], None]) -> None:
    """Write ``data`` into ``path`` in ``chunks`` pieces with ``pause()`` between them, as an
    editor or a copy over a slow link does."""
    size = -(-len(data) // chunks)
    with open(path, "wb") as handle:
        for start in range(0, len(data), size):
            handle.write(data[start : start + size])
            handle.flush()
            os.fsync(handle.fileno())
            pause()


def atomic_save(note: Path, data: bytes) -> None:
    """An editor's atomic save: a temporary file in the same folder, renamed over the note."""
    temp = note.parent / f".{note.name}.tmp-editor"
    temp.write_bytes(data)
    os.replace(temp, note)


def vim_save(note: Path, data: bytes) -> None:
    """vim's save with backupcopy=no: probe file 4913, the note renamed to a backup, a new note
    written, the backup deleted."""
    probe = note.parent / "4913"
    probe.write_bytes(b"")
    probe.unlink()
    backup = note.parent / (note.name + "~")
    os.rename(note, backup)
    note.write_bytes(data)
    backup.unlink()


def start_watching(
    settings: Settings,
    vault: Path,
    observer: str,
    *,
    on_start: Callable[[Watching], None] = lambda _w: None,
    **options: Any,
) -> Watching:
    """Start a watcher over the vault with the tests' short timings and wait for its start-up
    sync; stopping it is the caller's (the ``watching`` fixture's, unless settings of the test's
    own are needed)."""
    events: list[Any] = []
    options = {
        "debounce": DEBOUNCE_S,
        "poll": observer == "poll",
        "poll_interval": POLL_INTERVAL_S,
        "image_grace": IMAGE_GRACE_S,
        **options,
    }
    watcher = Watcher(settings, [vault], on_event=events.append, **options)
    watcher.start()
    watching = Watching(watcher, events, vault)
    on_start(watching)
    watching.wait_ready()
    return watching


@pytest.fixture(params=["native", "poll"])
def observer(request: pytest.FixtureRequest) -> str:
    """Each watcher test runs with the native observer and with --poll: the same behaviour."""
    return request.param


@pytest.fixture
def watching(settings: Settings, vault: Path, observer: str) -> Iterator[Callable[..., Watching]]:
    """``watching(**options)`` starts a watcher over the vault and waits for its start-up sync;
    it is stopped (and must have stopped cleanly) when the test ends."""
    started: list[Watching] = []

    def start(**options: Any) -> Watching:
        watching = start_watching(settings, vault, observer, on_start=started.append, **options)
        return watching

    yield start
    for watching in started:
        watching.watcher.stop()
        assert watching.watcher.join(DEADLINE_S)
        assert watching.watcher.failure is None, watching.watcher.failure
