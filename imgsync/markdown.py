"""Find the image references of a markdown note with exact spans, and rewrite them byte-exactly.

Why it is built this way (see ``docs/markdown-rules.md``):

* mistune gives no source positions, and the URL in its tree is not the text in the file (it is
  unescaped, entity-decoded and percent-encoded). So the parser cannot say *where* an image is, and
  a text search for its URL would hit the wrong place.
* A position-aware scanner therefore **proposes** candidates: inline destinations ``![..](dest)``,
  reference definitions ``[label]: dest``, ``<img src=..>`` values and Obsidian ``![[..]]`` embeds.
  It is deliberately liberal: a candidate in a code span, a comment or plain text costs nothing.
* The parser **decides**. A unique, purely alphanumeric marker is appended to the end of every
  candidate in a copy of the note and that copy is parsed **once**. A candidate is an image exactly
  when its marker comes back at the end of an image URL, of the ``src`` of an ``<img>`` tag inside
  an HTML token (comments excluded), or of the file part of an embed token.
* **Cross-check**: every image the parser reports must carry a marker (otherwise the scanner missed
  one), and an image URL must equal what mistune makes of the candidate's own text (otherwise the
  scanner has the span wrong). If not, ``ScanResult.consistent`` is False and the note must not be
  rewritten.

Why the marker is safe: letters and digits start no Markdown or HTML construct, so appending them at
the *end* of a destination, an attribute value or an embed's file name leaves the parse as it was.
The exceptions are at the level of lines (``---`` is a thematic break, ``---zq0`` is text; a marker
inside ``-->`` lets a comment run on), so a candidate is only proposed when the kind of its line is
the same with and without a marker. A candidate wrongly left out is caught by the cross-check, never
silently rewritten.

A rewrite can, in contrived notes, change the structure too (a line that was no reference
definition only because of a space in ``<my pic.png>`` becomes one). So :func:`rewrite` scans its
result again and refuses unless it holds the same images, pointing at the new URLs.

One parse per note keeps the cost near a bare mistune parse; notes without ``![`` or ``<img`` are
not parsed at all. The dialect is CommonMark plus GFM tables, footnotes (both supported by Obsidian
and Typora) and Obsidian embeds.

This module is pure: no filesystem, no network.
"""

from __future__ import annotations

import html
import re
import threading
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imgsync.errors import ItemError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageRef",
    "RewriteError",
    "ScanResult",
    "encode_url",
    "find_images",
    "format_destination",
    "has_image_extension",
    "rewrite",
]

#: File extensions treated as images (lower case, with the dot). Embeds and local files only count
#: as images when their name ends with one of these.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".tif", ".tiff"}
)

#: Plugins of the dialect we parse: GFM tables (``|`` splits cells before inline parsing, so it
#: decides whether ``![a](x|y.png)`` is an image) and footnotes (``[^1]: ![a](x.png)`` is a footnote
#: holding an image, not a reference definition). Obsidian embeds are added by our own plugin.
DIALECT_PLUGINS = ("table", "footnotes")

#: Raw HTML and autolinks are looked for over at most this many characters when matching brackets.
#: Bounds the scanner on pathological input (an unclosed quote in a tag, repeated); real tags are
#: short, and a longer one inside alt text is caught by the cross-check, never mis-rewritten.
MAX_RAW_HTML = 4096

#: CommonMark link labels are at most 999 characters.
MAX_LABEL_LENGTH = 999

#: A reference definition's label is looked for over at most this many lines. Longer labels are
#: legal but unheard of; an image using one is caught by the cross-check.
MAX_LABEL_LINES = 5

#: Prefix of the markers appended to candidates; lengthened until it does not occur in the note.
MARKER_BASE = "zqImgsyncMark"

_EMBED_TOKEN = "obsidian_embed"
_EMBED_PATTERN = r"!\[\[[^\[\]\n]+\]\]"
_EMBED_RE = re.compile(_EMBED_PATTERN)

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
_AUTOLINK_RE = re.compile(r"<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^<>\x00-\x20]*>")
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
_NEEDS_HTML_QUOTES_RE = re.compile(r"[ \t\n\r\f\"'=<>`]")
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
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_MD_DECODE_RE = re.compile(
    r"\\([!-/:-@\[-`{-~])|(&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)"
)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_FRONT_MATTER_KEY_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]*)[ \t]*:[ \t]*(.*?)[ \t]*$")

# Characters a URL may contain as they are (RFC 3986 unreserved and reserved); everything else is
# percent-encoded once. "%" is kept only when it already starts a %XX escape.
_URL_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;="
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# Characters escaped in the alt text of an embed turned into ``![alt](url)``: they could close the
# brackets, start a code span, HTML, an entity, emphasis, or split a table cell.
_ALT_ESCAPES = frozenset("\\[]`<|&*_")


@dataclass(frozen=True)
class ImageRef:
    """One image reference in a note, located exactly.

    ``span`` is ``[start, end)`` in the note's text of what :func:`rewrite` replaces: the
    destination (without ``<>``), the ``src`` value (without quotes), or the whole ``![[...]]``.
    """

    kind: Literal["inline", "reference", "html", "embed"]
    span: tuple[int, int]
    raw: str
    target: str
    alt: str
    line: int
    angle: bool = False
    quote: str = ""


@dataclass(frozen=True)
class ScanResult:
    """What :func:`find_images` found. Do not rewrite a note whose result is not ``consistent``."""

    refs: list[ImageRef]
    front_matter: dict[str, str] | None
    warnings: list[str]
    consistent: bool


class RewriteError(ItemError, ValueError):
    """A rewrite that cannot be done safely; the note must be left as it is."""


@dataclass
class _Candidate:
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


# --------------------------------------------------------------------------------------------------
# public API


def find_images(text: str) -> ScanResult:
    """Find every image reference in ``text`` (a note with its BOM removed).

    Front matter is split off first and never scanned. Multiple images that use one reference
    definition give one :class:`ImageRef` for that definition.
    """
    front_matter, body_start = _split_front_matter(text)
    body = text[body_start:]
    if not _IMAGE_OPEN_RE.search(body) and not _HAS_IMG_TAG_RE.search(body):
        return ScanResult([], front_matter, [], True)

    candidates = _propose(body)
    marker_base = _marker_base(body)
    marked = _insert_markers(body, candidates, marker_base)
    tokens = _parse(_without_surrogates(marked))
    decision = _decide(tokens, candidates, marked, marker_base)

    positions = [candidates[index].start + body_start for index in decision.confirmed]
    positions += [pos + body_start for _, pos in decision.notes]
    line_of = _line_numbers(text, positions)
    refs = [
        _make_ref(text, body_start, candidates[index], alt, line_of)
        for index, alt in decision.confirmed.items()
    ]
    refs.sort(key=lambda ref: ref.span)
    warnings = [f"line {line_of[pos + body_start]}: {message}" for message, pos in decision.notes]
    return ScanResult(refs, front_matter, warnings, decision.consistent)


def rewrite(text: str, mapping: Mapping[ImageRef, str], *, verify: bool = True) -> str:
    """Replace the span of each ref in ``mapping`` by its new URL, formatted for its context.

    Refs not in the mapping are untouched; everything outside the replaced spans stays
    byte-identical. With ``verify`` (the default) the result is scanned again and must hold the
    same images in the same order, only pointing at the new URLs: a changed destination can, in
    contrived notes, change the structure around it (a line can become a reference definition once
    a space is gone). That check costs two scans, once per changed note. Raises
    :class:`RewriteError` for stale or overlapping refs or a failed check; the caller then leaves
    the note alone.
    """
    if not mapping:
        return text
    items = sorted(mapping.items(), key=lambda item: item[0].span, reverse=True)
    pieces: list[str] = []
    end = len(text)
    for ref, url in items:
        start, stop = ref.span
        if stop > end:
            raise RewriteError(f"overlapping image references at line {ref.line}")
        if text[start:stop] != ref.raw:
            raise RewriteError(f"stale image reference at line {ref.line}: the text has changed")
        pieces.append(text[stop:end])
        pieces.append(format_destination(ref, url))
        end = start
    pieces.append(text[:end])
    new_text = "".join(reversed(pieces))
    if verify:
        _verify_rewrite(text, new_text, mapping)
    return new_text


def format_destination(ref: ImageRef, url: str) -> str:
    """Return what replaces ``ref.span`` so that the note points at ``url``.

    The URL is percent-encoded once (existing ``%XX`` escapes are kept), then escaped for its
    context: backslash-escaped parentheses in a bare Markdown destination, the same quotes in HTML
    (double quotes added when an unquoted value needs them), and ``![alt](url)`` for an embed.
    """
    if not url:
        raise RewriteError("cannot rewrite an image to an empty URL")
    encoded = encode_url(url)
    if ref.kind == "html":
        value = encoded.replace("&", "&amp;")
        if ref.quote == "'":
            return value.replace("'", "%27")
        if ref.quote == '"':
            return value
        return f'"{value}"' if _NEEDS_HTML_QUOTES_RE.search(value) else value
    value = _ENTITY_RE.sub(lambda m: "\\" + m.group(0), encoded)
    if ref.kind == "embed":
        return f"![{_escape_alt(ref.alt)}]({_bare_destination(value)})"
    if ref.angle:
        return value
    return _bare_destination(value)


def encode_url(url: str) -> str:
    """Percent-encode what a URL may not contain as is, exactly once (``%XX`` is left alone)."""
    out: list[str] = []
    for index, char in enumerate(url):
        if char in _URL_SAFE or (
            char == "%"
            and index + 2 < len(url)
            and url[index + 1] in _HEX_DIGITS
            and url[index + 2] in _HEX_DIGITS
        ):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in _utf8(char))
    return "".join(out)


def has_image_extension(name: str) -> bool:
    """True if ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


# --------------------------------------------------------------------------------------------------
# front matter


def _split_front_matter(text: str) -> tuple[dict[str, str] | None, int]:
    """Return the simple ``key: value`` pairs of YAML front matter and where the body starts."""
    start = 1 if text.startswith("\ufeff") else 0
    first_end = _line_end(text, start)
    if text[start:first_end].rstrip(" \t\r\n") != "---":
        return None, 0
    pairs: dict[str, str] = {}
    pos = first_end
    while pos < len(text):
        end = _line_end(text, pos)
        line = text[pos:end].rstrip("\r\n")
        if line.rstrip(" \t") in ("---", "..."):
            return pairs, end
        match = _FRONT_MATTER_KEY_RE.fullmatch(line)
        if match:
            pairs.setdefault(match.group(1), _unquote_yaml(match.group(2)))
        pos = end
    return None, 0  # no closing line: not front matter


def _unquote_yaml(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if " #" in value:  # a trailing YAML comment
        value = value[: value.index(" #")].rstrip()
    return value


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end + 1


# --------------------------------------------------------------------------------------------------
# the scanner: propose candidates


def _propose(body: str) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    if "!" in body:
        candidates.extend(_propose_inline(body))
        candidates.extend(_propose_embeds(body))
    if "]:" in body:
        candidates.extend(_propose_definitions(body))
    candidates.extend(_propose_html(body))
    unique: dict[tuple[int, int, str], _Candidate] = {}
    for candidate in candidates:
        unique.setdefault((candidate.start, candidate.end, candidate.kind), candidate)
    return list(unique.values())


def _propose_inline(body: str) -> Iterator[_Candidate]:
    openers = [match.start() for match in _IMAGE_OPEN_RE.finditer(body)]
    pairs = _bracket_pairs(body, openers)
    for start in openers:
        close = pairs.get(start + 1)
        if close is None or _is_escaped(body, start) or not body.startswith("(", close + 1):
            continue
        dest = _parse_destination(body, close + 2, block=False)
        if dest is None:
            continue
        span_start, span_end, angle = dest
        if not _marker_is_inert(body, span_end):
            continue
        yield _Candidate(
            "inline", span_start, span_end, span_end, alt=body[start + 2 : close], angle=angle
        )


def _propose_definitions(body: str) -> Iterator[_Candidate]:
    """Reference definitions: found from their ``]:`` (rare in text), then checked to start a
    line (after container prefixes); a label may run over a few lines."""
    colon = body.find("]:")
    while colon >= 0:
        line_start = body.rfind("\n", 0, colon) + 1
        for _ in range(MAX_LABEL_LINES):
            match = _DEF_RE.match(body, line_start)
            if match is not None and match.end() == colon + 2:
                candidate = _definition_candidate(body, match)
                if candidate is not None:
                    yield candidate
                break
            if line_start == 0:
                break
            line_start = body.rfind("\n", 0, line_start - 1) + 1
        colon = body.find("]:", colon + 2)


def _definition_candidate(body: str, match: re.Match[str]) -> _Candidate | None:
    if not match.group("label").strip(_MD_WHITESPACE):
        return None
    dest = _parse_destination(body, match.end(), block=True)
    if dest is None:
        return None
    span_start, span_end, angle = dest
    if not _marker_is_inert(body, span_end):
        return None
    return _Candidate("reference", span_start, span_end, span_end, angle=angle)


def _propose_html(body: str) -> Iterator[_Candidate]:
    if not _HAS_IMG_TAG_RE.search(body):
        return
    for value_start, value_end, quote, alt in _scan_img_tags(body, skip_comments=False):
        if not _marker_is_inert(body, value_end):
            continue
        yield _Candidate("html", value_start, value_end, value_end, alt=alt, quote=quote)


def _propose_embeds(body: str) -> Iterator[_Candidate]:
    if "![[" not in body:
        return
    for match in _EMBED_RE.finditer(body):
        inner_start = match.start() + 3
        file_start, file_end, alias = _split_embed(body, inner_start, match.end() - 2)
        target = body[file_start:file_end]
        if not has_image_extension(target) or not _marker_is_inert(body, file_end):
            continue
        yield _Candidate("embed", match.start(), match.end(), file_end, alt=alias, target=target)


def _split_embed(text: str, start: int, end: int) -> tuple[int, int, str]:
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


def _bracket_pairs(text: str, openers: list[int]) -> dict[int, int]:
    """Where each ``[`` of the paragraphs holding ``openers`` is closed: its matching ``]``.

    One pass per paragraph. Escapes are skipped. Code spans, autolinks and raw HTML bind tighter
    than brackets, so while a bracket is open they are skipped too (with no bracket open they cannot
    hide one). Searches are bounded or cached, so that no input makes this worse than linear in
    practice. Paragraphs without an image opener are not looked at.
    """
    blanks = [(match.start(), match.end()) for match in _BLANK_LINE_RE.finditer(text)]
    blank_starts = [start for start, _ in blanks]
    finder = _CachedFind(text)
    pairs: dict[int, int] = {}
    done_until = -1
    for opener in openers:
        if opener < done_until:
            continue  # its paragraph is done
        index = bisect_right(blank_starts, opener)
        para_start = blanks[index - 1][1] if index > 0 else 0
        para_end = blank_starts[index] if index < len(blanks) else len(text)
        _pair_brackets(text, para_start, para_end, finder, pairs)
        done_until = para_end
    return pairs


def _pair_brackets(
    text: str, pos: int, limit: int, finder: _CachedFind, pairs: dict[int, int]
) -> None:
    stack: list[int] = []
    runs: dict[int, list[int]] | None = None
    while True:
        match = _BRACKET_SCAN_RE.search(text, pos, limit)
        if match is None:
            return
        start = match.start()
        char = text[start]
        pos = match.end()
        if char == "\\":
            pos = start + 2
        elif char == "[":
            stack.append(start)
        elif char == "]":
            if stack:
                pairs[stack.pop()] = start
        elif not stack:
            continue
        elif char == "`":
            if runs is None:
                runs = {}
                for run in _BACKTICKS_RE.finditer(text, start, limit):
                    runs.setdefault(run.end() - run.start(), []).append(run.start())
            starts = runs[pos - start]
            later = bisect_right(starts, start)
            if later < len(starts):
                pos = starts[later] + (pos - start)
        else:
            pos = _raw_html_end(text, start, limit, finder) or start + 1


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
    """End of the autolink or raw HTML starting at ``start`` (before ``limit``), or None."""
    if text.startswith("<!--", start):
        if text.startswith(("<!-->", "<!--->"), start):
            return start + (5 if text.startswith("<!-->", start) else 6)
        close, size = finder.find("-->", start + 4), 3
    elif text.startswith("<?", start):
        close, size = finder.find("?>", start + 2), 2
    elif text.startswith("<![CDATA[", start):
        close, size = finder.find("]]>", start + 9), 3
    elif text.startswith("<!", start):
        close, size = finder.find(">", start + 2), 1
    else:
        bound = min(limit, start + MAX_RAW_HTML)
        tag = _AUTOLINK_RE.match(text, start, bound) or _HTML_TAG_RE.match(text, start, bound)
        return None if tag is None else tag.end()
    return close + size if close >= 0 and close + size <= limit else None


def _parse_destination(text: str, pos: int, *, block: bool) -> tuple[int, int, bool] | None:
    """Locate a link destination at ``pos`` as CommonMark (and mistune) read it.

    Returns ``(start, end, angle)`` of the destination text (inside ``<>`` when angle), or None.
    Only the destination is located; whether the whole link is valid is left to the parser.
    """
    pos = _skip_link_whitespace(text, pos)
    length = len(text)
    if pos >= length:
        return None
    char = text[pos]
    if char == "<":
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
    start = pos
    level = 0
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
            level += 1
        elif char == ")":
            if level == 0:
                break
            level -= 1
        else:
            return None  # a control character
        pos += 1
    if level != 0 or (block and pos == start):
        return None
    return start, pos, False


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


def _scan_img_tags(text: str, *, skip_comments: bool) -> Iterator[tuple[int, int, str, str]]:
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
            continue
        pos = end.end()
        if src is not None:
            yield src[0], src[1], src[2], alt


def _attr_value_span(attr: re.Match[str]) -> tuple[int, int, str] | None:
    for group, quote in (("dq", '"'), ("sq", "'"), ("bare", "")):
        if attr.group(group) is not None:
            return attr.start(group), attr.end(group), quote
    return None


# --------------------------------------------------------------------------------------------------
# markers and the parse


def _marker_base(body: str) -> str:
    base = MARKER_BASE
    while base in body:
        base += "Q"
    return base


def _insert_markers(body: str, candidates: list[_Candidate], base: str) -> str:
    """Append ``base + index`` at each candidate's marker position; record the marked spans."""
    # At one position, the candidate that starts later is inside the other: its marker goes first.
    order = sorted(
        range(len(candidates)), key=lambda i: (candidates[i].mark_at, -candidates[i].start)
    )
    pieces: list[str] = []
    shift_at: list[tuple[int, int]] = []  # (position, total inserted length before that position)
    last = 0
    inserted = 0
    for index in order:
        candidate = candidates[index]
        pieces.append(body[last : candidate.mark_at])
        marker = f"{base}{index}"
        pieces.append(marker)
        last = candidate.mark_at
        shift_at.append((candidate.mark_at, inserted))
        inserted += len(marker)
        candidate.marked_end = candidate.mark_at + inserted
    pieces.append(body[last:])
    positions = [pos for pos, _ in shift_at]
    for candidate in candidates:
        # Markers inserted before the start shift it, and so do those at the start position (they
        # end other candidates) unless the span is empty: then its own marker is there.
        bound = candidate.start - 1 if candidate.start == candidate.end else candidate.start
        index = bisect_right(positions, bound)
        before = shift_at[index][1] if index < len(shift_at) else inserted
        candidate.marked_start = candidate.start + before
    return "".join(pieces)


_local = threading.local()


def _embed_plugin(md: Any) -> None:
    """mistune plugin: Obsidian ``![[file|alias]]`` embeds become opaque tokens."""

    def parse_embed(inline: Any, match: re.Match[str], state: Any) -> int:
        state.append_token({"type": _EMBED_TOKEN, "raw": match.group(0)[3:-2]})
        return match.end()

    md.inline.register(_EMBED_TOKEN, _EMBED_PATTERN, parse_embed, before="link", start_chars="!")


def _parser() -> Any:
    """One mistune instance per thread (its rule caches are not meant to be shared)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        import mistune

        parser = mistune.create_markdown(renderer=None, plugins=[*DIALECT_PLUGINS, _embed_plugin])
        _local.parser = parser
    return parser


def _parse(text: str) -> list[dict[str, Any]]:
    return _parser()(text)


# --------------------------------------------------------------------------------------------------
# the parser decides, and the cross-check


@dataclass
class _Decision:
    confirmed: dict[int, str]  # candidate index -> alt text
    notes: list[tuple[str, int]]  # (message, position in the body)
    consistent: bool


def _decide(
    tokens: list[dict[str, Any]], candidates: list[_Candidate], marked: str, base: str
) -> _Decision:
    from mistune.helpers import unescape_char
    from mistune.util import escape_url

    marker_re = re.compile(re.escape(base) + r"([0-9]+)$")
    confirmed: dict[int, str] = {}
    notes: list[tuple[str, int]] = []
    consistent = True
    shared_with_link: set[int] = set()

    def candidate_for(value: str) -> int | None:
        match = marker_re.search(value)
        if match is None:
            return None
        index = int(match.group(1))
        return index if index < len(candidates) else None

    def mismatch(message: str, pos: int = 0) -> None:
        nonlocal consistent
        consistent = False
        notes.append((f"cross-check failed, note left alone: {message}", pos))

    images, links, html_raws, embeds = _collect(tokens)
    for image in images:
        url = image["attrs"].get("url", "")
        index = candidate_for(url)
        if index is None:
            mismatch(f"the parser sees an image {_unmark(url, base)!r} the scanner did not locate")
            continue
        candidate = candidates[index]
        by_reference = "ref" in image
        expected_kind = "reference" if by_reference else "inline"
        expected = escape_url(unescape_char(_without_surrogates(_marked_raw(marked, candidate))))
        if candidate.kind != expected_kind or url != expected:
            mismatch(
                f"image {_unmark(url, base)!r} is not where the scanner put it", candidate.start
            )
            continue
        confirmed.setdefault(
            index, _plain_text(image.get("children", ())) if by_reference else candidate.alt
        )

    for link in links:
        index = candidate_for(link["attrs"].get("url", ""))
        if index is not None and candidates[index].kind == "reference":
            shared_with_link.add(index)

    for raw in html_raws:
        for value_start, value_end, _quote, _alt in _scan_img_tags(raw, skip_comments=True):
            value = raw[value_start:value_end]
            index = candidate_for(value)
            if index is None or candidates[index].kind != "html":
                where = _unmark(value, base)
                mismatch(f"the parser sees an <img src={where!r}> the scanner did not locate")
                continue
            confirmed.setdefault(index, candidates[index].alt)

    for body in embeds:
        file_start, file_end, _alias = _split_embed(body, 0, len(body))
        file_part = body[file_start:file_end]
        index = candidate_for(file_part)
        name = _unmark(file_part, base)
        if index is None:
            if has_image_extension(name):
                mismatch(f"the parser sees an embed {name!r} the scanner did not locate")
            continue
        if candidates[index].kind != "embed":
            mismatch(f"embed {name!r} is not where the scanner put it", candidates[index].start)
            continue
        confirmed.setdefault(index, candidates[index].alt)

    for index in sorted(shared_with_link & confirmed.keys()):
        notes.append(
            (
                "a reference definition used by an image is also used by a text link; "
                "rewriting it changes that link too",
                candidates[index].start,
            )
        )
    return _Decision(confirmed, notes, consistent)


def _collect(
    tokens: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], list[str]]:
    """Images, links, HTML and embeds of the tree, in document order. An image's alt text is not
    descended into: an image inside another image's alt text is not displayed."""
    images: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    html_raws: list[str] = []
    embeds: list[str] = []

    def visit(level: list[dict[str, Any]]) -> None:
        for token in level:
            kind = token["type"]
            if kind == "text":
                continue
            if kind == "image":
                images.append(token)
                continue
            if kind == "link":
                links.append(token)
            elif kind == "inline_html" or kind == "block_html":
                html_raws.append(token.get("raw", ""))
            elif kind == _EMBED_TOKEN:
                embeds.append(token.get("raw", ""))
            children = token.get("children")
            if children:
                visit(children)

    visit(tokens)
    return images, links, html_raws, embeds


def _plain_text(tokens: Any) -> str:
    parts: list[str] = []
    for token in tokens:
        if "children" in token:
            parts.append(_plain_text(token["children"]))
        elif token.get("type") in ("text", "codespan"):
            parts.append(token.get("raw", ""))
    return "".join(parts)


def _marked_raw(marked: str, candidate: _Candidate) -> str:
    return marked[candidate.marked_start : candidate.marked_end]


def _unmark(value: str, base: str) -> str:
    return re.sub(re.escape(base) + r"[0-9]+", "", value)


# --------------------------------------------------------------------------------------------------
# building the result


def _make_ref(
    text: str, offset: int, candidate: _Candidate, alt: str, line_of: Mapping[int, int]
) -> ImageRef:
    start, end = candidate.start + offset, candidate.end + offset
    raw = text[start:end]
    if candidate.kind == "html":
        target = html.unescape(raw)
    elif candidate.kind == "embed":
        target = candidate.target
    else:
        target = _decode_markdown(raw)
    return ImageRef(
        kind=candidate.kind,
        span=(start, end),
        raw=raw,
        target=target,
        alt=alt,
        line=line_of[start],
        angle=candidate.angle,
        quote=candidate.quote,
    )


def _decode_markdown(raw: str) -> str:
    """Backslash escapes and entities decoded in one pass, as CommonMark does (no %-decoding)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        return html.unescape(match.group(2))

    return _MD_DECODE_RE.sub(replace, raw)


def _line_numbers(text: str, positions: list[int]) -> dict[int, int]:
    """1-based line of each position, counting line feeds once over the text."""
    lines: dict[int, int] = {}
    line, last = 1, 0
    for pos in sorted(set(positions)):
        line += text.count("\n", last, pos)
        lines[pos] = line
        last = pos
    return lines


def _without_surrogates(text: str) -> str:
    """mistune percent-encodes URLs with strict UTF-8; undecodable bytes (kept as lone surrogates)
    would make it raise, so the parser gets U+FFFD in their place (one character for one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)
    return text


# --------------------------------------------------------------------------------------------------
# checking a rewrite


def _verify_rewrite(old_text: str, new_text: str, mapping: Mapping[ImageRef, str]) -> None:
    before = find_images(old_text)
    after = find_images(new_text)
    if not after.consistent:
        raise RewriteError("the rewritten note does not pass the cross-check: " + after.warnings[0])
    expected = [
        ("inline" if ref.kind == "embed" else ref.kind, _target_after(ref, mapping[ref]))
        if ref in mapping
        else (ref.kind, ref.target)
        for ref in before.refs
    ]
    actual = [(ref.kind, ref.target) for ref in after.refs]
    if expected != actual:
        lines = sorted({ref.line for ref in mapping})
        raise RewriteError(
            "rewriting would change which images the note has (a new destination changes the "
            f"structure around it), near line {lines[0]}"
        )


def _target_after(ref: ImageRef, url: str) -> str:
    """The target :func:`find_images` reports once ``ref`` points at ``url``."""
    encoded = encode_url(url)
    return encoded.replace("'", "%27") if ref.kind == "html" and ref.quote == "'" else encoded


# --------------------------------------------------------------------------------------------------
# formatting helpers


def _bare_destination(value: str) -> str:
    return value.replace("(", "\\(").replace(")", "\\)")


def _escape_alt(alt: str) -> str:
    return "".join("\\" + char if char in _ALT_ESCAPES else char for char in alt)


def _utf8(char: str) -> bytes:
    try:
        return char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return char.encode("utf-8", "surrogatepass")
