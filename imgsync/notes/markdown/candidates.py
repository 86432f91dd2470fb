"""What the scanner proposes (a :class:`Candidate`) and what is decided about it (a
:class:`Decision`), with the image file names that count.

The scanner's modules (:mod:`.scan` and the modules it gathers) propose candidates with exact
spans; the parser (:mod:`.parse`) or, for notes simple enough, the scanner alone (:mod:`.simple`)
decides which of them are images. Both deciders return the same :class:`Decision`, so
:func:`imgsync.notes.markdown.find_images` builds its result from either the same way.

The lowest layer of the markdown modules: it imports none of them. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "IMAGE_EXTENSIONS",
    "LINE_PREFIX_CHARS",
    "SHARED_DEFINITION_WARNING",
    "SURROGATE_RE",
    "Candidate",
    "Decision",
    "has_image_extension",
    "without_surrogates",
]

#: File extensions treated as images (lower case, with the dot). Embeds and local files only count
#: as images when their name ends with one of these.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".tif", ".tiff"}
)

#: What may come before a block's text on its line: indentation and block quote markers.
LINE_PREFIX_CHARS = " \t>"

#: The warning for a reference definition an image and a text link both use.
SHARED_DEFINITION_WARNING = (
    "a reference definition used by an image is also used by a text link; "
    "rewriting it changes that link too"
)

#: A lone surrogate: a byte of a note that is not UTF-8 (notes are decoded with surrogateescape).
SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass
class Candidate:
    """A place in the body that may be an image reference; the parser decides whether it is.

    ``start``/``end`` is what a rewrite would replace; the ``marked_*`` span is filled in by
    :func:`imgsync.notes.markdown.parse.insert_markers` (where the candidate ends up in the marked
    copy).
    """

    kind: Literal["inline", "reference", "html", "embed"]
    start: int  # span in the body
    end: int
    mark_at: int  # where the marker goes (end of the span, or of an embed's file part)
    alt: str = ""
    angle: bool = False
    quote: str = ""
    target: str = ""
    marked_start: int = 0
    marked_end: int = 0


@dataclass
class Decision:
    """Which candidates are images, and whether the parser's cross-check held."""

    confirmed: dict[int, str]  # candidate index -> alt text
    notes: list[tuple[str, int]]  # (message, position in the body)
    consistent: bool
    # confirmed reference definitions that a text link uses too
    shared_with_link: set[int] = field(default_factory=set)


def without_surrogates(text: str) -> str:
    """mistune percent-encodes URLs with strict UTF-8; undecodable bytes (kept as lone surrogates)
    would make it raise, so the parser gets U+FFFD in their place (one character for one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_RE.sub("\ufffd", text)
    return text


def has_image_extension(name: str) -> bool:
    """True if ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS
