"""Link destinations: where the ``dest`` of ``![..](dest)`` and ``[label]: dest`` starts and ends,
read as CommonMark (and mistune) read it.

Only the destination is located; whether the whole link is valid is left to the parser. A bare
destination may hold balanced parentheses, each of which opens a destination of its own; the walks
are remembered by where they start, so that no line of them (``![a](b(`` repeated) is read more
than once (see :func:`_bare_walk`).

Part of the scanner: imports only :mod:`.candidates`. Pure.
"""

from __future__ import annotations

import re

from imgsync.notes.markdown.candidates import LINE_PREFIX_CHARS

__all__ = ["ASCII_PUNCT", "MD_WHITESPACE", "Walks", "parse_destination", "skip_link_whitespace"]

#: The characters a backslash escapes (CommonMark's ASCII punctuation).
ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
#: Whitespace as Markdown counts it in links and labels.
MD_WHITESPACE = " \t\n\r\f"

#: Bare destinations already walked in one text: start -> (end, how it ended).
Walks = dict[int, tuple[int, int]]

_BARE_DEST_RUN_RE = re.compile(r"[^ \t\n\r\f\x00-\x1f\x7f\\()]+")
_ANGLE_DEST_RUN_RE = re.compile(r"[^<>\\\n\r\x00]+")

# How the walk of a bare destination ends (see _bare_walk).
_CLOSED = 0  # at a ")" that closes no "(" of the walk: the destination ends before it
_ENDED = 1  # at whitespace or the end of the text, every "(" closed
_UNCLOSED = 2  # at whitespace or the end of the text, a "(" left open: no destination
_INVALID = 3  # at a control character: no destination


def parse_destination(
    text: str, pos: int, walks: Walks, *, block: bool
) -> tuple[int, int, bool] | None:
    """Locate a link destination at ``pos`` as CommonMark (and mistune) read it.

    Returns ``(start, end, angle)`` of the destination text (inside ``<>`` when angle), or None.
    ``block`` is True for a reference definition (whose destination may not be empty).
    ``walks`` remembers bare destinations between calls on one ``text`` (see :func:`_bare_walk`).
    """
    pos = skip_link_whitespace(text, pos)
    length = len(text)
    if pos >= length:
        return None
    char = text[pos]
    if char == "<":
        # Ends at the first unescaped "<", ">" or line ending, so at the latest where the next
        # angle destination starts (its "<" follows a "(" or whitespace, never an escape): the
        # walks of a line of them do not overlap, and need no memory.
        start = pos = pos + 1
        while pos < length:
            run = _ANGLE_DEST_RUN_RE.match(text, pos)
            if run is not None:
                pos = run.end()
                if pos >= length:
                    break
            char = text[pos]
            if char == ">":
                return start, pos, True
            if char == "\\":
                pos += 2 if pos + 1 < length and text[pos + 1] in ASCII_PUNCT else 1
                continue
            return None  # "<", a line ending or NUL
        return None
    if block and char in MD_WHITESPACE:
        return None
    end, how = _bare_walk(text, pos, walks)
    if how not in (_CLOSED, _ENDED) or (block and end == pos):
        return None
    return pos, end, False


def _bare_walk(text: str, start: int, walks: Walks) -> tuple[int, int]:
    """Where and how (``_CLOSED`` ...) the walk of a bare destination starting at ``start`` ends.

    The walk reads escapes, whitespace, control characters and parentheses (nested parentheses
    must balance). What follows a ``(`` is itself such a walk, which must end ``_CLOSED`` for the
    enclosing one to go on past its ``)``; and a walk depends on nothing but where it starts. So
    each walk is remembered in ``walks`` by its start, and one that reaches a ``(`` whose walk is
    known jumps over it. On ``![a](b(`` repeated, each destination holds all the later ones up to
    the end of the line; without this, each would read the line to its end again (quadratic: an
    80 KB line took 30 s). With it, every character is read by one walk only, in one pass.
    """
    known = walks.get(start)
    if known is not None:
        return known
    length = len(text)
    frames = [start]  # the walks under way, innermost last
    pos = start
    while True:
        how = _ENDED
        while pos < length:
            run = _BARE_DEST_RUN_RE.match(text, pos)
            if run is not None:
                pos = run.end()
                if pos >= length:
                    break
            char = text[pos]
            if char in MD_WHITESPACE:
                break
            if char == "\\":
                pos += 2 if pos + 1 < length and text[pos + 1] in ASCII_PUNCT else 1
                continue
            if char == "(":
                nested = walks.get(pos + 1)
                if nested is None:
                    frames.append(pos + 1)  # read it now, as the innermost walk
                    pos += 1
                    continue
                end, nested_how = nested
                if nested_how == _CLOSED:
                    pos = end + 1
                    continue
                pos, how = end, _INVALID if nested_how == _INVALID else _UNCLOSED
                break
            how = _CLOSED if char == ")" else _INVALID
            break
        walks[frames.pop()] = (pos, how)
        # A nested walk that does not end at its ")" leaves the enclosing ones unclosed (or
        # invalid) at the same place.
        while frames and how != _CLOSED:
            how = _INVALID if how == _INVALID else _UNCLOSED
            walks[frames.pop()] = (pos, how)
        if not frames:
            return walks[start]
        pos += 1  # past the ")" that closed the nested walk


def skip_link_whitespace(text: str, pos: int, *, continuation: str = LINE_PREFIX_CHARS) -> int:
    """Skip spaces and tabs around at most one line ending, as before a link destination or title.

    After the line ending, the characters of ``continuation`` are skipped: by default also a
    quote's ``>`` (mistune strips those before it sees the line; outside a quote the ``>`` line is
    never a destination, and a marker there changes nothing).
    """
    length = len(text)
    while pos < length and text[pos] in " \t":
        pos += 1
    if pos < length and text[pos] in "\r\n":
        pos += 2 if text.startswith("\r\n", pos) else 1
        while pos < length and text[pos] in continuation:
            pos += 1
    return pos
