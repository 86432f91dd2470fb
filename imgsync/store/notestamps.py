"""Note stamps: what each note looked like after its last clean sync, so an unchanged note is
skipped without being read (see :mod:`imgsync.notes.freshness`, which decides with them)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imgsync.store.db import Database
from imgsync.store.stamps import RACY_WINDOW_NS, StatKey, is_racy, path_key

# The largest wall-clock time sqlite's INTEGER holds: no stamp's recheck time is after it.
NEVER_NS = 2**63 - 1


@dataclass(frozen=True)
class NoteStamp:
    """What a note looked like after its last clean sync.

    ``stat_trusted`` is False when the stamp was recorded so soon after the note's mtime that a
    later edit could have kept the same size and mtime: then only ``digest`` (the caller's hash of
    the note's bytes) can prove the note unchanged.

    ``recheck_ns``, when not 0, is when the stamp stops vouching for the note (wall clock): a note
    whose only unfinished links are remote URLs that failed is clean until the first of their
    back-offs ends, and must be looked at again then. The cache forgets such a stamp once due.
    """

    size: int
    mtime_ns: int
    inode: int
    digest: str
    stat_trusted: bool = field(default=True, compare=False)
    recheck_ns: int = field(default=0, compare=False)

    @classmethod
    def from_stat(cls, st: os.stat_result, digest: str, *, recheck_ns: int = 0) -> NoteStamp:
        """The stamp of a note whose ``os.stat`` is ``st`` and whose bytes hash to ``digest``,
        vouching for it until ``recheck_ns`` (0: for good)."""
        return cls(
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            inode=st.st_ino,
            digest=digest,
            recheck_ns=recheck_ns,
        )

    def matches_stat(self, st: os.stat_result) -> bool:
        """Whether ``st`` proves the note unchanged without reading it."""
        return self.stat_trusted and (st.st_size, st.st_mtime_ns, st.st_ino) == (
            self.size,
            self.mtime_ns,
            self.inode,
        )


class NoteStamps:
    """The ``notes`` table of one account (``namespace``) in the index's database."""

    def __init__(self, db: Database, namespace: str, clock_ns: Callable[[], int]) -> None:
        self._db = db
        self.namespace = namespace
        self._clock_ns = clock_ns

    def get(self, path: Path) -> NoteStamp | None:
        """The stamp recorded for the note at ``path`` after its last clean sync, if any (and if
        it still vouches for the note: see :attr:`NoteStamp.recheck_ns`)."""
        row = self._db.one(
            "SELECT size, mtime_ns, inode, digest, recorded_ns, recheck_ns FROM notes"
            " WHERE namespace = ? AND path = ? AND (recheck_ns = 0 OR recheck_ns > ?)",
            (self.namespace, path_key(path), self._clock_ns()),
        )
        if row is None:
            return None
        size, mtime_ns, inode, digest, recorded_ns, recheck_ns = row
        trusted = not is_racy(mtime_ns, recorded_ns)
        return NoteStamp(size, mtime_ns, inode, digest, trusted, recheck_ns)

    def all(self) -> dict[str, NoteStamp]:
        """Every note stamp of this namespace that still vouches for its note, keyed by absolute
        path (as :meth:`get` keys them): one query instead of one per note, for a re-sync of
        a whole vault."""
        rows = self._db.all(
            "SELECT path, size, mtime_ns, inode, digest, recorded_ns, recheck_ns FROM notes"
            " WHERE namespace = ? AND (recheck_ns = 0 OR recheck_ns > ?)",
            (self.namespace, self._clock_ns()),
        )
        return {
            os.fsdecode(path): NoteStamp(
                size, mtime_ns, inode, digest, not is_racy(mtime_ns, recorded_ns), recheck_ns
            )
            for path, size, mtime_ns, inode, digest, recorded_ns, recheck_ns in rows
        }

    def stat_keys(
        self, under: Sequence[str] = (), *, with_rechecks: bool = True
    ) -> tuple[dict[str, StatKey], dict[str, NoteStamp]]:
        """The note stamps of this namespace in the form a re-sync of a whole vault reads fastest:
        the stamps trusted by their stat alone as :func:`stat_key` tuples, and the few racy ones
        whole, both keyed by absolute path (as :meth:`get` keys them).

        ``under`` (absolute paths of notes or folders; empty: everywhere) limits the stamps read
        to those notes and the notes below those folders, so a sync of one note in a big vault
        reads one stamp. Four columns of plain tuples cost a fraction of six made into as many
        NoteStamp objects, which was the largest cost of a no-op re-sync after the walk itself.

        ``with_rechecks`` False leaves out the stamps with a recheck time (notes with links in
        back-off), due or not: a run that retries those links must read their notes.
        """
        where, places = _under_clause(under)
        # A stamp vouches while its recheck time (if any) is after this; none is after NEVER_NS.
        now = self._clock_ns() if with_rechecks else NEVER_NS
        rows = self._db.all(
            "SELECT path, size, mtime_ns, inode FROM notes WHERE namespace = ?"
            " AND (recheck_ns = 0 OR recheck_ns > ?)"
            f" AND recorded_ns - mtime_ns >= ? AND typeof(path) = 'text'{where}",
            (self.namespace, now, RACY_WINDOW_NS, *places),
        )
        trusted = {path: (size, mtime_ns, inode) for path, size, mtime_ns, inode in rows}
        racy: dict[str, NoteStamp] = {}
        for path, size, mtime_ns, inode, digest, recorded_ns, recheck_ns in self._db.all(
            "SELECT path, size, mtime_ns, inode, digest, recorded_ns, recheck_ns FROM notes"
            " WHERE namespace = ? AND (recheck_ns = 0 OR recheck_ns > ?)"
            " AND (recorded_ns - mtime_ns < ? OR typeof(path) != 'text')",
            (self.namespace, now, RACY_WINDOW_NS),
        ):
            trusted_stat = not is_racy(mtime_ns, recorded_ns)
            stamp = NoteStamp(size, mtime_ns, inode, digest, trusted_stat, recheck_ns)
            if stamp.stat_trusted:  # a name that is not UTF-8, kept as bytes
                trusted[os.fsdecode(path)] = (size, mtime_ns, inode)
            else:
                racy[os.fsdecode(path)] = stamp
        return trusted, racy

    def rechecks(self, under: Sequence[str] = ()) -> dict[str, int]:
        """The notes stamped with a recheck time still ahead (links that failed earlier, waiting
        for their retry), keyed by absolute path, with that time (wall clock ns)."""
        where, places = _under_clause(under)
        rows = self._db.all(
            f"SELECT path, recheck_ns FROM notes WHERE namespace = ? AND recheck_ns > ?{where}",
            (self.namespace, self._clock_ns(), *places),
        )
        return {os.fsdecode(path): recheck_ns for path, recheck_ns in rows}

    def put(self, path: Path, stamp: NoteStamp) -> None:
        """Record the note's stamp after a clean sync."""
        self._db.execute(
            "INSERT INTO notes (namespace, path, size, mtime_ns, inode, digest, recorded_ns,"
            " recheck_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, path) DO UPDATE"
            " SET size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,"
            " digest = excluded.digest, recorded_ns = excluded.recorded_ns,"
            " recheck_ns = excluded.recheck_ns",
            (
                self.namespace,
                path_key(path),
                stamp.size,
                stamp.mtime_ns,
                stamp.inode,
                stamp.digest,
                self._clock_ns(),
                stamp.recheck_ns,
            ),
        )

    def forget(self, path: Path) -> None:
        """Forget the note's stamp (its sync was not clean, so it must be looked at next time)."""
        self._db.execute(
            "DELETE FROM notes WHERE namespace = ? AND path = ?", (self.namespace, path_key(path))
        )


def _under_clause(under: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """SQL limiting ``path`` to the notes ``under`` names and those below its folders ("" and
    no parameters for everywhere). A folder's notes are the keys from ``folder/`` up to
    ``folder0`` (``0`` follows ``/``), one range of the primary key."""
    if not under:
        return "", ()
    terms: list[str] = []
    places: list[str] = []
    for place in under:
        below = os.path.join(place, "")
        terms.append("path = ? OR (path >= ? AND path < ?)")
        places += [place, below, below[:-1] + chr(ord(os.sep) + 1)]
    return f" AND ({' OR '.join(terms)})", tuple(places)
