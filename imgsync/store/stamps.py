"""Stat stamps: when a file's size, mtime and inode prove it unchanged, and the one spelling of
a path as an index key. Shared by the file hashes and the note stamps of the local index."""

from __future__ import annotations

import os
from pathlib import Path

# A stat stamp recorded less than this long after the file's mtime is not trusted ("racy", as git
# calls it): the file may change again within the filesystem's mtime granularity without its stamp
# changing. 2 s is the coarsest common granularity (FAT); it also covers small clock skew on network
# shares.
RACY_WINDOW_NS = 2_000_000_000

# A note's size, mtime (ns), inode and path (as the index keys it): what a trusted stamp must match.
# The path comes last, as a row of the index gives them: the rows serve as the keys as they are.
StatKey = tuple[int, int, int, str]


def stat_key(st: os.stat_result, path: str) -> StatKey:
    """The note at ``path`` with the stat ``st``, as the note stamps give it for the stamps they
    trust (:meth:`~imgsync.store.notestamps.NoteStamps.walk_stamps`): equal keys, an unchanged
    note."""
    return st.st_size, st.st_mtime_ns, st.st_ino, path


def is_racy(mtime_ns: int, recorded_ns: int) -> bool:
    """Whether a stamp recorded at ``recorded_ns`` is too close to ``mtime_ns`` to trust."""
    return recorded_ns - mtime_ns < RACY_WINDOW_NS


def path_key(path: Path) -> str | bytes:
    """Absolute, normalised, without resolving symlinks: one spelling per path, and no extra
    syscalls (size, mtime and inode guard against the rest).

    A name holding bytes that are not UTF-8 (decoded by Python with ``surrogateescape``) cannot
    be SQL text: it is kept as its raw bytes (a BLOB), which sqlite compares byte for byte and
    never confuses with a text key.
    """
    key = os.path.abspath(path)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(key)
    return key
