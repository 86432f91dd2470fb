"""Simple notes: decided by the scanner alone, without the parser.

:func:`imgsync.notes.markdown.find_images` parses every note that may hold an image with mistune,
and that parse is most of what finding images costs. It is needed because the scanner is liberal
(a candidate may sit in a code block, an HTML block, a failed link...) and only the parser knows.
But most notes are made of a few plain constructs whose reading is not in doubt. For such a note,
:func:`decide_simple` reads the structure itself, the way mistune reads it, and sorts the
candidates into images and the rest; for any other note it returns None and the note goes to the
parser. Its answer is the parser's :class:`~.candidates.Decision`, to the letter: the same images,
alt texts, shared-definition warnings, and ``consistent``.

The rule (what a note must be for this module to decide it):

* No lone carriage return, form feed, vertical tab or NUL; no footnote (``[^``); no escaped
  bracket; no line that starts a label (``[`` first, after indentation, quote or list markers)
  without closing it on that line (mistune reads such a label over lines, even blank ones).
* Fenced code blocks start at the left margin (`````` or ``~~~``, no backtick in a backtick
  fence's info), right after a blank line, a heading, a paragraph or definitions; their content
  is code.
* Every other run of non-blank lines (a *group*) is either understood or *opaque*:

  - understood: headings (``#`` .. ``######``, not closed by ``#``) and thematic breaks, then
    one of: a paragraph of plain lines (a plain line has no indentation, starts no block that
    could interrupt a paragraph or turn it into a heading, no HTML block, and is no table
    delimiter row), a bullet list (or an ordered list that does not follow a paragraph) of
    one-line items with plain text after one space, a block quote whose lines are ``>`` plus
    plain text (``>`` alone between its paragraphs), reference definitions on one line each
    (``[label]: dest`` with an optional title on that line and no title that could start on the
    next), or lines that are one ``<img>`` tag each. A paragraph may be followed by a bullet
    list or a heading; definitions by a paragraph.
  - opaque (tables, indented code, nested lists, HTML blocks...): holds no candidate, no ``![``,
    no ``<img``, no ``]:``, no fence characters and nothing that starts an HTML block which could
    run past a blank line (``<!``, ``<?``, ``<script``, ``<pre``, ``<style``, ``<textarea``); and,
    when an image uses a definition, no text that could be a link to that definition's label.

  A group is separated from the next by a blank line, so no construct of one reaches into
  another: a blank line ends every construct that is not excluded above.
* In the text of each understood block (what mistune's inline parser is given), read as mistune
  reads it, left to right: code spans, autolinks and inline tags are atomic; ``[`` and ``![``
  open brackets; ``]`` closes the last one into a link or image (inline, full, collapsed or
  shortcut reference) or leaves it as text; a link deactivates the link brackets before it;
  embeds ``![[..]]`` are atomic. Backslashes (outside code spans), ``<!``, ``<?`` and ``<a>``
  tags send the note to the parser, as do brackets nested too deep.
* Every image found must be exactly a candidate of its kind (a reference image: the candidate of
  its definition's destination); an image by reference must have a plain alt text (no markup in
  it); and every candidate must be accounted for: an image, an image inside another image's alt
  text, a definition, or in a code block or code span. No label may hold a candidate's marker
  position, and no two candidates share one (the parser's marked copy would read otherwise).

Why this is safe: each construct admitted is read here exactly as mistune reads it (the rules
above mirror mistune 3.4's block and inline parsers, and where they could differ, such as lazy
continuation lines, setext underlines, ordered lists interrupting a paragraph or titles on the
next line, the note is not admitted); every candidate not accounted for sends the note to the
parser; and the parser's markers only ever go where this reading puts an image or a dead place.
The differential tests (``tests/notes/markdown/test_simple.py``) check, over every CommonMark
example, every edge case and generated notes, that whenever this module decides, its decision is
the parser's.

The reading is split by subject: :mod:`.lines` tells what each line starts, :mod:`.inline` reads
a block's text for links and images; this module reads the note into groups and blocks and
matches what they find to the candidates.

Imports :mod:`.candidates`, :mod:`.embeds`, :mod:`.imgtags`, :mod:`.inline` and :mod:`.lines`;
never mistune. Pure.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from imgsync.notes.markdown.candidates import (
    SHARED_DEFINITION_WARNING,
    SURROGATE_RE,
    Candidate,
    Decision,
    has_image_extension,
)
from imgsync.notes.markdown.definitions import MAX_LABEL_LENGTH
from imgsync.notes.markdown.destinations import MD_WHITESPACE
from imgsync.notes.markdown.embeds import split_embed
from imgsync.notes.markdown.imgtags import scan_img_tags
from imgsync.notes.markdown.inline import (
    MAX_LABEL,
    TITLE_CLOSERS,
    Node,
    Undecided,
    destination,
    read_inline,
    title_end,
    unikey,
)
from imgsync.notes.markdown.lines import (
    FENCE_OPEN_RE,
    LABEL_START_RE,
    heading_text,
    item_text,
    line_kind,
)

__all__ = ["decide_simple"]

_UNSUPPORTED_RE = re.compile(r"\r(?!\n)|[\x00\v\f]|\[\^|\\[\[\]]")
# A definition line as read here: no escapes in its label.
_DEFINITION_RE = re.compile(rf"\[([^\\\[\]]{{1,{MAX_LABEL_LENGTH}}})\]:[ \t]*")
_OPAQUE_UNSAFE_RE = re.compile(
    r"!\[|\]:|```|~~~|<img|<!|<\?|<(?:script|pre|style|textarea)", re.IGNORECASE
)


def decide_simple(body: str, candidates: list[Candidate]) -> Decision | None:
    """The parser's decision about ``candidates`` (the scanner's, for ``body``), reached without
    the parser, or None when ``body`` is not a simple note (see the module docstring)."""
    if _UNSUPPORTED_RE.search(body):
        return None
    try:
        return _Reader(body, candidates).decide()
    except Undecided:
        return None


@dataclass
class _Group:
    """A run of non-blank lines outside fenced code: ``lines[first:stop]``."""

    first: int
    stop: int
    fence_after: bool  # a fenced code block follows it directly


@dataclass
class _Block:
    """The text of one block as mistune's inline parser gets it, mapped back to the body."""

    text: str
    starts: list[int]  # where each line starts in ``text``
    origins: list[int]  # and in the body

    def to_body(self, pos: int) -> int:
        line = bisect_right(self.starts, pos) - 1
        return self.origins[line] + pos - self.starts[line]


class _Reader:
    def __init__(self, body: str, candidates: list[Candidate]) -> None:
        self.body = body
        self.candidates = candidates
        self.by_span = {(c.kind, c.start, c.end): index for index, c in enumerate(candidates)}
        self.marks = sorted(c.mark_at for c in candidates)
        if len(set(self.marks)) != len(self.marks):
            raise Undecided  # two markers at one place: the parser may pair them otherwise
        self.definitions: dict[str, tuple[int, int]] = {}  # key -> destination span
        self.accounted: set[int] = set()
        self.blocks: list[_Block] = []
        self.dead: list[tuple[int, int]] = []  # code: candidates there are not images
        self.opaque: list[tuple[int, int]] = []
        # Every line as (start, end) in the body, without its line ending.
        self.lines: list[tuple[int, int]] = []
        pos = 0
        for line in body.split("\n"):
            end = pos + len(line)
            self.lines.append((pos, end - 1 if line.endswith("\r") else end))
            pos = end + 1
        self.line_starts = [start for start, _ in self.lines]

    def decide(self) -> Decision:
        for group in self._groups():
            self._read_group(group)
        confirmed: dict[int, str] = {}
        shared: set[int] = set()
        for block in self.blocks:
            reading = read_inline(block.text, self.definitions)
            for start, end in reading.labels:
                self._check_no_mark(block.to_body(start), block.to_body(end))
            self.dead += [(block.to_body(s), block.to_body(e)) for s, e in reading.code_spans]
            for node, collected in _walk(reading.nodes):
                self._place(block, node, collected, confirmed, shared)
        self._check_opaque(confirmed)
        self.dead.sort()
        for index, candidate in enumerate(self.candidates):
            if index not in self.accounted and not self._is_dead(candidate.mark_at):
                raise Undecided  # a candidate this reading cannot place
        shared &= confirmed.keys()
        notes = [(SHARED_DEFINITION_WARNING, self.candidates[i].start) for i in sorted(shared)]
        return Decision(confirmed, notes, True, shared)

    # -- lines and groups -----------------------------------------------------------------------

    def _groups(self) -> list[_Group]:
        """Split the body into groups of lines (see the module docstring); fenced code is dead."""
        body, lines = self.body, self.lines
        groups: list[_Group] = []
        first = -1  # the first line of the group being read
        index = 0
        while index < len(lines):
            start, end = lines[index]
            line = body[start:end]
            if not line.strip(" \t"):
                if first >= 0:
                    groups.append(_Group(first, index, fence_after=False))
                first = -1
                index += 1
                continue
            if "[" in line and "]" not in line and LABEL_START_RE.match(line):
                raise Undecided  # a label that may run over lines
            fence = FENCE_OPEN_RE.fullmatch(line) if line[0] in "`~" else None
            if fence is not None:
                marker, info = fence.groups()
                if marker[0] == "`" and "`" in info:
                    raise Undecided  # no fence (mistune): a line of code spans
                if first >= 0:
                    groups.append(_Group(first, index, fence_after=True))
                first = -1
                index = self._fence_end(index + 1, marker)
                self.dead.append((start, lines[index - 1][1]))
                continue
            if first < 0:
                first = index
            index += 1
        if first >= 0:
            groups.append(_Group(first, len(lines), fence_after=False))
        return groups

    def _fence_end(self, index: int, marker: str) -> int:
        """The line after the fenced code opened by ``marker`` (its closing line: up to three
        spaces, the same character at least as many times, then only spaces or tabs), or the
        number of lines if it runs to the end."""
        if index >= len(self.lines):
            return len(self.lines)
        closing = re.compile(
            r"^ {0,3}" + re.escape(marker[0]) + "{" + str(len(marker)) + r",}[ \t]*\r?$", re.M
        )
        found = closing.search(self.body, self.lines[index][0])
        if found is None:
            return len(self.lines)
        return bisect_right(self.line_starts, found.start())

    def _is_dead(self, pos: int) -> bool:
        index = bisect_right(self.dead, (pos, len(self.body) + 1)) - 1
        return index >= 0 and self.dead[index][0] <= pos <= self.dead[index][1]

    def _check_no_mark(self, start: int, end: int) -> None:
        """A candidate's marker inside a label would change the label in the parser's copy (and
        one in an opaque group is a candidate this reading cannot place)."""
        index = bisect_left(self.marks, start)
        if index < len(self.marks) and self.marks[index] <= end:
            raise Undecided

    # -- blocks ---------------------------------------------------------------------------------

    def _read_group(self, group: _Group) -> None:
        blocks = self._blocks(group)
        if blocks is None:
            if group.fence_after:
                raise Undecided  # the fence may belong to what the group is (an HTML block...)
            self.opaque.append((self.lines[group.first][0], self.lines[group.stop - 1][1]))
            return
        for pieces in blocks:
            self._add_block(pieces)

    def _blocks(self, group: _Group) -> list[list[tuple[int, int]]] | None:
        """The blocks of a group of lines, each as the line pieces of its inline text; None if
        the group is not of an understood shape (see the module docstring)."""
        body = self.body
        state = "start"  # or "paragraph", "list", "quote", "definitions", "tags"
        blocks: list[list[tuple[int, int]]] = []
        current: list[tuple[int, int]] = []  # the paragraph (or quote paragraph) being read
        title_may_follow = False  # the last definition has no title on its line
        for start, end in self.lines[group.first : group.stop]:
            line = body[start:end]
            kind = line_kind(line)
            if title_may_follow and line.lstrip(" \t")[:1] in TITLE_CLOSERS:
                raise Undecided  # this line may be the last definition's title
            title_may_follow = False
            after_block = state in ("start", "definitions")
            if state == "paragraph" and kind in ("plain", "definition", "tag"):
                current.append((start, end))  # a continuation line
            elif kind == "heading" and (after_block or state == "paragraph"):
                heading = heading_text(line, start, end)
                if heading is None:
                    raise Undecided  # a closing sequence, which mistune trims its way
                blocks += [current, [heading]] if current else [[heading]]
                current = []
                state = "start"
            elif after_block and kind == "plain":
                current = [(start, end)]
                state = "paragraph"
            elif after_block and kind == "definition":
                title_may_follow = self._read_definition(start, end)
                state = "definitions"
            elif (after_block or state == "tags") and kind == "tag":
                blocks.append([(start, end)])  # an HTML block, or a paragraph: one tag either way
                state = "tags"
            elif state == "start" and kind == "thematic":
                pass
            elif (kind == "bullet" and state in ("start", "paragraph", "list")) or (
                kind == "ordered" and state in ("start", "list")
            ):
                item = item_text(line, start, end)
                if item is None:
                    return None
                blocks += [current, [item]] if current else [[item]]
                current = []
                state = "list"
            elif kind == "quote" and state in ("start", "quote"):
                content = start + (2 if line.startswith("> ") else 1)
                content_kind = line_kind(body[content:end]) if content < end else "blank"
                if content_kind == "blank" and current:
                    blocks.append(current)  # ">" alone ends a paragraph of the quote
                    current = []
                elif content_kind == "plain" or (content_kind == "definition" and current):
                    current.append((content, end))
                else:
                    return None
                state = "quote"
            else:
                return None
        if current:
            blocks.append(current)
        if group.fence_after and state not in ("start", "paragraph", "definitions"):
            return None
        return blocks

    def _read_definition(self, start: int, end: int) -> bool:
        """Record the definition on this line; True if a title could start on the next line."""
        line = self.body[start:end]
        found = _DEFINITION_RE.match(line)
        if found is None:
            raise Undecided  # a definition mistune may read, or not, in a way not followed here
        label = found.group(1)
        key = unikey(label)
        if not key or len(label) > MAX_LABEL or SURROGATE_RE.search(label):
            raise Undecided
        self._check_no_mark(start + 1, start + 1 + len(label))
        dest = destination(line, found.end())
        if dest is None or (dest[0] == dest[1] and line[dest[0] - 1 : dest[0]] != "<"):
            raise Undecided
        dest_start, dest_end, after = dest
        title_may_follow = not line[after:].strip(" \t")
        if not title_may_follow:
            end_of_title = title_end(line, after, len(line))
            if end_of_title is None or line[end_of_title:].strip(" \t"):
                raise Undecided  # mistune reads no definition here
        span = (start + dest_start, start + dest_end)
        index = self.by_span.get(("reference", *span))
        if index is None:
            raise Undecided
        self.accounted.add(index)  # an unused definition is no image, and its marker is inert
        self.definitions.setdefault(key, span)  # the first definition of a label counts
        return title_may_follow

    def _add_block(self, pieces: list[tuple[int, int]]) -> None:
        """Keep a block's text for the inline reading, if it holds a bracket or a tag (else it
        holds no image and no link)."""
        body = self.body
        first, last = pieces[0][0], pieces[-1][1]
        if body.find("[", first, last) < 0 and body.find("<", first, last) < 0:
            return
        pieces = list(pieces)
        start, end = pieces[0]
        # mistune strips these around a block's text before its inline parse
        while start < end and body[start] in MD_WHITESPACE:
            start += 1
        pieces[0] = (start, end)
        start, end = pieces[-1]
        while end > start and body[end - 1] in MD_WHITESPACE:
            end -= 1
        pieces[-1] = (start, end)
        texts: list[str] = []
        starts: list[int] = []
        offset = 0
        for start, end in pieces:
            texts.append(body[start:end])
            starts.append(offset)
            offset += end - start + 1
        self.blocks.append(_Block("\n".join(texts), starts, [start for start, _ in pieces]))

    def _check_opaque(self, confirmed: dict[int, str]) -> None:
        """An opaque group holds nothing that is, or may change, an image (see the module
        docstring)."""
        keys = [
            key
            for key, span in self.definitions.items()
            if self.by_span.get(("reference", *span)) in confirmed
        ]
        for start, end in self.opaque:
            self._check_no_mark(start, end)
            text = self.body[start:end]
            if _OPAQUE_UNSAFE_RE.search(text):
                raise Undecided
            if keys and "[" in text:
                folded = unikey(text)
                if any(key in folded for key in keys):
                    raise Undecided  # may be a text link to a definition an image uses

    # -- images ---------------------------------------------------------------------------------

    def _place(
        self,
        block: _Block,
        node: Node,
        collected: bool,
        confirmed: dict[int, str],
        shared: set[int],
    ) -> None:
        """Match a node of the inline reading to its candidate. ``collected``: the parser's
        decision looks at it (it is not inside an image's alt text)."""
        if node.kind == "link" or (node.kind == "image" and node.key is not None):
            if node.key is None or not collected:
                return
            index = self.by_span.get(("reference", *self.definitions[node.key]))
            if node.kind == "link":
                if index is not None:
                    shared.add(index)
            elif index is None or node.alt is None:
                raise Undecided
            else:
                confirmed.setdefault(index, node.alt)
            return
        for span in _image_spans(block, node):
            index = self.by_span.get(span)
            if index is None:
                if collected:
                    raise Undecided  # an image the scanner did not locate
                continue
            self.accounted.add(index)
            if collected:
                confirmed.setdefault(index, self.candidates[index].alt)


def _image_spans(block: _Block, node: Node) -> list[tuple[str, int, int]]:
    """The candidate spans (kind, start, end) a node of the inline reading is, as images."""
    text = block.text
    if node.kind == "image":
        return [("inline", block.to_body(node.start), block.to_body(node.end))]
    if node.kind == "html":
        raw = text[node.start : node.end]
        return [
            ("html", block.to_body(node.start + start), block.to_body(node.start + end))
            for start, end, _quote, _alt in scan_img_tags(raw, skip_comments=True)
        ]
    if node.kind == "embed":
        raw = text[node.start + 3 : node.end - 2]
        file_start, file_end, _alias = split_embed(raw, 0, len(raw))
        if has_image_extension(raw[file_start:file_end]):
            return [("embed", block.to_body(node.start), block.to_body(node.end))]
    return []


def _walk(nodes: list[Node], collected: bool = True) -> list[tuple[Node, bool]]:
    """Every node in document order, with whether the parser's decision looks at it: not inside
    an image's alt text (an image there is not shown)."""
    found: list[tuple[Node, bool]] = []
    for node in nodes:
        found.append((node, collected))
        if node.children:
            found += _walk(node.children, collected and node.kind != "image")
    return found
