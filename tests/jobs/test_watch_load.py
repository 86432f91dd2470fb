"""1,000 notes created while the watcher works: all processed, none twice.

Why it earns its time: it is the only test in which events keep arriving while passes run (a
pass over the notes of one moment uploads and rewrites while the next notes are written), which
is where a watcher loses notes (an event dropped while busy) or processes them twice (its own
writes taken for edits, a note queued twice). The count stays at 1,000, as the issue asks.

The issue's rate is about 20 notes a second, which makes this a 50 s test per observer. The notes
are written in bursts instead (``BURST`` notes at once, ``RATE`` notes a second on average), which
keeps what matters (events arriving during passes, many notes due in one round) and takes about
10 s. Set ``IMGSYNC_TEST_WATCH_RATE=20`` to run it at the issue's rate.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from imgsync.jobs.watch import NoteSynced

from ..support import Control, wait_for, write_png
from .watch_helpers import Watching

NOTES = 1000
RATE = float(os.environ.get("IMGSYNC_TEST_WATCH_RATE", "100"))  # notes per second, on average
BURST = 20
IMAGES = 25  # the notes share these: the pass under test is the watcher's, not the uploads'


@pytest.mark.slow(11)
def test_1000_notes_created_while_watching_are_each_processed_once(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    for i in range(IMAGES):
        write_png(vault / "img" / f"{i}.png")
    w = watching()
    notes = [vault / f"d{i // 100}" / f"note-{i:04d}.md" for i in range(NOTES)]
    for folder in {n.parent for n in notes}:
        folder.mkdir()

    started = time.monotonic()
    for first in range(0, NOTES, BURST):
        for i in range(first, min(first + BURST, NOTES)):
            notes[i].write_bytes(f"# note {i}\n\n![x](../img/{i % IMAGES}.png)\n".encode())
        # Keep the average rate: sleep until this burst's share of the time has passed.
        time.sleep(max(0.0, started + (first + BURST) / RATE - time.monotonic()))

    pending = {str(n) for n in notes}
    told = 0

    def all_synced() -> bool:
        # Each of the watcher's events looked at once. Reading the notes not yet rewritten on
        # every check instead read them about 400,000 times when the watcher fell behind (a
        # loaded machine), competing with it for the interpreter and the files.
        nonlocal told
        news = w.events[told:]
        told += len(news)
        pending.difference_update(e.outcome.key for e in news if isinstance(e, NoteSynced))
        return not pending

    wait_for(all_synced, timeout=240, interval=0.2)
    w.barrier()
    assert [n.name for n in notes if "/dl/" not in n.read_text()] == []  # each one rewritten
    synced = Counter(e.outcome.key for e in w.events if isinstance(e, NoteSynced))
    passes = {str(n): synced[str(n)] for n in notes}
    assert sorted(set(passes.values())) == [1], {k: v for k, v in passes.items() if v != 1}
    keys = {str(n) for n in notes}
    assert not [e for e in w.failures_of_all() if e.outcome.key in keys]
    assert len(set(control.created_md5s())) == IMAGES
    assert len(control.created_md5s()) == IMAGES  # each image uploaded once
