"""Which notes link to which images: what ``orphans`` and ``cache verify`` read the notes for.

A note links to an image when it names one of the image's links (``downloadURL`` or
``userSelfURL``): as an image (:func:`imgsync.notes.markdown.find_images`), and, because deleting
cannot be undone and a broken link is worth reporting wherever it is, also anywhere else in its
text (a plain link, a code block). A query string or fragment on the link does not matter
(:func:`imgsync.engine.review.link_key`). A note that cannot be read is a problem of the search:
then an image only it links to would look unlinked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imgsync.engine.review import link_key
from imgsync.notes.markdown import find_images
from imgsync.notes.notefile import NoteError, read_note
from imgsync.notes.walk import iter_notes

__all__ = ["NoteLinks", "read_note_links"]

# URLs written in a note's text, wherever they are (the conservative half of "linked").
_URL_IN_TEXT = re.compile(r"https?://[^\s<>()\[\]\"'`]+", re.IGNORECASE)


@dataclass
class NoteLinks:
    """The links of the notes read: each link's key and the notes naming it (in walk order),
    how many notes were read, and the notes that could not be."""

    linked_from: dict[str, list[Path]] = field(default_factory=dict)
    notes: int = 0
    problems: list[tuple[Path, str]] = field(default_factory=list)

    def notes_linking(self, *urls: str) -> list[Path]:
        """The notes that link to any of ``urls`` (an image's links), each once, in walk order."""
        found: dict[Path, None] = {}
        for url in urls:
            if url:
                found.update(dict.fromkeys(self.linked_from.get(link_key(url), ())))
        return list(found)


def read_note_links(notes: Sequence[Path]) -> NoteLinks:
    """Every link the notes below ``notes`` name: image targets and any other URL text."""
    result = NoteLinks()
    for note, _given, problem in iter_notes(notes):
        if problem is not None:
            result.problems.append((note, problem))
            continue
        try:
            text = read_note(note).text
        except NoteError as exc:
            result.problems.append((note, exc.reason))
            continue
        result.notes += 1
        keys = {link_key(ref.target) for ref in find_images(text).refs}
        keys.update(link_key(url) for url in _URL_IN_TEXT.findall(text))
        keys.discard("")
        for key in keys:
            result.linked_from.setdefault(key, []).append(note)
    return result
