"""Find the image references of a markdown note with exact spans, and rewrite them byte-exactly.

This is the public surface of imgsync's markdown handling; the work is split by subject:

* :mod:`imgsync.notes.markdown.scan`, the **scanner**: mistune gives no source positions, and the
  URL in its tree is not the text in the file, so a position-aware scanner **proposes** candidates
  (inline destinations, reference definitions, ``<img src=..>`` values, Obsidian ``![[..]]``
  embeds; one module each) with exact spans. It is deliberately liberal.
* :mod:`imgsync.notes.markdown.parse`, the **parser**: a unique alphanumeric marker is appended to
  every candidate in a copy of the note, the copy is parsed **once**, and a candidate is an image
  exactly when its marker comes back in an image. A **cross-check** compares what the parser saw
  with what the scanner proposed; if they disagree, ``ScanResult.consistent`` is False and the
  note must not be rewritten.
* :mod:`imgsync.notes.markdown.simple`, the **simple-note decider**: most notes are made of a few
  plain constructs (paragraphs, headings, one-line list items, quotes, definitions, fenced code,
  tables apart...). For those, the scanner's candidates are sorted without the parser, by reading
  the structure the way mistune does; the answer is the parser's to the letter (differential
  tests), and any other note goes to the parser.
* this module: front matter, :func:`find_images` (scanner → simple-note decider, or markers → one
  parse → decision → :class:`ImageRef` with line numbers), and :func:`rewrite` with its formatting
  of new URLs.

The layers run one way: this module imports ``parse``, ``simple`` and the scanner's modules;
``parse`` and ``simple`` import the scanner's, never the reverse, nor each other. Callers import
from here only. See ``docs/markdown-rules.md`` for the rules themselves.

A rewrite can, in contrived notes, change the structure too (a line that was no reference
definition only because of a space in ``<my pic.png>`` becomes one). So :func:`rewrite` scans its
result again and refuses unless it holds the same images, pointing at the new URLs.

At most one parse per note keeps the cost near a bare mistune parse, and most notes need none:
notes without ``![`` or ``<img`` are not parsed at all, simple notes are decided without the
parser. The dialect is CommonMark plus GFM tables, footnotes (both supported by Obsidian and
Typora) and Obsidian embeds.

This module is pure: no filesystem, no network.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from imgsync.errors import ItemError
from imgsync.notes.markdown.candidates import (
    IMAGE_EXTENSIONS,
    Candidate,
    has_image_extension,
    without_surrogates,
)
from imgsync.notes.markdown.parse import DIALECT_PLUGINS as DIALECT_PLUGINS
from imgsync.notes.markdown.parse import (
    decide,
    embed_plugin,
    insert_markers,
    parse,
    unique_marker_base,
)
from imgsync.notes.markdown.scan import may_hold_images, propose
from imgsync.notes.markdown.simple import decide_simple

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

# find_images calls the parse and the simple-note decider by this module's names for them, so
# that a test can count parses by patching ``markdown._parse``, and take the parser's path alone
# by patching ``markdown._decide_simple``.
_parse = parse
_decide_simple = decide_simple

# benchmarks/find_images.py builds a bare parser of the same dialect from DIALECT_PLUGINS (imported
# above) and the embed plugin under its old name.
_embed_plugin = embed_plugin

_NEEDS_HTML_QUOTES_RE = re.compile(r"[ \t\n\r\f\"'=<>`]")
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_MD_DECODE_RE = re.compile(
    r"\\([!-/:-@\[-`{-~])|(&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});)"
)
_FRONT_MATTER_KEY_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]*)[ \t]*:[ \t]*(.*?)[ \t]*$")

# Characters a URL may contain as they are (RFC 3986 unreserved and reserved); everything else is
# percent-encoded once. "%" is kept only when it already starts a %XX escape.
_URL_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;="
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# A URL that holds only safe characters and whole %XX escapes is its own encoding (most are).
_ENCODED_URL_RE = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
# Characters escaped in the alt text of an embed turned into ``![alt](url)``: they could close the
# brackets, start a code span, HTML, an entity, emphasis, or split a table cell.
_ALT_ESCAPES = frozenset("\\[]`<|&*_")


@dataclass(frozen=True)
class ImageRef:
    """One image reference in a note, located exactly.

    ``span`` is ``[start, end)`` in the note's text of what :func:`rewrite` replaces: the
    destination (without ``<>``), the ``src`` value (without quotes), or the whole ``![[...]]``.

    ``shared_with_link`` is True for a reference definition that a text link uses too: rewriting
    it (still the right thing for the image) changes that link's destination as well, and
    :func:`find_images` warns about it.
    """

    kind: Literal["inline", "reference", "html", "embed"]
    span: tuple[int, int]
    raw: str
    target: str
    alt: str
    line: int
    angle: bool = False
    quote: str = ""
    shared_with_link: bool = False


@dataclass(frozen=True)
class ScanResult:
    """What :func:`find_images` found. Do not rewrite a note whose result is not ``consistent``."""

    refs: list[ImageRef]
    front_matter: dict[str, str] | None
    warnings: list[str]
    consistent: bool


class RewriteError(ItemError, ValueError):
    """A rewrite that cannot be done safely; the note must be left as it is."""


# --------------------------------------------------------------------------------------------------
# public API


def find_images(text: str) -> ScanResult:
    """Find every image reference in ``text`` (a note with its BOM removed).

    Front matter is split off first and never scanned. Multiple images that use one reference
    definition give one :class:`ImageRef` for that definition.
    """
    front_matter, body_start = _split_front_matter(text)
    body = text[body_start:]
    if not may_hold_images(body):
        return ScanResult([], front_matter, [], True)

    candidates = propose(body)
    decision = _decide_simple(body, candidates)
    if decision is None:  # not a simple note: the parser decides
        marker_base = unique_marker_base(body)
        marked = insert_markers(body, candidates, marker_base)
        tokens = _parse(without_surrogates(marked))
        decision = decide(tokens, candidates, marked, marker_base)

    positions = [candidates[index].start + body_start for index in decision.confirmed]
    positions += [pos + body_start for _, pos in decision.notes]
    line_of = _line_numbers(text, positions)
    shared = decision.shared_with_link
    refs = [
        _make_ref(text, body_start, candidates[index], alt, line_of, shared=index in shared)
        for index, alt in decision.confirmed.items()
    ]
    refs.sort(key=lambda ref: ref.span)
    warnings = [f"line {line_of[pos + body_start]}: {message}" for message, pos in decision.notes]
    return ScanResult(refs, front_matter, warnings, decision.consistent)


def rewrite(
    text: str,
    mapping: Mapping[ImageRef, str],
    *,
    verify: bool = True,
    refs: Sequence[ImageRef] | None = None,
) -> str:
    """Replace the span of each ref in ``mapping`` by its new URL, formatted for its context.

    Refs not in the mapping are untouched; everything outside the replaced spans stays
    byte-identical. With ``verify`` (the default) the result is scanned again and must hold the
    same images in the same order, only pointing at the new URLs: a changed destination can, in
    contrived notes, change the structure around it (a line can become a reference definition once
    a space is gone). That check costs two scans, once per changed note, or one when ``refs`` is
    what :func:`find_images` found in ``text`` (the caller's own scan of these very bytes). Raises
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
        _verify_rewrite(text, new_text, mapping, refs)
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
    if _ENCODED_URL_RE.fullmatch(url):
        return url
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
# building the result


def _make_ref(
    text: str,
    offset: int,
    candidate: Candidate,
    alt: str,
    line_of: Mapping[int, int],
    *,
    shared: bool,
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
        shared_with_link=shared,
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


# --------------------------------------------------------------------------------------------------
# checking a rewrite


def _verify_rewrite(
    old_text: str,
    new_text: str,
    mapping: Mapping[ImageRef, str],
    refs: Sequence[ImageRef] | None,
) -> None:
    before = find_images(old_text).refs if refs is None else refs
    after = find_images(new_text)
    if not after.consistent:
        raise RewriteError("the rewritten note does not pass the cross-check: " + after.warnings[0])
    expected = [
        ("inline" if ref.kind == "embed" else ref.kind, _target_after(ref, mapping[ref]))
        if ref in mapping
        else (ref.kind, ref.target)
        for ref in before
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
