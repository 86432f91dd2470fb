"""Which files below the paths a user gives are notes: the walk every job over notes starts with.

A note is a ``.md`` or ``.markdown`` file that is not hidden, found below a folder given (folders
that hold nothing of the user's own are not entered) or given itself. A path that cannot be a
note (missing, a device, a folder that cannot be listed) is yielded with the problem, so the job
reports it like any other failed note instead of aborting or passing it by unnoticed.

The walk runs once per note even when nothing changed (the no-op re-sync of a whole vault), so it
works on path strings and builds no Path per note. Only the standard library is imported.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["NOTE_SUFFIXES", "SKIP_DIRS", "iter_notes", "walk_note_batches", "walk_notes"]

#: What a note's name ends with (compared in lower case).
NOTE_SUFFIXES = (".md", ".markdown")

#: Folders that hold no notes and no images of the user's own: version control, editor state,
#: Obsidian's trash, installed packages. The note walk does not enter them, and neither does the
#: resolver's search for an image by its name: one rule for both (a package's ``logo.png`` is not
#: the picture a note means, and a copy there must not make the user's own ambiguous).
SKIP_DIRS = frozenset({".git", ".obsidian", ".trash", ".hg", ".svn", "node_modules", ".venv"})

# What a path given is (see _kind_of).
_FOLDER, _FILE, _BROKEN_LINK, _OTHER = "folder", "file", "link", "other"


def iter_notes(paths: Iterable[Path]) -> Iterator[tuple[Path, Path, str | None]]:
    """Yield (note, given, problem) for every note below ``paths``, in a stable order.

    Notes are yielded as absolute paths; ``given`` is the argument the note was found under. A
    path that does not exist, is neither a note nor a folder, or cannot be examined, and a folder
    that cannot be listed, are yielded with a problem so they are reported like any other failed
    note instead of aborting the run or passing unnoticed. A note reached twice (a file and its
    folder both given) is yielded once.
    """
    for key, given, problem in walk_notes(paths):
        yield Path(key), given, problem


def walk_notes(paths: Iterable[Path]) -> Iterator[tuple[str, Path, str | None]]:
    """:func:`iter_notes` with each note as its absolute path string (no Path built per note)."""
    for keys, given, problem in walk_note_batches(paths):
        for key in keys:
            yield key, given, problem


def walk_note_batches(paths: Iterable[Path]) -> Iterator[tuple[list[str], Path, str | None]]:
    """:func:`walk_notes` a folder at a time: (keys, given, problem), the notes of one folder as
    absolute path strings in order, or one path with its problem. A job that decides most notes
    alike (a re-sync: unchanged) loops over each list itself, instead of resuming generators
    once per note."""
    given_paths = [Path(given) for given in paths]
    # One path given: one walk, which never meets a note twice (symlinked folders are not
    # followed), so it keeps no set of the notes seen, which a big vault would fill.
    seen: set[str] | None = set() if len(given_paths) > 1 else None
    for given in given_paths:
        top = os.path.abspath(given)
        try:
            kind = _kind_of(top)
        except OSError as error:  # a name too long, a folder that may not be searched
            if _first_time(top, seen):
                yield [top], given, f"cannot be examined: {error.strerror or error}"
            continue
        if kind == _FOLDER:
            yield from _walk_folder(top, given, seen)
        elif not _first_time(top, seen):
            continue
        elif kind in (_FILE, _BROKEN_LINK) or top.lower().endswith(NOTE_SUFFIXES):
            yield [top], given, None if kind is not None else "no such file"
        else:
            problem = "no such file or folder" if kind is None else "not a note or folder"
            yield [top], given, problem


def _first_time(key: str, seen: set[str] | None) -> bool:
    """Whether ``key`` is met for the first time (recording it); always True with no set."""
    if seen is None:
        return True
    if key in seen:
        return False
    seen.add(key)
    return True


def _walk_folder(
    top: str, given: Path, seen: set[str] | None
) -> Iterator[tuple[list[str], Path, str | None]]:
    """The notes below the folder ``top``, sorted, a folder at a time, and the folders in it that
    cannot be listed."""
    unlisted: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=unlisted.append):
        yield from _unlisted(unlisted, given, seen)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        prefix = os.path.join(dirpath, "")  # the folder and one separator, joined once
        keys = [
            prefix + name
            for name in sorted(filenames)
            if name.lower().endswith(NOTE_SUFFIXES) and not name.startswith(".")
        ]
        if seen is not None:
            keys = [key for key in keys if _first_time(key, seen)]
        if keys:
            yield keys, given, None
    yield from _unlisted(unlisted, given, seen)


def _kind_of(path: str) -> str | None:
    """What ``path`` is: a "folder", a "file", a "link" (broken), "other" (a device, a FIFO...)
    or None (nothing). Raises OSError when the system cannot tell (a name too long...)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return _BROKEN_LINK if os.path.islink(path) else None
    if stat.S_ISDIR(st.st_mode):
        return _FOLDER
    return _FILE if stat.S_ISREG(st.st_mode) else _OTHER


def _unlisted(
    errors: list[OSError], given: Path, seen: set[str] | None
) -> Iterator[tuple[list[str], Path, str | None]]:
    """A folder the walk could not list, reported like a failed note (its notes are not seen)."""
    while errors:
        error = errors.pop(0)
        key = os.path.abspath(error.filename or given)
        if _first_time(key, seen):
            yield [key], given, f"cannot list this folder: {error.strerror or error}"
