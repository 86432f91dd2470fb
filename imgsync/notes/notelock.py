"""Who may touch a note now: a lock shared by every imgsync process, and the gate a stopping
process closes.

**The note lock.** ``imgsync watch`` and a manual ``imgsync sync`` (or two syncs) may work on the
same notes at once. Each read and each read-modify-write of a note holds an advisory ``flock`` on
the note's folder (its real folder, through symlinks), so two processes never write one note at
the same time, and a process that holds a note while it uploads the note's images (the watcher
does) makes another wait before reading it: that one then finds the images in the index instead
of uploading them again.

The folder, not the note, is locked: a rewrite gives the note a new inode (a lock on the old one
would not stop a process that opens the new one), and lock files beside notes would show up in
the user's vault and in their sync tools. Locks are per process: a thread of a process that already
holds a folder goes on (the sync job's threads work on different notes). Several folders are always
taken in one order, and a process never waits for a lock while holding one it took alone, so two
processes cannot deadlock. Where ``fcntl`` is missing (Windows) or a folder cannot be opened, the
lock is skipped and the read or write goes on as before.

**The write gate.** A process about to exit while work is in flight (``imgsync watch`` on SIGTERM)
calls :func:`stop_writes`: it waits for the note writes in flight to finish and keeps new ones from
starting, so no note is left half-written or with a user's version set aside.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from imgsync.errors import ItemError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks between processes
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_WAIT_S",
    "NoteBusy",
    "folder_of",
    "note_file",
    "notes_locked",
    "resume_writes",
    "stop_writes",
    "write_admitted",
]

#: How long a process waits for another imgsync process to let go of a note's folder before
#: reporting the note as busy. A watcher holds a folder while the images of its notes upload,
#: which may take minutes on a slow link (the engine's poll deadline is 120 s).
LOCK_WAIT_S = 300.0
#: How often a waiting process tries the lock again: a write holds it for milliseconds.
LOCK_RETRY_S = 0.01


class NoteBusy(ItemError):
    """Another imgsync process kept the note's folder locked for too long."""

    def __init__(self, folder: str, waited: float) -> None:
        self.reason = (
            f"another imgsync process has been working on the notes of {folder} for "
            f"{waited:.0f} s; left for the next run"
        )
        super().__init__(self.reason)


@dataclass
class _Held:
    fd: int
    count: int


_held: dict[tuple[int, int], _Held] = {}
_held_mutex = threading.Lock()


def note_file(note: str | os.PathLike[str]) -> str:
    """The file the note at ``note`` is, absolute: a symlinked note's target, else the note itself.

    Only the note's own name is looked at: a folder on the way that is a symlink is kept as
    named (what it leads to is the same folder to open, lock or write in).
    """
    if os.path.islink(note):
        return os.path.realpath(note)
    return os.path.abspath(note)


def folder_of(note: str | os.PathLike[str]) -> str:
    """The folder a note's lock is taken on: the folder of :func:`note_file`.

    A lock is keyed by what that folder opens (device and inode), so other spellings of it
    (through a symlinked folder) share the one lock.
    """
    return os.path.dirname(note_file(note))


@contextlib.contextmanager
def notes_locked(
    notes: Iterable[str | os.PathLike[str]], *, wait: float = LOCK_WAIT_S
) -> Iterator[None]:
    """Hold the lock of every note in ``notes`` (their folders, in one order) for the block.

    Raises :class:`NoteBusy` when another process keeps one of them longer than ``wait``
    seconds; what was taken is let go first.
    """
    if fcntl is None:
        yield
        return
    opened = _open_folders(notes)
    try:
        with contextlib.ExitStack() as stack:
            # One order for every process: the folders' device and inode numbers.
            for key in sorted(opened):
                fd, folder = opened.pop(key)
                held = _take(key, fd, folder, wait)
                stack.callback(_release, key, held)
            yield
    finally:
        for fd, _folder in opened.values():  # not taken: a wait for an earlier one failed
            os.close(fd)


def _open_folders(
    notes: Iterable[str | os.PathLike[str]],
) -> dict[tuple[int, int], tuple[int, str]]:
    """The notes' folders, opened, by (device, inode): each folder once, however it is named. A
    folder that cannot be opened is left out: reading or writing the note says what is wrong, in
    its own words."""
    opened: dict[tuple[int, int], tuple[int, str]] = {}
    try:
        for note in notes:
            folder = folder_of(note)
            try:
                fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                info = os.fstat(fd)
            except OSError:
                os.close(fd)
                continue
            key = (info.st_dev, info.st_ino)
            if key in opened:
                os.close(fd)
            else:
                opened[key] = (fd, folder)
    except BaseException:
        for fd, _folder in opened.values():
            os.close(fd)
        raise
    return opened


def _take(key: tuple[int, int], fd: int, folder: str, wait: float) -> _Held:
    """This process's hold on the folder ``key``: joined if some thread has it, else taken."""
    deadline = time.monotonic() + wait
    while True:
        with _held_mutex:
            held = _held.get(key)
            if held is not None:
                held.count += 1
                os.close(fd)
                return held
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            except OSError:  # a filesystem without locks: go on unlocked, as without fcntl
                held = _held[key] = _Held(fd, 1)
                return held
            else:
                held = _held[key] = _Held(fd, 1)
                return held
        if time.monotonic() >= deadline:
            os.close(fd)
            raise NoteBusy(folder, wait)
        time.sleep(LOCK_RETRY_S)


def _release(key: tuple[int, int], held: _Held) -> None:
    with _held_mutex:
        held.count -= 1
        if held.count:
            return
        del _held[key]
        os.close(held.fd)  # closing the last descriptor lets go of the flock


# ------------------------------------------------------------------------------ the write gate


class _WriteGate:
    """Counts the note writes in flight; once closed, new ones wait (the process is exiting)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed = False

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def close(self, timeout: float | None) -> bool:
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._cond.notify_all()


_gate = _WriteGate()


def write_admitted() -> contextlib.AbstractContextManager[None]:
    """Enter for one note write: waits while writes are stopped."""
    return _gate.admitted()


def stop_writes(timeout: float | None = None) -> bool:
    """Let the note writes in flight finish, and keep new ones from starting (they wait).

    For a process about to exit: afterwards no note is being written. Returns False when writes
    were still in flight after ``timeout`` seconds.
    """
    return _gate.close(timeout)


def resume_writes() -> None:
    """Let note writes start again after :func:`stop_writes`."""
    _gate.reopen()
