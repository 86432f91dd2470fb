"""What a sync run found and did, note by note and image by image: the result the job returns.

These are plain results. How they are shown (text, the JSON of docs/contract.md) and the exit
status they map to belong to the command line (:mod:`imgsync.cli.sync`).

A run over a large vault finds mostly notes with nothing to report: unchanged since their last
sync, or holding no image. The report keeps such a note as its path string alone (and one byte
saying which of the two it is), not as a :class:`NoteOutcome` with its empty lists: a hundred
thousand of them then cost a few megabytes instead of hundreds. :attr:`SyncReport.notes` still
lists every note, in the order found, as a :class:`NoteOutcome`, built when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

from imgsync.engine.words import FAILED, MIGRATED, UPLOADED, Kind, Status
from imgsync.records import field, record

__all__ = ["TOTAL_KEYS", "ImageOutcome", "NoteOutcome", "SyncReport"]

# The counts of a run (docs/contract.md): notes, changed notes, image references by status.
TOTAL_KEYS = ("notes", "changed", "uploaded", "reused", "cached", "skipped", "failed")

# How a note with nothing to report is kept (one byte per note of the report).
_FULL = 0  # a NoteOutcome
_QUIET = 1  # its path only: read, nothing to report (no image, no warning, no change)
_UNCHANGED = 2  # its path only: unchanged since its last clean sync, not read at all
_UNCHANGED_BYTE = bytes([_UNCHANGED])


@record(slots=True)
class ImageOutcome:
    """What happened to one image reference of one note.

    ``unreachable``: the reference failed because the service could not be reached (or kept
    failing), not because of the image or the note; a run whose every failure is of this kind is
    worth retrying as it is. ``would_upload``: in a dry run, the image is not in the local index,
    so a real run would upload it (and then rewrite its link).
    """

    target: str
    kind: Kind
    status: Status
    url: str | None = None
    error: str | None = None
    line: int = 0
    unreachable: bool = False
    would_upload: bool = False


@record(slots=True)
class NoteOutcome:
    """What happened to one note. ``error`` is set when the note itself could not be processed.

    ``key`` is the note's absolute path as a string (:attr:`path` makes the Path). In a dry run
    ``changed`` says whether a real run would change the note, ``edits`` lists the links it would
    rewrite from the local index as (old, new) pairs, and ``planned`` holds the note's bytes and
    the bytes that rewrite gives (only when the job was asked for them, and only until the note
    is handed to ``on_note``: a diff is shown as the run goes, not kept).
    """

    key: str
    changed: bool = False
    unchanged_since_last_sync: bool = False
    images: list[ImageOutcome] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    edits: list[tuple[str, str]] = field(default_factory=list)
    planned: tuple[bytes, bytes] | None = None
    # A note not read because it is as its last sync left it, with remote links that failed then
    # and wait for their retry: when that is (wall clock ns).
    retry_after_ns: int = 0

    @property
    def path(self) -> Path:
        return Path(self.key)

    @property
    def failed(self) -> bool:
        """Whether the note, or any of its image references, failed."""
        return (
            self.error is not None
            or self.retry_after_ns > 0
            or any(i.status == FAILED for i in self.images)
        )

    @property
    def quiet(self) -> bool:
        """Whether there is nothing to say about the note but its name."""
        return not (
            self.changed
            or self.images
            or self.error
            or self.warnings
            or self.edits
            or self.planned
            or self.retry_after_ns
        )


class SyncReport:
    """The result of a whole run: every note found, in the order found.

    A job :meth:`add`\\ s each note as the walk finds it (so the order is the walk's, whatever
    order the notes finish in) and calls :meth:`settle` once the note is done, which keeps a note
    with nothing to report as its path alone.
    """

    def __init__(self, notes: Iterable[NoteOutcome] = (), *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        # In a dry run: how many distinct images the local index does not know (a real run
        # would upload them).
        self.images_to_upload = 0
        self._entries: list[NoteOutcome | str] = []
        self._kinds = bytearray()
        self._added: list[int] = []  # the places of the notes added whole (some settled since)
        for note in notes:
            self.add(note)

    # -- building ---------------------------------------------------------------------------------

    def add(self, outcome: NoteOutcome) -> int:
        """Add a note (perhaps still being worked on); returns its place for :meth:`settle`."""
        place = len(self._entries)
        self._entries.append(outcome)
        self._kinds.append(_FULL)
        self._added.append(place)
        return place

    def add_unchanged(self, key: str) -> None:
        """Add a note found unchanged since its last clean sync (so not read)."""
        self._entries.append(key)
        self._kinds.append(_UNCHANGED)

    def add_unchanged_notes(self, keys: Sequence[str]) -> None:
        """Add notes found unchanged since their last clean sync, in order (:meth:`add_unchanged`
        for each, at once)."""
        self._entries.extend(keys)
        self._kinds.extend(_UNCHANGED_BYTE * len(keys))

    def settle(self, place: int) -> None:
        """The note at ``place`` is done: keep only its path if there is nothing to report."""
        entry = self._entries[place]
        if isinstance(entry, NoteOutcome) and entry.quiet:
            self._entries[place] = entry.key
            self._kinds[place] = _UNCHANGED if entry.unchanged_since_last_sync else _QUIET

    # -- reading ----------------------------------------------------------------------------------

    @property
    def notes(self) -> Sequence[NoteOutcome]:
        """Every note, in the order found (those kept as a path are rebuilt on each access)."""
        return _Notes(self)

    def outcomes(self) -> Iterator[NoteOutcome]:
        """The notes kept in full: those with something to report."""
        for place in self._added:
            entry = self._entries[place]
            if isinstance(entry, NoteOutcome):
                yield entry

    def _note(self, place: int) -> NoteOutcome:
        entry = self._entries[place]
        if isinstance(entry, NoteOutcome):
            return entry
        return NoteOutcome(entry, unchanged_since_last_sync=self._kinds[place] == _UNCHANGED)

    def __len__(self) -> int:
        return len(self._entries)

    def failed_notes(self) -> list[NoteOutcome]:
        """The notes that could not be processed at all (each has its ``error``)."""
        return [note for note in self.outcomes() if note.error is not None]

    def totals(self) -> dict[str, int]:
        """Counts of docs/contract.md: notes, changed notes, and image references by status
        (``migrated`` counts as ``uploaded``; ``failed`` also counts notes that failed as such)."""
        totals = dict.fromkeys(TOTAL_KEYS, 0)
        totals["notes"] = len(self._entries)
        for note in self.outcomes():
            totals["changed"] += note.changed
            totals["failed"] += note.error is not None
            for image in note.images:
                key = UPLOADED if image.status == MIGRATED else image.status
                totals[key] += 1
        return totals


class _Notes(Sequence[NoteOutcome]):
    """A read-only view of a report's notes as :class:`NoteOutcome` objects."""

    def __init__(self, report: SyncReport) -> None:
        self._report = report

    def __len__(self) -> int:
        return len(self._report)

    @overload
    def __getitem__(self, index: int) -> NoteOutcome: ...

    @overload
    def __getitem__(self, index: slice) -> list[NoteOutcome]: ...

    def __getitem__(self, index: int | slice) -> NoteOutcome | list[NoteOutcome]:
        if isinstance(index, slice):
            return [self._report._note(i) for i in range(len(self))[index]]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._report._note(index)

    def __iter__(self) -> Iterator[NoteOutcome]:
        for place in range(len(self)):
            yield self._report._note(place)
