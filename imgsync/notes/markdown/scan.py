"""The scanner: propose where image references *might* be in a note body, with exact spans.

:func:`imgsync.notes.markdown.find_images` needs byte-exact positions, and mistune gives none; so
this
module reads the raw text and **proposes** candidates: inline destinations ``![..](dest)``,
reference definitions ``[label]: dest``, ``<img src=..>`` values and Obsidian ``![[..]]`` embeds
(see ``docs/markdown-rules.md``). It is deliberately liberal: a candidate in a code span, a comment
or plain text costs nothing, because the parser (:mod:`imgsync.notes.markdown.parse`) decides which
candidates
are images. What this module must get right is the span of each real one, and never to propose a
candidate whose marker would change the parse (:func:`_marker_is_inert`).

Every search here is bounded or cached, so that no input (``![`` fifty thousand times, unclosed
comments or quotes) makes the scan worse than linear in practice.

It is the lowest layer of the markdown modules: it imports neither
:mod:`imgsync.notes.markdown.parse` nor
:mod:`imgsync.notes.markdown`, and it never imports mistune. Pure: no filesystem, no network.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EMBED_PATTERN",
    "IMAGE_EXTENSIONS",
    "Candidate",
    "has_image_extension",
    "may_hold_images",
    "propose",
    "scan_img_tags",
    "split_embed",
]

#: File extensions treated as images (lower case, with the dot). Embeds and local files only count
#: as images when their name ends with one of these.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".tif", ".tiff"}
)

#: Raw HTML and autolinks are looked for over at most this many characters when matching brackets.
#: Bounds the scanner on pathological input (an unclosed quote in a tag, repeated); real tags are
#: short, and a longer one inside alt text is caught by the cross-check, never mis-rewritten.
MAX_RAW_HTML = 4096

#: CommonMark link labels are at most 999 characters.
MAX_LABEL_LENGTH = 999

#: A reference definition's label is looked for over at most this many lines. Longer labels are
#: legal but unheard of; an image using one is caught by the cross-check.
MAX_LABEL_LINES = 5

#: Obsidian embeds ``![[file|alias]]``; the parser's embed plugin uses the same pattern.
EMBED_PATTERN = r"!\[\[[^\[\]\n]+\]\]"
_EMBED_RE = re.compile(EMBED_PATTERN)

_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_MD_WHITESPACE = " \t\n\r\f"

_IMAGE_OPEN_RE = re.compile(r"!\[")
_HAS_IMG_TAG_RE = re.compile(r"<img", re.IGNORECASE)
# A reference definition starts its line, after container prefixes (quotes, list markers).
_DEF_RE = re.compile(
    r"[ \t>*+\-0-9.)]*\[(?P<label>(?:[^\\\[\]]|\\.){1," + str(MAX_LABEL_LENGTH) + r"})\]:"
)
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\r?\n")
_BRACKET_SCAN_RE = re.compile(r"[\\<\[\]]|`+")
_BACKTICKS_RE = re.compile(r"`+")
# What the parser (mistune 3.4) takes for an autolink, e-mail autolink, declaration or inline tag
# when it reads a paragraph (its own patterns: a declaration needs upper-case letters and a space,
# an unquoted attribute value no "!"), so that brackets are matched as it matches them.
_AUTOLINK_RE = re.compile(r"<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^<>\x00-\x20]*>")
_AUTO_EMAIL_RE = re.compile(
    r"<[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*>"
)
_DECLARATION_START_RE = re.compile(r"<![A-Z]+[ \t\n\r\f]")
_INLINE_TAG_RE = re.compile(
    r"<[A-Za-z][A-Za-z0-9-]*"
    r"(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:[^ !\"'=<>`]+|'[^']*'|\"[^\"]*\"))?)*"
    r"\s*/?>"
    r"|</[A-Za-z][A-Za-z0-9-]*\s*>"
)
_HTML_TAG_RE = re.compile(
    r"</?[A-Za-z][A-Za-z0-9-]*"
    r"(?:[ \t\n\r\f]+[A-Za-z_:][A-Za-z0-9_.:-]*"
    r"(?:[ \t\n\r\f]*=[ \t\n\r\f]*(?:[^ \t\n\r\f\"'=<>`]+|'[^']*'|\"[^\"]*\"))?)*"
    r"[ \t\n\r\f]*/?>"
)
_IMG_START_RE = re.compile(r"<img(?=[ \t\n\r\f/>])", re.IGNORECASE)
_HTML_SKIP_RE = re.compile(
    r"<!--|<(script|style|textarea)(?=[ \t\n\r\f/>])|<img(?=[ \t\n\r\f/>])", re.IGNORECASE
)
_HTML_ATTR_RE = re.compile(
    r"[ \t\n\r\f]+(?P<name>[A-Za-z_:][A-Za-z0-9_.:-]*)"
    r"(?:[ \t\n\r\f]*=[ \t\n\r\f]*"
    r"(?:(?P<bare>[^ \t\n\r\f\"'=<>`]+)|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"))?"
)
_HTML_TAG_END_RE = re.compile(r"[ \t\n\r\f]*/?>")
# What the block parser sees in a marker: letters and digits.
_MARKER_PROBE = "Z0"
_BLOCK_TAG_NAMES = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details|"
    "dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|h[1-6]|head|"
    "header|hr|html|iframe|legend|li|link|main|menu|menuitem|meta|nav|noframes|ol|optgroup|"
    "option|p|param|search|section|summary|table|tbody|td|tfoot|th|thead|title|tr|track|ul"
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
        r"</?(?:" + _BLOCK_TAG_NAMES + r")(?:[ \t>]|/>|$)",  # HTML block, kind 6
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
_BARE_DEST_RUN_RE = re.compile(r"[^ \t\n\r\f\x00-\x1f\x7f\\()]+")
_ANGLE_DEST_RUN_RE = re.compile(r"[^<>\\\n\r\x00]+")
# Content that ends an HTML block.
_LINE_CONTENT_FEATURES = (
    re.compile(r"-->"),
    re.compile(r"\?>"),
    re.compile(r"\]\]>"),
    re.compile(r"</(?:script|pre|style|textarea)>", re.IGNORECASE),
)
_LINE_PREFIX_CHARS = " \t>"


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


def has_image_extension(name: str) -> bool:
    """True if ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def may_hold_images(body: str) -> bool:
    """False when ``body`` has neither ``![`` nor ``<img``: then it holds no image and the (costly)
    parse can be skipped."""
    return _IMAGE_OPEN_RE.search(body) is not None or _HAS_IMG_TAG_RE.search(body) is not None


# --------------------------------------------------------------------------------------------------
# the scanner: propose candidates


def propose(body: str) -> list[Candidate]:
    """Every candidate of ``body`` once (a place proposed twice, as the same kind, counts once)."""
    candidates: list[Candidate] = []
    walks: dict[int, tuple[int, int]] = {}  # bare destinations, shared (see _bare_walk)
    if "!" in body:
        candidates.extend(_propose_inline(body, walks))
        candidates.extend(_propose_embeds(body))
    if "]:" in body:
        candidates.extend(_propose_definitions(body, walks))
    candidates.extend(_propose_html(body))
    unique: dict[tuple[int, int, str], Candidate] = {}
    for candidate in candidates:
        unique.setdefault((candidate.start, candidate.end, candidate.kind), candidate)
    return list(unique.values())


def _propose_inline(body: str, walks: dict[int, tuple[int, int]]) -> Iterator[Candidate]:
    openers = [match.start() for match in _IMAGE_OPEN_RE.finditer(body)]
    pairs = _bracket_pairs(body, openers)
    for start in openers:
        if _is_escaped(body, start):
            continue
        for close in pairs.get(start + 1, ()):
            if not body.startswith("(", close + 1):
                continue
            dest = _parse_destination(body, close + 2, walks, block=False)
            if dest is None:
                continue
            span_start, span_end, angle = dest
            if not _marker_is_inert(body, span_end):
                continue
            yield Candidate(
                "inline", span_start, span_end, span_end, alt=body[start + 2 : close], angle=angle
            )


def _propose_definitions(body: str, walks: dict[int, tuple[int, int]]) -> Iterator[Candidate]:
    """Reference definitions: found from their ``]:`` (rare in text), then checked to start a
    line (after container prefixes); a label may run over a few lines.

    What a line start matches, and where the line before it starts, are looked up once per line:
    a line of many ``]:`` after a long prefix (``- - - ...``) would otherwise be read again for
    each of them.
    """
    matches: dict[int, re.Match[str] | None] = {}  # line start -> the definition starting there
    previous: dict[int, int] = {}  # line start -> start of the line before
    line_start = searched = 0
    colon = body.find("]:")
    while colon >= 0:
        newline = body.rfind("\n", searched, colon)
        if newline >= 0:
            line_start = newline + 1
        searched = colon
        start = line_start
        for _ in range(MAX_LABEL_LINES):
            if start in matches:
                match = matches[start]
            else:
                match = matches[start] = _DEF_RE.match(body, start)
            if match is not None and match.end() == colon + 2:
                candidate = _definition_candidate(body, match, walks)
                if candidate is not None:
                    yield candidate
                break
            if start == 0:
                break
            if start not in previous:
                previous[start] = body.rfind("\n", 0, start - 1) + 1
            start = previous[start]
        colon = body.find("]:", colon + 2)


def _definition_candidate(
    body: str, match: re.Match[str], walks: dict[int, tuple[int, int]]
) -> Candidate | None:
    if not match.group("label").strip(_MD_WHITESPACE):
        return None
    dest = _parse_destination(body, match.end(), walks, block=True)
    if dest is None:
        return None
    span_start, span_end, angle = dest
    if not _marker_is_inert(body, span_end):
        return None
    return Candidate("reference", span_start, span_end, span_end, angle=angle)


def _propose_html(body: str) -> Iterator[Candidate]:
    if not _HAS_IMG_TAG_RE.search(body):
        return
    for value_start, value_end, quote, alt in scan_img_tags(body, skip_comments=False):
        if not _marker_is_inert(body, value_end):
            continue
        yield Candidate("html", value_start, value_end, value_end, alt=alt, quote=quote)


def _propose_embeds(body: str) -> Iterator[Candidate]:
    if "![[" not in body:
        return
    for match in _EMBED_RE.finditer(body):
        inner_start = match.start() + 3
        file_start, file_end, alias = split_embed(body, inner_start, match.end() - 2)
        target = body[file_start:file_end]
        if not has_image_extension(target) or not _marker_is_inert(body, file_end):
            continue
        yield Candidate("embed", match.start(), match.end(), file_end, alt=alias, target=target)


def split_embed(text: str, start: int, end: int) -> tuple[int, int, str]:
    """Split an embed body ``file#anchor|alias`` (``\\|`` in tables) into file span and alias."""
    pipe = text.find("|", start, end)
    head_end = end if pipe < 0 else pipe
    alias = "" if pipe < 0 else text[pipe + 1 : end].strip()
    if pipe >= 0 and head_end > start and text[head_end - 1] == "\\":
        head_end -= 1
    hash_pos = text.find("#", start, head_end)
    file_end = head_end if hash_pos < 0 else hash_pos
    file_start = start
    while file_start < file_end and text[file_start] in " \t":
        file_start += 1
    while file_end > file_start and text[file_end - 1] in " \t":
        file_end -= 1
    return file_start, file_end, alias


def _is_escaped(text: str, pos: int) -> bool:
    count = 0
    pos -= 1
    while pos >= 0 and text[pos] == "\\":
        count += 1
        pos -= 1
    return count % 2 == 1


def _bracket_pairs(text: str, openers: list[int]) -> dict[int, list[int]]:
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
    """One reading of a paragraph (see :func:`_bracket_pairs`), adding what it pairs to ``pairs``.

    Returns True if a code span, autolink or raw HTML it did not skip holds a bracket, backtick,
    ``<`` or escape (then skipping it could pair the brackets differently).
    """
    stack: list[int] = []
    runs: dict[int, list[int]] | None = None
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
                runs = {}
                for run in _BACKTICKS_RE.finditer(text, start, limit):
                    runs.setdefault(run.end() - run.start(), []).append(run.start())
            # A run that starts after an escaped backtick is shorter than the run recorded there;
            # it can still open a code span (the closer is a whole run of its length), or none.
            size = pos - start
            starts = runs.get(size, [])
            later = bisect_right(starts, start)
            if later == len(starts):
                continue  # no closer: the run is text
            inside, end = pos, starts[later]
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
    while pos > 0 and text[pos - 1] in _LINE_PREFIX_CHARS:
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
    link = _AUTOLINK_RE.match(text, start, bound) or _AUTO_EMAIL_RE.match(text, start, bound)
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
        tag = _INLINE_TAG_RE.match(text, start, bound)
        return None if tag is None else tag.end()
    return close + size if close >= 0 and close + size <= limit else None


def _parse_destination(
    text: str, pos: int, walks: dict[int, tuple[int, int]], *, block: bool
) -> tuple[int, int, bool] | None:
    """Locate a link destination at ``pos`` as CommonMark (and mistune) read it.

    Returns ``(start, end, angle)`` of the destination text (inside ``<>`` when angle), or None.
    Only the destination is located; whether the whole link is valid is left to the parser.
    ``walks`` remembers bare destinations between calls on one ``text`` (see :func:`_bare_walk`).
    """
    pos = _skip_link_whitespace(text, pos)
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
                pos += 2 if pos + 1 < length and text[pos + 1] in _ASCII_PUNCT else 1
                continue
            return None  # "<", a line ending or NUL
        return None
    if block and char in _MD_WHITESPACE:
        return None
    end, how = _bare_walk(text, pos, walks)
    if how not in (_CLOSED, _ENDED) or (block and end == pos):
        return None
    return pos, end, False


# How the walk of a bare destination ends (see _bare_walk).
_CLOSED = 0  # at a ")" that closes no "(" of the walk: the destination ends before it
_ENDED = 1  # at whitespace or the end of the text, every "(" closed
_UNCLOSED = 2  # at whitespace or the end of the text, a "(" left open: no destination
_INVALID = 3  # at a control character: no destination


def _bare_walk(text: str, start: int, walks: dict[int, tuple[int, int]]) -> tuple[int, int]:
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
            if char in _MD_WHITESPACE:
                break
            if char == "\\":
                pos += 2 if pos + 1 < length and text[pos + 1] in _ASCII_PUNCT else 1
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


def _skip_link_whitespace(text: str, pos: int) -> int:
    """Skip spaces and tabs around at most one line ending, and a quote's ``>`` after it (mistune
    strips those before it sees the line; outside a quote the ``>`` line is never a destination, and
    a marker there changes nothing)."""
    length = len(text)
    while pos < length and text[pos] in " \t":
        pos += 1
    if pos < length and text[pos] in "\r\n":
        pos += 2 if text.startswith("\r\n", pos) else 1
        while pos < length and text[pos] in " \t":
            pos += 1
        while pos < length and text[pos] in _LINE_PREFIX_CHARS:
            pos += 1
    return pos


def _marker_is_inert(text: str, pos: int) -> bool:
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
    while line_start < pos and text[line_start] in _LINE_PREFIX_CHARS:
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


# --------------------------------------------------------------------------------------------------
# HTML


def scan_img_tags(text: str, *, skip_comments: bool) -> Iterator[tuple[int, int, str, str]]:
    """Yield ``(value_start, value_end, quote, alt)`` of the ``src`` of each complete ``<img>``.

    With ``skip_comments`` (used on the parser's HTML tokens), comments and the raw contents of
    ``script``, ``style`` and ``textarea`` are skipped, as a browser does.
    """
    finder = _HTML_SKIP_RE if skip_comments else _IMG_START_RE
    pos = 0
    while True:
        match = finder.search(text, pos)
        if match is None:
            return
        token = match.group(0)
        if token == "<!--":
            close = text.find("-->", match.end())
            if close < 0:
                return
            pos = close + 3
            continue
        if skip_comments and match.group(1):
            close_re = re.compile(r"</" + match.group(1) + r"[ \t\n\r\f]*>", re.IGNORECASE)
            close_match = close_re.search(text, match.end())
            if close_match is None:
                return
            pos = close_match.end()
            continue
        pos = match.end()
        src: tuple[int, int, str] | None = None
        alt = ""
        while True:
            attr = _HTML_ATTR_RE.match(text, pos)
            if attr is None:
                break
            pos = attr.end()
            name = attr.group("name").lower()
            if name == "src" and src is None:
                src = _attr_value_span(attr)
            elif name == "alt" and not alt:
                value = _attr_value_span(attr)
                alt = text[value[0] : value[1]] if value else ""
        end = _HTML_TAG_END_RE.match(text, pos)
        if end is None:
            pos = match.end()  # no tag: an <img> inside what looked like its attributes may be one
            continue
        pos = end.end()
        if src is not None:
            yield src[0], src[1], src[2], alt


def _attr_value_span(attr: re.Match[str]) -> tuple[int, int, str] | None:
    for group, quote in (("dq", '"'), ("sq", "'"), ("bare", "")):
        if attr.group(group) is not None:
            return attr.start(group), attr.end(group), quote
    return None
