"""One watcher per folder: a lock file in the data folder, keyed by the folder's real path.

Two watchers on one folder would each sync every note the other writes, upload the same pasted
image twice and print everything twice. The first ``imgsync watch`` holds an ``flock`` on
``<data dir>/watch/<hash of the real path>.lock`` for as long as it runs, with its pid and the
folder written in it; a second one finds the lock taken and says whose it is (exit status 2). The
kernel lets go of the lock when the process ends, however it ends, so a crashed watcher never
blocks the next one. The lock is per data folder: watchers run with different ``IMGSYNC_DATA_DIR``
do not see each other (they do not share an index either).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from imgsync.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, two watchers are the user's doing
    fcntl = None  # type: ignore[assignment]

__all__ = ["AlreadyWatched", "lock_path", "watching_lock"]

#: The folder below the data folder that holds the watchers' lock files.
LOCK_FOLDER = "watch"
#: Hex digits of the path hash in a lock file's name: enough to tell folders apart.
NAME_DIGITS = 24


class AlreadyWatched(UsageError):
    """Another ``imgsync watch`` already watches this folder (exit status 2)."""

    def __init__(self, folder: str, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        who = f"pid {pid}" if pid else "a process that has not said its pid yet"
        super().__init__(
            f"{folder} is already watched by another imgsync watch ({who}); stop it first"
        )


def lock_path(data_dir: Path, folder: str) -> Path:
    """The lock file of the watcher of ``folder`` (its real path)."""
    digest = hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:NAME_DIGITS]
    return Path(data_dir) / LOCK_FOLDER / f"{digest}.lock"


@contextlib.contextmanager
def watching_lock(data_dir: Path, folders: Sequence[str]) -> Iterator[None]:
    """Hold the watcher's lock of every folder in ``folders`` while the block runs.

    Raises :class:`AlreadyWatched` naming the first folder another watcher holds, and its pid.
    """
    if fcntl is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        for folder in sorted({os.path.realpath(f) for f in folders}):
            stack.enter_context(_locked(lock_path(data_dir, folder), folder))
        yield


@contextlib.contextmanager
def _locked(path: Path, folder: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyWatched(folder, _pid_in(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{folder}\n".encode(errors="surrogateescape"), 0)
        yield
    finally:
        os.close(fd)


def _pid_in(fd: int) -> int | None:
    """The pid the holder wrote in the lock file (None if it has not written it yet)."""
    try:
        first = os.pread(fd, 64, 0).split(b"\n", 1)[0]
        return int(first) if first.strip() else None
    except (OSError, ValueError):
        return None
