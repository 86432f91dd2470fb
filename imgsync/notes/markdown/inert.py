"""Where a marker may go: letters and digits appended at a place must leave its line's kind alone.

The parser (:mod:`.parse`) appends a marker to every candidate and parses that copy once. Inside a
construct the marker changes nothing, but at the end of a line it could: ``---`` is a thematic
break and ``---zq0`` is not, ``-`` is an empty list item and ``-zq0`` is text; one inside ``-->``
would let an HTML comment run on. The scanner proposes no candidate where
:func:`marker_is_inert` says no; if it really was an image, the cross-check says so.

Part of the scanner: imports only :mod:`.candidates`. Pure.
"""

from __future__ import annotations

import re

from imgsync.notes.markdown.candidates import LINE_PREFIX_CHARS

__all__ = ["BLOCK_TAG_NAMES", "marker_is_inert"]

# What the block parser sees in a marker: letters and digits.
_MARKER_PROBE = "Z0"
#: The tag names that start an HTML block of kind 6 (CommonMark 0.31), as a pattern.
BLOCK_TAG_NAMES = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details|"
    "dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|h[1-6]|head|"
    "header|hr|html|iframe|legend|li|link|main|menu|menuitem|meta|nav|noframes|ol|optgroup|"
    "option|p|param|search|section|summary|table|tbody|td|tfoot|th|thead|title|tr|track|ul"
)
_HTML_TAG_RE = re.compile(
    r"</?[A-Za-z][A-Za-z0-9-]*"
    r"(?:[ \t\n\r\f]+[A-Za-z_:][A-Za-z0-9_.:-]*"
    r"(?:[ \t\n\r\f]*=[ \t\n\r\f]*(?:[^ \t\n\r\f\"'=<>`]+|'[^']*'|\"[^\"]*\"))?)*"
    r"[ \t\n\r\f]*/?>"
)
# The line kinds a marker could change (matched at the start of the line, container prefixes off).
_LINE_FEATURES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"#{1,6}(?:[ \t]|$)",  # ATX heading
        r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$",  # thematic break
        r"(?:=+|-+)[ \t]*$",  # setext underline
        r"(?:`{3,}|~{3,})",  # fence
        r"(?:`{3,}|~{3,})[ \t]*$",  # closing fence
        r"(?:[-+*]|[0-9]{1,9}[.)])(?:[ \t]|$)",  # list item
        r"(?:[-+*]|[0-9]{1,9}[.)])[ \t]*$",  # empty list item
        r"<(?:script|pre|style|textarea)(?:[ \t>]|$)",  # HTML block, kind 1
        r"<(?:!--|\?|![A-Za-z]|!\[CDATA\[)",  # HTML blocks, kinds 2 to 5
        r"</?(?:" + BLOCK_TAG_NAMES + r")(?:[ \t>]|/>|$)",  # HTML block, kind 6
        _HTML_TAG_RE.pattern + r"[ \t]*$",  # HTML block, kind 7
        r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$",  # table delimiter row
        r"\[(?:[^\\\[\]]|\\.)*\]:",  # reference definition or footnote
        r"[ \t]*$",  # blank
    )
)
# How far into a line a block start reaches ("</blockquote", "123456789.") and how far a
# sequence that ends an HTML block does ("</textarea>").
_START_REACH = 16
_CONTENT_REACH = 12
# Lines are looked at up to this far around a marker, so that one huge line does not make the
# scanner quadratic; a line of block markup only (``---``) cannot hold a candidate anyway.
_LONG_LINE = 4096
# A line made only of these could be a thematic break, setext underline, fence or table delimiter.
_SPECIAL_LINE_RE = re.compile(r"[-*_=`~|:.)+#0-9 \t]*")
# Content that ends an HTML block.
_LINE_CONTENT_FEATURES = (
    re.compile(r"-->"),
    re.compile(r"\?>"),
    re.compile(r"\]\]>"),
    re.compile(r"</(?:script|pre|style|textarea)>", re.IGNORECASE),
)


def marker_is_inert(text: str, pos: int) -> bool:
    """True if letters and digits inserted at ``pos`` leave the kind of its line unchanged.

    A marker inside a construct changes nothing, but one at the end of a line could: ``---`` is a
    thematic break and ``---zq0`` is not, ``-`` is an empty list item and ``-zq0`` is text; one
    inside ``-->`` would let an HTML comment run on. Such a candidate is not proposed; if it really
    was an image, the cross-check says so.
    """
    low = max(0, pos - _CONTENT_REACH)
    window = text[low : pos + _CONTENT_REACH]
    cut = pos - low
    if ">" in window:  # every sequence that ends an HTML block has one
        probed_window = window[:cut] + _MARKER_PROBE + window[cut:]
        for pattern in _LINE_CONTENT_FEATURES:
            if (pattern.search(window) is None) != (pattern.search(probed_window) is None):
                return False
    newline = text.rfind("\n", max(0, pos - _LONG_LINE), pos)
    if newline < 0 and pos > _LONG_LINE:
        return True  # far into a long line: past any block start, and no line of markup only
    line_start = newline + 1
    line_end = text.find("\n", pos, pos + _LONG_LINE)
    if line_end < 0:
        line_end = min(len(text), pos + _LONG_LINE)
    while line_start < pos and text[line_start] in LINE_PREFIX_CHARS:
        line_start += 1
    line = text[line_start:line_end].rstrip("\r")
    offset = pos - line_start
    if offset > 0 and (line[0] == "!" or line[0].isalpha()):
        return True  # no block starts with these, and the line still starts with it
    if offset > _START_REACH and line[0] not in "<[" and not _SPECIAL_LINE_RE.fullmatch(line):
        return True  # beyond any block start, in a line that is not all markup characters
    probed = line[:offset] + _MARKER_PROBE + line[offset:]
    return all(
        (pattern.match(line) is None) == (pattern.match(probed) is None)
        for pattern in _LINE_FEATURES
    )
