"""Note stamps: what each note looked like after its last clean sync, so an unchanged note is
skipped without being read (see :mod:`imgsync.notes.freshness`, which decides with them)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from operator import itemgetter
from pathlib import Path

from imgsync.records import field, record
from imgsync.store.db import Database
from imgsync.store.schema import ODD_NOTE_STAMPS
from imgsync.store.stamps import StatKey, is_racy, path_key

# The places (notes or folders) of one query of the stamps under them: two terms of a compound
# SELECT and five parameters each, well within sqlite's limits (500 terms; 999 parameters before
# sqlite 3.32).
PLACES_PER_QUERY = 100

# The path of a row of (size, mtime_ns, inode, path).
_path_of = itemgetter(3)


@record(frozen=True)
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

    def walk_stamps(
        self, under: Sequence[str] = (), *, with_rechecks: bool = True
    ) -> tuple[dict[str, StatKey], dict[str, NoteStamp], dict[str, int]]:
        """The note stamps of this namespace in the form a re-sync of a whole vault reads fastest,
        all keyed by absolute path (as :meth:`get` keys them):

        - the stamps trusted by their stat alone, as :func:`stat_key` tuples (the rows of the
          index as sqlite gives them: a dictionary made in C, no tuple built per stamp);
        - the few racy ones, whole;
        - the notes stamped with a recheck time still ahead (links that failed earlier, waiting
          for their retry), with that time (wall clock ns).

        ``under`` (absolute paths of notes or folders; empty: everywhere) limits the stamps read
        to those notes and the notes below those folders, so a sync of one note in a big vault
        reads one stamp. Four columns of plain tuples cost a fraction of six made into as many
        NoteStamp objects, which was the largest cost of a no-op re-sync after the walk itself.

        ``with_rechecks`` False leaves out the stamps with a recheck time (notes with links in
        back-off), due or not: a run that retries those links must read their notes (and no
        recheck time is returned).

        Two queries, read from one snapshot of the file: the key of every stamp ``under``, with
        no condition (testing conditions on each of a vault's rows costs sqlite about a third as
        much again), then the few stamps that are not simply trusted (racy, with a recheck time,
        or a name kept as bytes: :data:`~imgsync.store.schema.ODD_NOTE_STAMPS`), which replace
        or remove their keys. Those are read through their own partial index (``notes_odd``), not
        by testing every stamp of the account.
        """
        now = self._clock_ns()
        *listed, odd = self._db.read_together(
            *_stamps_under(under, self.namespace),
            (
                "SELECT path, size, mtime_ns, inode, digest, recorded_ns, recheck_ns"
                f" FROM notes INDEXED BY notes_odd WHERE namespace = ? AND ({ODD_NOTE_STAMPS})",
                (self.namespace,),
            ),
        )
        trusted: dict[str, StatKey] = {}
        for rows in listed:  # each row is its own key: (size, mtime_ns, inode, path)
            trusted.update(zip(map(_path_of, rows), rows, strict=True))
        racy: dict[str, NoteStamp] = {}
        rechecks: dict[str, int] = {}
        for path, size, mtime_ns, inode, digest, recorded_ns, recheck_ns in odd:
            below = trusted.pop(path, None) is not None  # among the stamps ``under``
            if recheck_ns and (not with_rechecks or recheck_ns <= now):
                continue  # the stamp no longer vouches (or is not trusted in this run)
            key = os.fsdecode(path)  # a name that is not UTF-8 is kept as bytes
            if recheck_ns and below:
                rechecks[key] = recheck_ns
            if is_racy(mtime_ns, recorded_ns):
                racy[key] = NoteStamp(size, mtime_ns, inode, digest, False, recheck_ns)
            else:
                trusted[key] = (size, mtime_ns, inode, key)
        return trusted, racy, rechecks

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


def _stamps_under(under: Sequence[str], namespace: str) -> list[tuple[str, tuple[str, ...]]]:
    """The queries of (size, mtime_ns, inode, path) of every stamp of ``namespace`` for the notes
    ``under`` names and those below its folders (everywhere when it is empty), with their
    parameters.

    A folder's notes are the keys from ``folder/`` up to ``folder0`` (``0`` follows ``/``): each
    place is a key and a range of the primary key, one ``SELECT`` each, so sqlite seeks them in
    the index instead of testing every row of the account (a row met twice, under places that
    nest, comes out twice, alike). :data:`PLACES_PER_QUERY` places make one query: sqlite
    refuses a compound ``SELECT`` of more than 500 terms ("too many terms in compound SELECT",
    which stopped a watcher whose pass took 300 notes, and ``imgsync sync *.md`` of 300 notes).
    """
    select = "SELECT size, mtime_ns, inode, path FROM notes WHERE namespace = ?"
    if not under:
        return [(select, (namespace,))]
    queries = []
    for first in range(0, len(under), PLACES_PER_QUERY):
        parts: list[str] = []
        places: list[str] = []
        for place in under[first : first + PLACES_PER_QUERY]:
            below = os.path.join(place, "")
            parts += [f"{select} AND path = ?", f"{select} AND path >= ? AND path < ?"]
            places += [namespace, place, namespace, below, below[:-1] + chr(ord(os.sep) + 1)]
        queries.append((" UNION ALL ".join(parts), tuple(places)))
    return queries
