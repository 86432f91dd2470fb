"""Filesystem changes below the watched folders, as the watcher needs them: watchdog's events
filtered and flattened into :class:`Change` records, with polling as the fallback.

watchdog is used through a plain ``FileSystemEventHandler`` and filtered here: its
``patterns=["*.md"]`` matches nothing, and ``ignore_patterns`` with its default policy drops the
atomic saves (``.tmp`` renamed to ``note.md``) that most editors make. A move is two changes: its
source is gone, its destination changed; that is how a note renamed over by an editor's temp file,
and vim's "rename the note to a backup, write it anew", are both seen.

Only notes (:data:`~imgsync.notes.walk.NOTE_SUFFIXES`) and image files concern the watcher. Temp,
swap and backup files never end in one of those (``note.md~``, ``.note.md.swp``, ``4913``,
``.goutputstream-*``, ``note.md___jb_tmp___``), hidden ones (imgsync's own temporary files, vim
and emacs locks, sync tools' partial files) and Office lock files (``~$``) are dropped by name, and
nothing below the folders the note walk skips (``.obsidian``, ``.git``, ``.trash``...) is reported.

The native observer (inotify on Linux) is the default. Polling is used when asked, and instead of
the native observer when it cannot start or when the system's limit of inotify watches is reached:
watchdog reports a limit hit by the watched folder itself but silently leaves sub-folders
unwatched, so after starting, the watches this process holds are counted against the folders
(:meth:`Observing.missing_watches`).
"""

from __future__ import annotations

import errno
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from imgsync.notes.markdown import has_image_extension
from imgsync.notes.walk import NOTE_SUFFIXES, SKIP_DIRS

__all__ = [
    "NATIVE",
    "POLLING",
    "Change",
    "Observing",
    "WatchLimitReached",
    "classify",
    "inotify_watches_held",
    "limit_reason",
    "start_observing",
]

log = logging.getLogger(__name__)

# watchdog's warning for a folder's watch added twice (see _native_observer).
_DUPLICATE_CALLBACK = r"Callback with id .* already exists for watch"

NATIVE, POLLING = "native", "polling"
#: How often the polling observer looks at every file: a change is seen at most this late, and
#: each look stats the whole tree (about 10 ms per 1,000 files).
POLL_INTERVAL_S = 1.0
#: Names that are never the user's note or image: hidden files, Office locks, emacs autosaves.
IGNORED_PREFIXES = (".", "~$", "#")
#: errno values of an exhausted inotify: watches (max_user_watches), instances (max_user_instances).
LIMIT_ERRNOS = {
    errno.ENOSPC: "the system's limit of inotify watches (fs.inotify.max_user_watches)",
    errno.EMFILE: "the system's limit of inotify instances (fs.inotify.max_user_instances)",
}

ChangeKind = Literal["note", "image", "folder"]


@dataclass(frozen=True)
class Change:
    """Something below a watched folder changed. ``gone``: deleted, or moved away."""

    path: str  # absolute
    kind: ChangeKind
    gone: bool = False


class WatchLimitReached(OSError):
    """The native observer cannot watch every folder: a system limit is reached."""


def classify(path: str, roots: Sequence[str]) -> ChangeKind | None:
    """What ``path`` is to the watcher, judged by its name alone: a note, an image, or None."""
    name = os.path.basename(path)
    if not name or name.startswith(IGNORED_PREFIXES) or _in_skipped_folder(path, roots):
        return None
    if name.lower().endswith(NOTE_SUFFIXES):
        return "note"
    if has_image_extension(name):
        return "image"
    return None


def _in_skipped_folder(path: str, roots: Sequence[str]) -> bool:
    for root in roots:
        if path.startswith(root.rstrip(os.sep) + os.sep):
            relative = path[len(root.rstrip(os.sep)) + 1 :]
            return any(part in SKIP_DIRS for part in relative.split(os.sep)[:-1])
    return False


def _make_handler(roots: Sequence[str], on_change: Callable[[Change], None]) -> Any:
    from watchdog.events import FileSystemEventHandler

    class Handler(FileSystemEventHandler):
        """Every event becomes zero, one or two :class:`Change` records."""

        def on_any_event(self, event: Any) -> None:
            kind = event.event_type
            if kind in ("opened", "closed_no_write"):
                return
            source = os.fsdecode(event.src_path)
            if kind == "moved":
                self._tell(source, event.is_directory, gone=True)
                self._tell(os.fsdecode(event.dest_path), event.is_directory, gone=False)
            else:
                self._tell(source, event.is_directory, gone=kind == "deleted")

        def _tell(self, path: str, is_directory: bool, *, gone: bool) -> None:
            if not path:
                return
            if is_directory:
                if _in_skipped_folder(path + os.sep + "x", roots):
                    return
                # A folder moved in or away: the notes in it came or went with it. A folder's
                # "modified" (an entry added or removed) says nothing its entries do not.
                if gone or not os.path.basename(path).startswith("."):
                    on_change(Change(path, "folder", gone))
                return
            what = classify(path, roots)
            if what is not None:
                on_change(Change(path, what, gone))

    return Handler()


#: The events asked for: creations, writes, moves and deletions (not opens, reads or closes
#: without writing, which imgsync's own reads would cause by the thousand).
def _event_filter() -> list[type]:
    from watchdog.events import (
        DirCreatedEvent,
        DirDeletedEvent,
        DirMovedEvent,
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
    )

    return [
        FileCreatedEvent,
        FileModifiedEvent,
        FileClosedEvent,
        FileMovedEvent,
        FileDeletedEvent,
        DirCreatedEvent,
        DirMovedEvent,
        DirDeletedEvent,
    ]


def _native_observer() -> Any:
    from watchdog.observers import Observer

    # A folder made while its parent's watch is being set up is added twice (by the walk of the
    # new tree and by its own creation event); watchdog keeps one callback and warns about the
    # other on stderr, which a user of `imgsync watch` would take for a problem. It is none.
    warnings.filterwarnings(
        "ignore",
        message=_DUPLICATE_CALLBACK,
        category=RuntimeWarning,
        module=r"watchdog\.observers\.inotify",
    )
    return Observer()


def _polling_observer(interval: float) -> Any:
    from watchdog.observers.polling import PollingObserver

    return PollingObserver(timeout=interval)


class Observing:
    """A running observer over some folders. ``kind`` is :data:`NATIVE` or :data:`POLLING`;
    ``fallback`` says why polling is used when it was not asked for."""

    def __init__(self, observer: Any, kind: str, folders: Sequence[str], fallback: str | None):
        self._observer = observer
        self.kind = kind
        self.folders = list(folders)
        self.fallback = fallback

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=10)

    def missing_watches(self) -> int:
        """How many folders below the watched ones the native observer does not watch (0 when
        polling, or where the count cannot be taken: not Linux).

        Counts the inotify watches this process holds against the folders there are, as watchdog
        watches them (every folder, symlinks not followed). A folder made a moment ago may not be
        watched yet: callers ask again before concluding.
        """
        if self.kind != NATIVE:
            return 0
        held = inotify_watches_held()
        if held is None:
            return 0
        wanted = sum(_count_folders(folder) for folder in self.folders)
        return max(0, wanted - held)


def start_observing(
    folders: Sequence[str],
    on_change: Callable[[Change], None],
    *,
    poll: bool = False,
    poll_interval: float = POLL_INTERVAL_S,
    native_factory: Callable[[], Any] | None = None,
) -> Observing:
    """Watch ``folders`` (absolute, recursively), calling ``on_change`` from the observer's thread.

    Native unless ``poll``; polling too when the native observer cannot start or cannot watch
    every folder (:attr:`Observing.fallback` then says why, for the user to be told once).
    ``native_factory`` makes the native observer (tests make it fail as an exhausted system).
    """
    folders = [os.path.abspath(folder) for folder in folders]
    handler = _make_handler(folders, on_change)
    fallback = None
    if not poll:
        try:
            native = (native_factory or _native_observer)()
            observing = _start(native, NATIVE, folders, handler, None)
        except OSError as error:
            fallback = _why(error)
            log.info("native observer unavailable: %s", error)
        else:
            if observing.missing_watches() == 0:
                return observing
            observing.stop()
            fallback = _why(OSError(errno.ENOSPC, "some folders could not be watched"))
    return _start(_polling_observer(poll_interval), POLLING, folders, handler, fallback)


def _start(
    observer: Any, kind: str, folders: Sequence[str], handler: Any, fallback: str | None
) -> Observing:
    try:
        for folder in folders:
            observer.schedule(handler, folder, recursive=True, event_filter=_event_filter())
        observer.start()
    except BaseException:
        try:
            observer.stop()
        except Exception:  # noqa: BLE001 - it did not start; its own error is the one to raise
            log.debug("stopping an observer that did not start", exc_info=True)
        raise
    return Observing(observer, kind, folders, fallback)


def _why(error: OSError) -> str:
    limit = LIMIT_ERRNOS.get(error.errno or 0)
    if limit is not None:
        return f"{limit} is reached"
    return f"the native file watcher cannot start ({error.strerror or error})"


def limit_reason() -> str:
    """Why polling replaces a native observer that ran out of watches while running."""
    return _why(OSError(errno.ENOSPC, "some folders could not be watched"))


def _count_folders(top: str) -> int:
    count = 1
    for dirpath, dirnames, _files in os.walk(top):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        count += len(dirnames)
    return count


def inotify_watches_held() -> int | None:
    """How many inotify watches this process holds (Linux: from /proc/self/fdinfo), or None."""
    try:
        fds = os.listdir("/proc/self/fdinfo")
    except OSError:
        return None
    total = 0
    for fd in fds:
        try:
            with open(f"/proc/self/fdinfo/{fd}", "rb") as handle:
                total += handle.read().count(b"\ninotify wd:")
        except OSError:
            continue
    return total
