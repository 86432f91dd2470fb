"""``imgsync orphans``: the images in imgsync's folders on the image bed that no note links to.

imgsync's folders are those the configured templates can produce: ``upload.folder``
(``imgsync/{year}/{month}``: every year and month that exists on the image bed) and
``upload.remote_folder``. Their fixed levels are looked up by name, their date levels matched by
shape (``{year}`` four digits, ``{month}`` two), so a folder of the user's own beside them is never
searched.

An image is referenced when a note below the paths given links to its ``downloadURL`` or
``userSelfURL``: as an image (:func:`imgsync.notes.markdown.find_images`), and, because deleting
cannot be undone, also anywhere else in the note's text (a plain link, a code block). A query
string or fragment on the link does not matter. A note that cannot be read makes the search
incomplete: then nothing is deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from imgsync.errors import ItemError
from imgsync.jobs.bulk import remove
from imgsync.jobs.imagebed import ROOT_ID, SEPARATOR, Entry, ImageBed, ItemOutcome
from imgsync.naming import FOLDER_FIELDS, render_folder, sanitize_component
from imgsync.notes.markdown import find_images
from imgsync.notes.notefile import NoteError, read_note
from imgsync.notes.walk import iter_notes

__all__ = ["OrphanReport", "delete_orphans", "find_orphans", "folder_levels"]

log = logging.getLogger(__name__)

# URLs written in a note's text, wherever they are (the conservative half of "referenced").
_URL_IN_TEXT = re.compile(r"https?://[^\s<>()\[\]\"'`]+", re.IGNORECASE)
_TEMPLATE_PIECE = re.compile(r"\{\{|\}\}|\{([a-z]+)\}|[^{}]+")
# A date far from any real one, rendered to learn each date field's shape from naming itself.
_PROBE_DATE = datetime(1999, 12, 31)


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

    def to_json(self) -> dict[str, Any]:
        return {
            "folders": self.folders,
            "notes": self.notes,
            "images": self.images,
            "orphans": [entry.to_json() for entry in self.orphans],
            "problems": [{"path": str(path), "error": error} for path, error in self.problems],
        }


def find_orphans(bed: ImageBed, notes: Sequence[Path]) -> OrphanReport:
    """The images in imgsync's image-bed folders that no note below ``notes`` links to."""
    report = OrphanReport()
    linked = _linked_urls(notes, report)
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
                keys = {_link_key(url) for url in (remote.download_url, remote.user_self_url)}
                if not keys & linked:
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


def _linked_urls(notes: Sequence[Path], report: OrphanReport) -> set[str]:
    """Every URL the notes below ``notes`` mention: image targets and any other URL text."""
    linked: set[str] = set()
    for note, _given, problem in iter_notes(notes):
        if problem is not None:
            report.problems.append((note, problem))
            continue
        try:
            text = read_note(note).text
        except NoteError as exc:
            report.problems.append((note, exc.reason))
            continue
        report.notes += 1
        linked.update(_link_key(ref.target) for ref in find_images(text).refs)
        linked.update(_link_key(url) for url in _URL_IN_TEXT.findall(text))
    linked.discard("")
    return linked


def _link_key(url: str) -> str:
    """A link without its fragment and query: a signed or tagged link is the same image."""
    return url.strip().split("#", 1)[0].split("?", 1)[0]


def folder_levels(template: str) -> list[str | re.Pattern[str]]:
    """Each level of a folder template: its name when fixed, else the pattern of the names it can
    render to (``{year}`` as four digits, and so on)."""
    levels: list[str | re.Pattern[str]] = []
    for component in template.split(SEPARATOR):
        pieces = [(m.group(1), m.group(0)) for m in _TEMPLATE_PIECE.finditer(component)]
        if not any(name in FOLDER_FIELDS for name, _ in pieces):
            text = "".join("{" if t == "{{" else "}" if t == "}}" else t for _, t in pieces)
            if text.strip():
                levels.append(sanitize_component(text))
            continue
        regex = "".join(
            _field_pattern(name)
            if name in FOLDER_FIELDS
            else re.escape("{" if text == "{{" else "}" if text == "}}" else text)
            for name, text in pieces
        )
        levels.append(re.compile(regex))
    return levels


def _field_pattern(name: str) -> str:
    (rendered,) = render_folder(f"{{{name}}}", now=_PROBE_DATE)
    return re.sub(r"\d", r"\\d", rendered)


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
