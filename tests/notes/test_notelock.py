"""The note lock between imgsync processes, and the write gate of a stopping process: real
processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import imgsync.notes.notefile as notefile
from imgsync.notes.notefile import update_note
from imgsync.notes.notelock import NoteBusy, notes_locked, resume_writes, stop_writes

from ..support import wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows")

# A second process that holds a note's lock until told to let go, and changes the note last.
HOLDER = """
import sys, time
from pathlib import Path
from imgsync.notes.notelock import notes_locked
note, held, started, release = map(Path, sys.argv[1:5])
with notes_locked([note]):
    held.write_text("held")
    while not started.exists():
        time.sleep(0.01)
    time.sleep(0.3)  # room for the other process to read the note, were it not waiting
    note.write_bytes(note.read_bytes() + b"written by the holder\\n")
    while not release.exists():
        time.sleep(0.01)
"""

# A process that rewrites the note through update_note, noting every text its transform saw.
UPDATER = """
import json, sys
from pathlib import Path
from imgsync.notes.notefile import update_note
note, started, seen = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
texts = []
def transform(n):
    texts.append(n.text)
    return n.text.replace("img/a.png", "https://bed.example/a.png")
started.write_text("started")
update_note(note, transform)
seen.write_text(json.dumps(texts))
"""


def test_a_note_held_by_another_process_is_read_and_written_after_it(tmp_path: Path) -> None:
    note = tmp_path / "n.md"
    note.write_bytes(b"![a](img/a.png)\n")
    held, started, release, seen = (tmp_path / n for n in ("held", "started", "release", "seen"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(note), str(held), str(started), str(release)]
    )
    try:
        wait_for(held.exists)
        updater = subprocess.Popen(
            [sys.executable, "-c", UPDATER, str(note), str(started), str(seen)]
        )
        wait_for(started.exists)
        wait_for(lambda: note.read_bytes().endswith(b"written by the holder\n"))
        assert not seen.exists()  # still waiting: the holder has not let go
        release.write_text("go")
        assert updater.wait(timeout=30) == 0
    finally:
        release.write_text("go")
        holder.wait(timeout=30)
    # The updater's first (and only) read came after the holder's last write.
    texts = json.loads(seen.read_text())
    assert texts == ["![a](img/a.png)\nwritten by the holder\n"]
    assert note.read_bytes() == b"![a](https://bed.example/a.png)\nwritten by the holder\n"


@pytest.mark.parametrize("named", ["as-is", "through-a-linked-folder", "by-a-linked-note"])
def test_a_lock_held_too_long_makes_the_note_busy_not_a_hang(tmp_path: Path, named: str) -> None:
    # However the note is named, the lock is its real folder's.
    note = tmp_path / "notes" / "n.md"
    note.parent.mkdir()
    note.write_bytes(b"x\n")
    (tmp_path / "linked").symlink_to(note.parent)
    (tmp_path / "alias.md").symlink_to(note)
    asked = {
        "as-is": note,
        "through-a-linked-folder": tmp_path / "linked" / "n.md",
        "by-a-linked-note": tmp_path / "alias.md",
    }[named]
    held, started, release = (tmp_path / n for n in ("held", "started", "release"))
    started.write_text("go")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(note), str(held), str(started), str(release)]
    )
    try:
        wait_for(held.exists)
        busy = pytest.raises(NoteBusy, match="another imgsync process")
        with busy, notes_locked([asked], wait=0.2):
            pass
    finally:
        release.write_text("go")
        holder.wait(timeout=30)


def test_one_folder_named_two_ways_is_locked_once(tmp_path: Path) -> None:
    note = tmp_path / "notes" / "n.md"
    note.parent.mkdir()
    note.write_bytes(b"x\n")
    (tmp_path / "linked").symlink_to(note.parent)
    # Held by this process after the first: taking it again under either name goes on at once.
    with (
        notes_locked([note, tmp_path / "linked" / "n.md"], wait=0.2),
        notes_locked([tmp_path / "linked" / "n.md"], wait=0.2),
    ):
        pass


def test_threads_of_one_process_share_its_hold(tmp_path: Path) -> None:
    # The watcher holds its notes while their images upload, and its own sync pass (another
    # thread in 8A's pipeline) reads and writes them meanwhile: no deadlock with itself.
    note = tmp_path / "n.md"
    note.write_bytes(b"![a](img/a.png)\n")
    result: list[bool] = []
    with notes_locked([note]):
        worker = threading.Thread(
            target=lambda: result.append(update_note(note, lambda n: n.text + "more\n")[1])
        )
        worker.start()
        worker.join(timeout=30)
    assert result == [True]


def test_a_stopping_process_finishes_the_write_in_flight_and_starts_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    for note in (first, second):
        note.write_bytes(b"![a](img/a.png)\n")
    in_write, go_on = threading.Event(), threading.Event()
    real_fsync = notefile._fsync_folder

    def slow_fsync(folder: Path) -> None:
        in_write.set()
        go_on.wait(timeout=30)
        real_fsync(folder)

    monkeypatch.setattr(notefile, "_fsync_folder", slow_fsync)
    writer = threading.Thread(target=update_note, args=(first, lambda n: n.text + "one\n"))
    writer.start()
    wait_for(in_write.is_set)
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(stop_writes(timeout=30)))
    stopper.start()
    try:
        go_on.set()
        stopper.join(timeout=30)
        assert stopped == [True]  # the write in flight finished
        assert first.read_bytes().endswith(b"one\n")
        late = threading.Thread(target=update_note, args=(second, lambda n: n.text + "two\n"))
        late.start()
        late.join(timeout=0.5)
        assert late.is_alive() and second.read_bytes() == b"![a](img/a.png)\n"
    finally:
        resume_writes()
    late.join(timeout=30)
    assert second.read_bytes().endswith(b"two\n")
    writer.join(timeout=30)
