"""Inline images ``![alt](dest)``: which ``]`` may close each ``![``, and the destination after it.

Brackets are matched as the parser matches them: escapes are skipped, and code spans, autolinks
and raw HTML bind tighter than brackets, so they are skipped too (see :func:`bracket_pairs` for the
two readings of a paragraph this takes). A candidate is proposed for each reading; the parser
decides. Every search here is bounded or cached, so that no input (``![`` fifty thousand times,
unclosed comments or quotes) makes the scan worse than linear in practice.

Part of the scanner: imports :mod:`.candidates`, :mod:`.codespans`, :mod:`.destinations` and
:mod:`.inert`. Pure.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator

from imgsync.notes.markdown.candidates import LINE_PREFIX_CHARS, Candidate
from imgsync.notes.markdown.codespans import BacktickRuns
from imgsync.notes.markdown.destinations import Walks, parse_destination
from imgsync.notes.markdown.inert import marker_is_inert

__all__ = [
    "AUTOLINK_RE",
    "AUTO_EMAIL_RE",
    "HTML_ATTRIBUTES",
    "IMAGE_OPEN_RE",
    "INLINE_TAG_RE",
    "MAX_RAW_HTML",
    "bracket_pairs",
    "is_escaped",
    "propose_inline",
]

#: Raw HTML and autolinks are looked for over at most this many characters when matching brackets.
#: Bounds the scanner on pathological input (an unclosed quote in a tag, repeated); real tags are
#: short, and a longer one inside alt text is caught by the cross-check, never mis-rewritten.
MAX_RAW_HTML = 4096

#: Where an image may start.
IMAGE_OPEN_RE = re.compile(r"!\[")
# What the parser (mistune 3.4) takes for an autolink, e-mail autolink, declaration or inline tag
# when it reads a paragraph (its own patterns: a declaration needs upper-case letters and a space,
# an unquoted attribute value no "!"), so that brackets are matched as it matches them.
#: An autolink ``<scheme:...>``.
AUTOLINK_RE = re.compile(r"<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^<>\x00-\x20]*>")
#: An e-mail autolink ``<name@host>``.
AUTO_EMAIL_RE = re.compile(
    r"<[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*>"
)
#: The attributes of an HTML tag (mistune's pattern: an unquoted value takes no "!").
HTML_ATTRIBUTES = (
    r"(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:[^ !\"'=<>`]+|'[^']*'|\"[^\"]*\"))?)*"
)
#: An inline HTML open or close tag.
INLINE_TAG_RE = re.compile(
    r"<[A-Za-z][A-Za-z0-9-]*" + HTML_ATTRIBUTES + r"\s*/?>|</[A-Za-z][A-Za-z0-9-]*\s*>"
)
_DECLARATION_START_RE = re.compile(r"<![A-Z]+[ \t\n\r\f]")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\r?\n")
_BRACKET_SCAN_RE = re.compile(r"[\\<\[\]]|`+")


def propose_inline(body: str, walks: Walks) -> Iterator[Candidate]:
    """A candidate for the destination of each ``![..](..)`` of ``body``, for each way its
    brackets may pair."""
    openers = [match.start() for match in IMAGE_OPEN_RE.finditer(body)]
    pairs = bracket_pairs(body, openers)
    for start in openers:
        if is_escaped(body, start):
            continue
        for close in pairs.get(start + 1, ()):
            if not body.startswith("(", close + 1):
                continue
            dest = parse_destination(body, close + 2, walks, block=False)
            if dest is None:
                continue
            span_start, span_end, angle = dest
            if not marker_is_inert(body, span_end):
                continue
            yield Candidate(
                "inline", span_start, span_end, span_end, alt=body[start + 2 : close], angle=angle
            )


def is_escaped(text: str, pos: int) -> bool:
    """True if an odd number of backslashes comes before ``pos``."""
    count = 0
    pos -= 1
    while pos >= 0 and text[pos] == "\\":
        count += 1
        pos -= 1
    return count % 2 == 1


def bracket_pairs(text: str, openers: list[int]) -> dict[int, list[int]]:
    """Where each ``[`` of the paragraphs holding ``openers`` may be closed: its matching ``]``,
    or two of them when two readings of the paragraph differ.

    Escapes are skipped. Code spans, autolinks and raw HTML bind tighter than brackets, so they are
    skipped too; but a paragraph here runs from blank line to blank line, and a "code span" that
    crosses the end of a heading, list item or table cell in it is none. So the first reading
    skips them only while a bracket is open (a code span that starts before the image cannot then
    run past it); if one it passed over with no bracket open holds a bracket, backtick, ``<`` or
    escape (`` `![` ![a](x.png) ` ``: the first code span hides a ``[``), a second reading skips
    them always. A candidate is proposed for each reading, and the parser decides. Searches are
    bounded or cached, so that no input makes this worse than linear in practice. Paragraphs
    without an image opener are not looked at.
    """
    blanks = [(match.start(), match.end()) for match in _BLANK_LINE_RE.finditer(text)]
    blank_starts = [start for start, _ in blanks]
    finder = _CachedFind(text)
    pairs: dict[int, list[int]] = {}
    done_until = -1
    for opener in openers:
        if opener < done_until:
            continue  # its paragraph is done
        index = bisect_right(blank_starts, opener)
        para_start = blanks[index - 1][1] if index > 0 else 0
        para_end = blank_starts[index] if index < len(blanks) else len(text)
        if _pair_brackets(text, para_start, para_end, finder, pairs, always_skip=False):
            _pair_brackets(text, para_start, para_end, finder, pairs, always_skip=True)
        done_until = para_end
    return pairs


def _pair_brackets(
    text: str,
    pos: int,
    limit: int,
    finder: _CachedFind,
    pairs: dict[int, list[int]],
    *,
    always_skip: bool,
) -> bool:
    """One reading of a paragraph (see :func:`bracket_pairs`), adding what it pairs to ``pairs``.

    Returns True if a code span, autolink or raw HTML it did not skip holds a bracket, backtick,
    ``<`` or escape (then skipping it could pair the brackets differently).
    """
    stack: list[int] = []
    runs: BacktickRuns | None = None
    hides = False
    while True:
        match = _BRACKET_SCAN_RE.search(text, pos, limit)
        if match is None:
            return hides
        start = match.start()
        char = text[start]
        pos = match.end()
        if char == "\\":
            pos = start + 2
            continue
        if char == "[":
            stack.append(start)
            continue
        if char == "]":
            if stack:
                closers = pairs.setdefault(stack.pop(), [])
                if start not in closers:
                    closers.append(start)
            continue
        skip = bool(stack) or always_skip
        if not skip and (hides or (pos - start >= 3 and char == "`" and _starts_line(text, start))):
            continue  # the answer is known, or a fence: it starts a code block, not a code span
        if char == "`":
            if runs is None:
                runs = BacktickRuns(text, start, limit)
            # A run that starts after an escaped backtick is shorter than the run recorded there;
            # it can still open a code span (the closer is a whole run of its length), or none.
            size = pos - start
            end = runs.closer(start, size)
            if end is None:
                continue  # no closer: the run is text
            inside = pos
            after = end + size
        else:
            after = _raw_html_end(text, start, limit, finder)
            if after is None:
                continue  # no tag: the "<" is text
            inside, end = pos, after
        if skip:
            pos = after
        elif _BRACKET_SCAN_RE.search(text, inside, end) is not None:
            hides = True


def _starts_line(text: str, pos: int) -> bool:
    """True if only spaces, tabs and quote markers come before ``pos`` on its line."""
    while pos > 0 and text[pos - 1] in LINE_PREFIX_CHARS:
        pos -= 1
    return pos == 0 or text[pos - 1] == "\n"


class _CachedFind:
    """``str.find`` of a few terminators, remembering the last answer so that many unclosed
    openers (``<!--`` a thousand times) cost one search, not one each."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.last: dict[str, tuple[int, int]] = {}

    def find(self, term: str, start: int) -> int:
        searched_from, found = self.last.get(term, (-1, -1))
        if 0 <= searched_from <= start and (found < 0 or found >= start):
            return found
        found = self.text.find(term, start)
        self.last[term] = (start, found)
        return found


def _raw_html_end(text: str, start: int, limit: int, finder: _CachedFind) -> int | None:
    """End of the autolink or raw HTML starting at ``start`` (before ``limit``), or None.

    Tried in the parser's order: autolinks first (``<!--x@y.z>`` is an e-mail address).
    """
    bound = min(limit, start + MAX_RAW_HTML)
    link = AUTOLINK_RE.match(text, start, bound) or AUTO_EMAIL_RE.match(text, start, bound)
    if link is not None:
        return link.end()
    if text.startswith("<!--", start):
        if text.startswith(("<!-->", "<!--->"), start):
            return start + (5 if text.startswith("<!-->", start) else 6)
        close, size = finder.find("-->", start + 4), 3
    elif text.startswith("<?", start):
        close, size = finder.find("?>", start + 2), 2
    elif text.startswith("<![CDATA[", start):
        close, size = finder.find("]]>", start + 9), 3
    elif text.startswith("<!", start):
        declaration = _DECLARATION_START_RE.match(text, start, limit)
        if declaration is None:
            return None
        close, size = finder.find(">", declaration.end()), 1
    else:
        tag = INLINE_TAG_RE.match(text, start, bound)
        return None if tag is None else tag.end()
    return close + size if close >= 0 and close + size <= limit else None
