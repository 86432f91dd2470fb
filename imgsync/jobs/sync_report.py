"""What a sync run found and did, note by note and image by image: the result the job returns.

These are plain results. How they are shown (text, the JSON of docs/contract.md) and the exit
status they map to belong to the command line (:mod:`imgsync.cli.sync`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from imgsync.engine.results import FAILED, MIGRATED, UPLOADED, Kind, Status

__all__ = ["TOTAL_KEYS", "ImageOutcome", "NoteOutcome", "SyncReport"]

# The counts of a run (docs/contract.md): notes, changed notes, image references by status.
TOTAL_KEYS = ("notes", "changed", "uploaded", "reused", "cached", "skipped", "failed")


@dataclass
class ImageOutcome:
    """What happened to one image reference of one note.

    ``unreachable``: the reference failed because the service could not be reached (or kept
    failing), not because of the image or the note; a run whose every failure is of this kind is
    worth retrying as it is. ``would_upload``: in a dry run, a real run would upload this image and
    rewrite its link (the new link is in :attr:`NoteOutcome.edits`).
    """

    target: str
    kind: Kind
    status: Status
    url: str | None = None
    error: str | None = None
    line: int = 0
    unreachable: bool = False
    would_upload: bool = False


@dataclass
class NoteOutcome:
    """What happened to one note. ``error`` is set when the note itself could not be processed.

    ``key`` is the note's absolute path as a string; ``path`` makes the Path on first use only,
    because a no-op re-sync of a large vault touches every note and parses no path at all.
    """

    key: str
    changed: bool = False
    unchanged_since_last_sync: bool = False
    images: list[ImageOutcome] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    # The links a rewrite would change, as (old, new) pairs, for --dry-run.
    edits: list[tuple[str, str]] = field(default_factory=list)

    @functools.cached_property
    def path(self) -> Path:
        return Path(self.key)

    @property
    def failed(self) -> bool:
        """Whether the note, or any of its image references, failed."""
        return self.error is not None or any(i.status == FAILED for i in self.images)


@dataclass
class SyncReport:
    """The result of a whole run: every note found, in the order found."""

    notes: list[NoteOutcome]
    dry_run: bool = False

    def totals(self) -> dict[str, int]:
        """Counts of docs/contract.md: notes, changed notes, and image references by status
        (``migrated`` counts as ``uploaded``; ``failed`` also counts notes that failed as such)."""
        totals = dict.fromkeys(TOTAL_KEYS, 0)
        totals["notes"] = len(self.notes)
        for note in self.notes:
            totals["changed"] += note.changed
            totals["failed"] += note.error is not None
            for image in note.images:
                key = UPLOADED if image.status == MIGRATED else image.status
                totals[key] += 1
        return totals
