"""Links and images as mistune's inline parser reads them: the inline reading of the simple-note
decider (:mod:`.simple`).

:func:`read_inline` follows mistune 3.4's inline parser over one block's text, left to right,
for the constructs that decide where images are: code spans, autolinks and inline tags are
atomic; embeds ``![[..]]`` are atomic; ``[`` and ``![`` open brackets; each ``]`` closes the last
open one into a link or image (an inline destination and title, or a full, collapsed or
shortcut reference to a known definition) or leaves it as text; a link deactivates the link
brackets before it. Emphasis is not resolved: it never changes where a link is.

What it does not follow raises :class:`Undecided`: a backslash outside a code span, ``<!``,
``<?``, an ``<a>`` tag (after which mistune reads links otherwise), brackets or parentheses nested
deeper than anyone writes, overlong labels.

Part of the simple-note decider: imports :mod:`.brackets`, :mod:`.candidates`, :mod:`.codespans`,
:mod:`.definitions`, :mod:`.destinations` and :mod:`.embeds`. Pure.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass, field

from imgsync.notes.markdown.brackets import AUTO_EMAIL_RE, AUTOLINK_RE, INLINE_TAG_RE
from imgsync.notes.markdown.candidates import SURROGATE_RE
from imgsync.notes.markdown.codespans import BACKTICKS_RE, BacktickRuns
from imgsync.notes.markdown.definitions import LINK_LABEL, MAX_LABEL_LENGTH
from imgsync.notes.markdown.destinations import MD_WHITESPACE, skip_link_whitespace
from imgsync.notes.markdown.embeds import EMBED_RE

__all__ = [
    "MAX_LABEL",
    "TITLE_CLOSERS",
    "InlineReading",
    "Node",
    "Undecided",
    "destination",
    "read_inline",
    "title_end",
    "unikey",
]

# mistune gives up on links and images nested this deep (its max_nested_level, 20); well below
# it, nothing here depends on that limit, so a note nesting deeper goes to the parser.
_MAX_DEPTH = 6
# Emphasis inside a link's text adds to that depth once mistune resolves it: a link or image whose
# text holds this many runs of ``*``/``_`` or more could come near the limit.
_MAX_EMPHASIS = 20
#: Labels are at most 999 characters (CommonMark, mistune); a label longer than this, well below
#: that limit, goes to the parser, so that nothing here depends on the limit.
MAX_LABEL = 500
# mistune's limit on nested parentheses in a destination is 20; deeper goes to the parser.
_MAX_PARENS = 6

_SCAN_RE = re.compile(r"[\\`!\[\]<]")
_LABEL_RE = re.compile(LINK_LABEL + r"\]")
_ANCHOR_TAG_RE = re.compile(r"</?[aA](?![A-Za-z0-9-])")
_EMPHASIS_RUN_RE = re.compile(r"[*_]+")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
# The characters of a destination that need no look: all but whitespace, controls, backslashes
# and parentheses (bare), or ``<``, ``>``, backslashes, line endings and NUL (in ``<>``).
_BARE_RUN_RE = re.compile(r"[^ \t\n\r\f\x00-\x1f\x7f\\()]*")
_ANGLE_RUN_RE = re.compile(r"[^<>\\\n\r\x00]*")
# Characters that make an alt text more than its plain text (markup, entities, line breaks).
_MARKUP_RE = re.compile(r"[`*_\\<\[\]&\n]")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: The characters that open a link title, and what closes each.
TITLE_CLOSERS = {'"': '"', "'": "'", "(": ")"}


class Undecided(Exception):
    """The text is not simple: the parser decides."""


@dataclass
class Node:
    """A token of the reading that matters for images.

    ``kind`` is "open" (a bracket, text unless it is closed), "image", "link", "html" (an inline
    tag), "embed" or "autolink". ``start``/``end`` is the construct in the text, or for an image
    or link with an inline destination, that destination (inside ``<>``).
    """

    kind: str
    start: int = 0
    end: int = 0
    key: str | None = None  # a reference's label, as mistune compares labels
    alt: str | None = None  # an image by reference: its plain alt text, None if it has markup
    children: list[Node] = field(default_factory=list)
    depth: int = 0


@dataclass
class InlineReading:
    """What :func:`read_inline` found: the top-level nodes, the content of every code span, and
    every label looked up as a reference (spans in the text)."""

    nodes: list[Node]
    code_spans: list[tuple[int, int]]
    labels: list[tuple[int, int]]


def read_inline(text: str, definitions: Collection[str]) -> InlineReading:
    """Read ``text`` (one block's, as mistune's inline parser gets it) as mistune does, with
    ``definitions`` the labels (:func:`unikey`) that are defined. Raises :class:`Undecided`."""
    return _Reader(text, definitions).read()


def unikey(label: str) -> str:
    """A label as mistune compares labels (whitespace collapsed, case folded its way)."""
    return " ".join(label.split()).lower().upper()


def destination(text: str, pos: int) -> tuple[int, int, int] | None:
    """A link destination at ``pos`` (after spaces, tabs and at most one line ending): its span
    (inside ``<>`` when angle) and where it ends; None if there is none. A backslash raises
    :class:`Undecided`."""
    length = len(text)
    pos = skip_link_whitespace(text, pos, continuation=" \t")
    if pos >= length:
        return None
    if text[pos] == "<":
        end = _run_end(_ANGLE_RUN_RE, text, pos + 1)
        char = text[end : end + 1]
        if char == "\\":
            raise Undecided
        return (pos + 1, end, end + 1) if char == ">" else None
    start, level = pos, 0
    while pos < length:
        pos = _run_end(_BARE_RUN_RE, text, pos)
        char = text[pos : pos + 1]
        if not char or char in MD_WHITESPACE:
            break
        if char == "\\":
            raise Undecided
        if char == "(":
            level += 1
            if level > _MAX_PARENS:
                raise Undecided
        elif char == ")":
            if level == 0:
                break
            level -= 1
        else:
            return None  # a control character
        pos += 1
    if level != 0:
        return None
    return start, pos, pos


def title_end(text: str, pos: int, limit: int) -> int | None:
    """Where a link title after ``pos`` ends (whitespace first, then ``"..."``, ``'...'`` or
    ``(...)``, no blank line inside), or None if there is none. A backslash raises
    :class:`Undecided`."""
    if pos >= limit or text[pos] not in MD_WHITESPACE:
        return None
    while pos < limit and text[pos] in MD_WHITESPACE:
        pos += 1
    if pos >= limit or text[pos] not in TITLE_CLOSERS:
        return None
    opener, closer = text[pos], TITLE_CLOSERS[text[pos]]
    pos += 1
    while pos < limit:
        char = text[pos]
        if char == "\x00" or (opener == "(" and char == "("):
            return None
        if char == "\n" and _BLANK_LINE_RE.match(text, pos, limit):
            return None
        if char == "\\":
            raise Undecided
        if char == closer:
            return pos + 1
        pos += 1
    return None


def _run_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    found = pattern.match(text, pos)
    return pos if found is None else found.end()


def _inline_link(text: str, pos: int) -> tuple[int, int, int] | None:
    """``dest "title")`` after a ``](``: the destination's span and where the link ends."""
    dest = destination(text, pos)
    if dest is None:
        return None
    start, end, after = dest
    pos = title_end(text, after, len(text)) or after
    while pos < len(text) and text[pos] in MD_WHITESPACE:
        pos += 1
    if pos >= len(text) or text[pos] != ")":
        return None
    return start, end, pos + 1


@dataclass
class _Bracket:
    start: int  # after the bracket
    index: int  # of its node
    image: bool
    previous_link: _Bracket | None
    active: bool = True
    nested: bool = False


class _Reader:
    def __init__(self, text: str, definitions: Collection[str]) -> None:
        self.text = text
        self.definitions = definitions
        self.nodes: list[Node] = []
        self.brackets: list[_Bracket] = []
        self.last_link: _Bracket | None = None
        self.code_spans: list[tuple[int, int]] = []
        self.labels: list[tuple[int, int]] = []
        self.runs: BacktickRuns | None = None
        self.emphasis: list[int] | None = None

    def read(self) -> InlineReading:
        text = self.text
        pos = 0
        while True:
            found = _SCAN_RE.search(text, pos)
            if found is None:
                return InlineReading(self.nodes, self.code_spans, self.labels)
            start = found.start()
            char = text[start]
            if char == "\\":
                raise Undecided  # escapes: the parser reads them
            if char == "`":
                pos = self._code_span(start)
            elif char == "!":
                pos = self._bang(start)
            elif char == "[":
                self._open(start + 1, image=False)
                pos = start + 1
            elif char == "]":
                pos = self._close_run(start)
            else:
                pos = self._angle(start)

    def _code_span(self, start: int) -> int:
        end = _run_end(BACKTICKS_RE, self.text, start)
        size = end - start
        if self.runs is None:
            self.runs = BacktickRuns(self.text)
        close = self.runs.closer(start, size)
        if close is None:
            return end  # no closer: the run is text
        self.code_spans.append((end, close))
        return close + size

    def _bang(self, start: int) -> int:
        text = self.text
        if text.startswith("![[", start):
            embed = EMBED_RE.match(text, start)
            if embed is not None:
                self.nodes.append(Node("embed", start, embed.end()))
                return embed.end()
        if text.startswith("![", start):
            self._open(start + 2, image=True)
            return start + 2
        return start + 1

    def _angle(self, start: int) -> int:
        """``<``: an autolink, an inline tag, or text (mistune's order)."""
        text = self.text
        link = AUTOLINK_RE.match(text, start) or AUTO_EMAIL_RE.match(text, start)
        if link is not None:
            self.nodes.append(Node("autolink", start, link.end(), depth=1))
            return link.end()
        following = text[start + 1 : start + 2]
        if following in ("!", "?"):
            raise Undecided  # comments, declarations, processing instructions
        if following == "/" or following in _ASCII_LETTERS:
            tag = INLINE_TAG_RE.match(text, start)
            if tag is not None:
                if _ANCHOR_TAG_RE.match(text, start):
                    raise Undecided  # <a> changes how mistune reads links after it
                self.nodes.append(Node("html", start, tag.end()))
                return tag.end()
        return start + 1

    def _open(self, after: int, *, image: bool) -> None:
        if self.brackets:
            self.brackets[-1].nested = True
        bracket = _Bracket(after, len(self.nodes), image, self.last_link)
        if not image:
            self.last_link = bracket
        self.nodes.append(Node("open", after))
        self.brackets.append(bracket)

    def _close_run(self, start: int) -> int:
        """A run of ``]``: each closes the last open bracket, while there is one."""
        end = start
        while end < len(self.text) and self.text[end] == "]":
            end += 1
        pos = start
        while pos < end:
            if not self.brackets:
                return end
            pos = self._close(pos)
        return pos

    def _close(self, close: int) -> int:
        """One ``]``, as mistune's ``_close_bracket`` reads it; returns where reading goes on."""
        text = self.text
        opener = self.brackets.pop()
        if not opener.image:
            self.last_link = opener.previous_link
        if not opener.active:
            return close + 1
        kind = "image" if opener.image else "link"
        node: Node | None = None
        end = close + 1
        if text.startswith("(", end):
            link = _inline_link(text, end + 1)
            if link is not None:
                dest_start, dest_end, end = link
                node = Node(kind, dest_start, dest_end)
        if node is None:
            reference = self._reference(opener, close)
            if reference is None:
                return close + 1
            key, end = reference
            node = Node(kind, key=key)
            if opener.image:
                alt = text[opener.start : close]
                node.alt = None if _MARKUP_RE.search(alt) else alt
        node.children = self.nodes[opener.index + 1 :]
        node.depth = 1 + max((child.depth for child in node.children), default=0)
        if node.depth > _MAX_DEPTH or self._emphasis_runs(opener.start, close) >= _MAX_EMPHASIS:
            raise Undecided
        del self.nodes[opener.index :]
        self.nodes.append(node)
        if not opener.image:
            # A link deactivates the link brackets before it (images may still form).
            bracket = self.last_link
            while bracket is not None and bracket.active:
                bracket.active = False
                bracket = bracket.previous_link
        return end

    def _reference(self, opener: _Bracket, close: int) -> tuple[str, int] | None:
        """The definition a ``]`` at ``close`` refers to (full, collapsed or shortcut reference)
        and where reading goes on; None if it refers to none."""
        if not self.definitions:
            return None
        text = self.text
        end = close + 1
        label: str | None = None
        next_pos: int | None = None
        label_start = 0
        if text.startswith("[", end):
            found = _LABEL_RE.match(text, end + 1, end + 2 + MAX_LABEL_LENGTH)
            if found is not None:
                label, next_pos, label_start = found.group(0)[:-1], found.end(), end + 1
        if not label:
            if opener.nested or close - opener.start > MAX_LABEL_LENGTH:
                return None
            label, label_start = text[opener.start : close], opener.start
        if len(label) > MAX_LABEL or "\\" in label or SURROGATE_RE.search(label):
            raise Undecided
        self.labels.append((label_start, label_start + len(label)))
        key = unikey(label)
        if key not in self.definitions:
            return None
        return key, next_pos or end

    def _emphasis_runs(self, start: int, end: int) -> int:
        if self.emphasis is None:
            self.emphasis = [run.start() for run in _EMPHASIS_RUN_RE.finditer(self.text)]
        return bisect_left(self.emphasis, end) - bisect_left(self.emphasis, start)
