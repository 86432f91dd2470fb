"""``imgsync ls``, ``imgsync info`` and ``imgsync mkdir``: look at the image bed, and make folders.

``ls`` follows every page of a listing (``lastFileId`` until ``"-1"``); ``info`` asks ``detail``
per ID; ``mkdir`` makes a nested path level by level with the upload engine's folder walk
(:class:`imgsync.engine.folders.ImageBedFolders`), so a level that exists is found, not an error,
and the path's folder IDs land in the local index where the next upload finds them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from imgsync.errors import ItemError
from imgsync.jobs.imagebed import (
    SEPARATOR,
    Entry,
    ImageBed,
    ItemOutcome,
    Located,
    failure,
    split_path,
)
from imgsync.naming import sanitize_component

__all__ = ["Listing", "Described", "describe", "list_folder", "make_folders"]

log = logging.getLogger(__name__)

# Braces are template syntax in a folder template; a literal path given to mkdir is escaped so
# that ``{year}`` in it stays text.
_TEMPLATE_ESCAPES = str.maketrans({"{": "{{", "}": "}}"})

# mkdir's words for a path that is there now: its last level made by this command, or found.
CREATED = "created"
EXISTS = "exists"


@dataclass(frozen=True)
class Listing:
    """What ``ls`` lists: the folder (or file) it found, and its entries as they are read."""

    located: Located
    entries: Iterator[Entry]


def list_folder(bed: ImageBed, spec: str = "", *, recursive: bool = False) -> Listing:
    """The entries of the folder ``spec`` names (path or ID; "" the root), every page, and with
    ``recursive`` the folders below it. A file's listing is the file itself.

    The folder is found at once (raising :class:`~imgsync.jobs.imagebed.FolderNotFound` if it
    does not exist); the entries are read while the caller consumes them.
    """
    located = bed.locate(spec)
    return Listing(located, bed.walk(located, recursive=recursive))


@dataclass(frozen=True)
class Described:
    """``info``'s answer for one ID: its entry, or the outcome saying why there is none."""

    outcome: ItemOutcome
    entry: Entry | None = None


def describe(bed: ImageBed, ids: Sequence[str]) -> list[Described]:
    """``detail`` of every ID, in order; an unknown ID (code 5066) is a failed item."""
    answers = []
    for file_id in ids:
        try:
            remote = bed.api.detail(file_id)
        except Exception as exc:  # noqa: BLE001 - each ID's failure is its own; fatal ones raise
            answers.append(Described(failure(file_id, exc, file_id=file_id)))
            continue
        entry = bed.entry(remote)
        outcome = ItemOutcome(
            file_id, "found", file_id=remote.file_id, name=remote.filename, url=entry.link
        )
        answers.append(Described(outcome, entry))
    return answers


def make_folders(bed: ImageBed, paths: Sequence[str]) -> list[ItemOutcome]:
    """Make each folder path, with every missing level; one that exists already is fine.

    Each level is checked with the service (the index's folder IDs are not trusted: the folder
    may have been deleted in the console), and the IDs found are remembered in the index. The
    outcome says ``created`` when its last level was made now, ``exists`` when it was there.
    """
    outcomes = []
    for path in paths:
        try:
            parts = split_path(path)
            if not parts:
                raise ItemError("the root exists already; give a folder path like imgsync/notes")
            for part in parts:
                clean = sanitize_component(part)
                if clean != part:
                    raise ItemError(
                        f"{part!r} is not a name the image bed takes (it would be {clean!r}:"
                        ' no " \\ : * ? | > < and no surrounding spaces)'
                    )
            template = SEPARATOR.join(parts).translate(_TEMPLATE_ESCAPES)
            made = bed.folders.make(template)
        except Exception as exc:  # noqa: BLE001 - each path's failure is its own
            outcomes.append(failure(path, exc))
            continue
        log.info("folder %s is %s", SEPARATOR.join(parts), made.folder_id)
        status = CREATED if made.created else EXISTS
        outcomes.append(
            ItemOutcome(path, status, file_id=made.folder_id, name=SEPARATOR.join(parts))
        )
    return outcomes
