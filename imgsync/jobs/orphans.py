"""``imgsync orphans``: the images in imgsync's folders on the image bed that no note links to.

imgsync's folders are those the configured templates can produce: ``upload.folder``
(``imgsync/{year}/{month}``: every year and month that exists on the image bed) and
``upload.remote_folder``. Their fixed levels are looked up by name, their date levels matched by
shape (``{year}`` four digits, ``{month}`` two), so a folder of the user's own beside them is never
searched.

An image is referenced when a note below the paths given links to its ``downloadURL`` or
``userSelfURL`` (:mod:`imgsync.jobs.notelinks`: as an image, and, because deleting cannot be
undone, also anywhere else in the note's text). A note that cannot be read makes the search
incomplete: then nothing is deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imgsync.errors import ItemError
from imgsync.jobs.bulk import remove
from imgsync.jobs.imagebed import ROOT_ID, SEPARATOR, Entry, ImageBed, ItemOutcome
from imgsync.jobs.notelinks import read_note_links
from imgsync.naming import folder_levels

__all__ = ["OrphanReport", "delete_orphans", "find_orphans"]

log = logging.getLogger(__name__)


@dataclass
class OrphanReport:
    """What the search found: the folders searched, how many notes were read and images seen, the
    unreferenced images, and the notes that could not be read (then nothing may be deleted)."""

    folders: list[str] = field(default_factory=list)
    notes: int = 0
    images: int = 0
    orphans: list[Entry] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems


def find_orphans(bed: ImageBed, notes: Sequence[Path]) -> OrphanReport:
    """The images in imgsync's image-bed folders that no note below ``notes`` links to."""
    report = OrphanReport()
    links = read_note_links(notes)
    report.notes, report.problems = links.notes, links.problems
    templates = dict.fromkeys((bed.settings.upload.folder, bed.settings.upload.remote_folder))
    searched: set[str] = set()
    for template in templates:
        for folder_id, path in _folders_of(bed, template):
            if folder_id in searched:
                continue
            searched.add(folder_id)
            report.folders.append(path)
            for remote in bed.api.iter_files(folder_id):
                if remote.is_folder:
                    continue
                report.images += 1
                if not links.notes_linking(remote.download_url, remote.user_self_url):
                    report.orphans.append(bed.entry(remote, f"{path}{SEPARATOR}{remote.filename}"))
    return report


def delete_orphans(bed: ImageBed, report: OrphanReport) -> list[ItemOutcome]:
    """Delete the orphans ``report`` found (and only those), as ``imgsync rm`` does; refused when
    a note could not be read, since an image only it links to would look unused."""
    if not report.complete:
        raise ItemError(
            f"{len(report.problems)} note(s) could not be read, so an image only they link to"
            " would look unused: nothing was deleted"
        )
    return remove(bed, [entry.remote.file_id for entry in report.orphans])


def _folders_of(bed: ImageBed, template: str) -> Iterator[tuple[str, str]]:
    """(ID, path) of every folder on the image bed that ``template`` can render to."""
    frontier: list[tuple[str, str]] = [(ROOT_ID, "")]
    for level in folder_levels(template):
        below: list[tuple[str, str]] = []
        for folder_id, path in frontier:
            for remote in bed.api.iter_files(folder_id):
                if not remote.is_folder:
                    continue
                name = remote.filename
                if name == level if isinstance(level, str) else level.fullmatch(name):
                    below.append((remote.file_id, f"{path}{SEPARATOR}{name}" if path else name))
        frontier = below
        if not frontier:
            log.info("no folder on the image bed matches %s", template)
            return
    yield from frontier
