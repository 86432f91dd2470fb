"""What a line starts, as mistune's block parser sees it: the line kinds the simple-note decider
(:mod:`.simple`) reads a note by.

Only lines at the left margin are told apart; an indented line is "other", and so is any line
whose reading depends on more than itself in a way the decider does not follow (a setext
underline, a table delimiter row, a line that may start an HTML block). "plain" is paragraph
text that interrupts nothing: a paragraph may go on with it, and it may start one.

Part of the simple-note decider: imports the patterns of :mod:`.brackets`, :mod:`.definitions`,
:mod:`.imgtags` and :mod:`.inert`. Pure.
"""

from __future__ import annotations

import re

from imgsync.notes.markdown.brackets import HTML_ATTRIBUTES, INLINE_TAG_RE
from imgsync.notes.markdown.definitions import LINK_LABEL
from imgsync.notes.markdown.imgtags import IMG_START_RE
from imgsync.notes.markdown.inert import BLOCK_TAG_NAMES

__all__ = [
    "DEFINITION_START_RE",
    "FENCE_OPEN_RE",
    "LABEL_START_RE",
    "heading_text",
    "item_text",
    "line_kind",
]

#: A fence opening at the left margin: its marker and its info string.
FENCE_OPEN_RE = re.compile(r"(`{3,}|~{3,})(.*)")
#: A line that starts a label (after indentation, quote and list markers).
LABEL_START_RE = re.compile(r"[ \t>]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+[ \t>]*)*\[")
#: mistune's start of a reference definition (its label may run over lines).
DEFINITION_START_RE = re.compile(r"\[" + LINK_LABEL + r"\]:")

_HEADING_RE = re.compile(r"#{1,6}(?:[ \t]|$)")
_THEMATIC_RE = re.compile(r"(?:(?:-[ \t]*){3,}|(?:_[ \t]*){3,}|(?:\*[ \t]*){3,})")
_SETEXT_RE = re.compile(r"[=-]+[ \t]*")  # mistune: any mix of "=" and "-"
_ORDERED_RE = re.compile(r"(\d{1,9}[.)])(?:[ \t]|$)")  # \d: any decimal digit, as mistune
_DELIMITER_ROW_RE = re.compile(r"[-:|\s]*")  # mistune strips cells of any whitespace
# How mistune tells an HTML block from a paragraph starting with ``<``: the tag names of blocks
# of kinds 1 and 6 (CommonMark's, with mistune's "source" and the raw-text tags of kind 1), and
# the rest of a line that is one whole tag (kind 7).
_HTML_BLOCK_TAG_RE = re.compile(
    BLOCK_TAG_NAMES + "|source|pre|script|style|textarea", re.IGNORECASE
)
_TAG_NAME_RE = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")
_OPEN_TAG_END_RE = re.compile(HTML_ATTRIBUTES + r"[ \t]*>[ \t]*")
_CLOSE_TAG_END_RE = re.compile(r"[ \t]*>[ \t]*")


def line_kind(line: str) -> str:
    """What ``line`` (without its line ending) starts, read at the left margin.

    One of "plain", "heading", "thematic", "bullet", "ordered", "quote", "definition" (a line that
    starts a reference definition), "tag" (one ``<img>`` tag, alone), or "other".
    """
    first = line[:1]
    if not first or first in " \t|" or _SETEXT_RE.fullmatch(line):
        return "other"
    if first == "#" and _HEADING_RE.match(line):
        return "heading"
    if first in "-_*" and _THEMATIC_RE.fullmatch(line):
        return "thematic"
    if first in "-+*" and line[1:2] in ("", " ", "\t"):
        return "bullet"
    if _ORDERED_RE.match(line):
        return "ordered"
    if first == ">":
        return "quote"
    if first == "<":
        return _html_line_kind(line)
    if first in "`~" and line.startswith(("```", "~~~")):
        return "other"
    if first == "[" and DEFINITION_START_RE.match(line):
        return "definition"
    if "|" in line and _DELIMITER_ROW_RE.fullmatch(line):
        return "other"
    return "plain"


def heading_text(line: str, start: int, end: int) -> tuple[int, int] | None:
    """Where the text of an ATX heading line (``start``/``end`` in the body) is: after its
    ``#``; None if it ends with a closing sequence (which mistune trims its way)."""
    if line.rstrip().endswith("#"):
        return None
    return start + len(line) - len(line.lstrip("#")), end


def item_text(line: str, start: int, end: int) -> tuple[int, int] | None:
    """Where the text of a one-line list item is: after its marker and one space; None if that is
    not plain text (an empty item, a nested block, indented code...)."""
    ordered = _ORDERED_RE.match(line)
    marker = 1 if ordered is None else ordered.end(1)
    text = line[marker + 1 :]
    if (
        line[marker : marker + 1] != " "
        or text[:1].isspace()  # mistune: indented code, or an empty item
        or line_kind(text) not in ("plain", "tag")
    ):
        return None
    return start + marker + 1, end


def _html_line_kind(line: str) -> str:
    """A line that starts with ``<``: "tag" (one ``<img>`` tag alone), "other" if it may start
    an HTML block, else "plain" (its ``<`` starts inline HTML, an autolink or text)."""
    if line.startswith(("<!", "<?")):
        return "other"
    name = _TAG_NAME_RE.match(line)
    if name is None:
        return "plain"  # "<" then no tag name: text
    if _HTML_BLOCK_TAG_RE.fullmatch(name.group(1)):
        return "other"  # an HTML block of kind 1 or 6
    ends_html_block = _OPEN_TAG_END_RE if name.group(0)[1] != "/" else _CLOSE_TAG_END_RE
    if ends_html_block.fullmatch(line, name.end()) is None:
        return "plain"  # no HTML block of kind 7 either
    single = line.count("<") == 1 and IMG_START_RE.match(line)
    return "tag" if single and INLINE_TAG_RE.fullmatch(line.rstrip(" \t")) else "other"
