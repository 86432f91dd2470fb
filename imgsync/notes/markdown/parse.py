"""The parser side: mark the scanner's candidates, parse once with mistune, decide and cross-check.

Why (see ``docs/markdown-rules.md``): mistune gives no source positions, and the URL in its tree is
not the text in the file (it is unescaped, entity-decoded and percent-encoded), so the scanner
(:mod:`imgsync.notes.markdown.scan`) proposes candidates with exact spans and the parser
**decides**:

* A unique, purely alphanumeric marker is appended to the end of every candidate in a copy of the
  note and that copy is parsed **once**. A candidate is an image exactly when its marker comes back
  at the end of an image URL, of the ``src`` of an ``<img>`` tag inside an HTML token (comments
  excluded), or of the file part of an embed token.
* **Cross-check**: every image the parser reports must carry a marker (otherwise the scanner missed
  one), and an image URL must equal what mistune makes of the candidate's own text (otherwise the
  scanner has the span wrong). If not, the decision is not ``consistent`` and the note must not be
  rewritten.

Why the marker is safe: letters and digits start no Markdown or HTML construct, so appending them at
the *end* of a destination, an attribute value or an embed's file name leaves the parse as it was.
The exceptions are at the level of lines (``---`` is a thematic break, ``---zq0`` is text; a marker
inside ``-->`` lets a comment run on), so the scanner only proposes a candidate when the kind of its
line is the same with and without a marker. A candidate wrongly left out is caught by the
cross-check, never silently rewritten.

The dialect is CommonMark plus GFM tables, footnotes (both supported by Obsidian and Typora) and
Obsidian embeds. mistune is imported on first use only: ``imgsync upload`` starts on every paste.

Sits above the scanner's modules (it imports :mod:`.candidates`, :mod:`.embeds` and
:mod:`.imgtags`) and below :mod:`imgsync.notes.markdown` (which it never imports). Pure: no
filesystem, no network.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_right
from typing import Any

from imgsync.notes.markdown.candidates import (
    SHARED_DEFINITION_WARNING,
    Candidate,
    Decision,
    has_image_extension,
    without_surrogates,
)
from imgsync.notes.markdown.embeds import EMBED_PATTERN, split_embed
from imgsync.notes.markdown.imgtags import scan_img_tags

__all__ = [
    "DIALECT_PLUGINS",
    "MARKER_BASE",
    "decide",
    "embed_plugin",
    "insert_markers",
    "parse",
    "unique_marker_base",
]

#: Plugins of the dialect we parse: GFM tables (``|`` splits cells before inline parsing, so it
#: decides whether ``![a](x|y.png)`` is an image) and footnotes (``[^1]: ![a](x.png)`` is a footnote
#: holding an image, not a reference definition). Obsidian embeds are added by our own plugin.
DIALECT_PLUGINS = ("table", "footnotes")

#: Prefix of the markers appended to candidates; lengthened until it does not occur in the note.
MARKER_BASE = "zqImgsyncMark"

# The token type our embed plugin gives ``![[..]]`` in mistune's tree.
_EMBED_TOKEN = "obsidian_embed"


# --------------------------------------------------------------------------------------------------
# markers and the parse


def unique_marker_base(body: str) -> str:
    """A marker prefix that does not occur in ``body``, so every marker found later is ours."""
    base = MARKER_BASE
    while base in body:
        base += "Q"
    return base


def insert_markers(body: str, candidates: list[Candidate], base: str) -> str:
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


def embed_plugin(md: Any) -> None:
    """mistune plugin: Obsidian ``![[file|alias]]`` embeds become opaque tokens."""

    def parse_embed(inline: Any, match: re.Match[str], state: Any) -> int:
        state.append_token({"type": _EMBED_TOKEN, "raw": match.group(0)[3:-2]})
        return match.end()

    md.inline.register(_EMBED_TOKEN, EMBED_PATTERN, parse_embed, before="link", start_chars="!")


def _parser() -> Any:
    """One mistune instance per thread (its rule caches are not meant to be shared)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        import mistune

        parser = mistune.create_markdown(renderer=None, plugins=[*DIALECT_PLUGINS, embed_plugin])
        _local.parser = parser
    return parser


def parse(text: str) -> list[dict[str, Any]]:
    """mistune's token tree of ``text`` in our dialect (the one parse per note)."""
    return _parser()(text)


# --------------------------------------------------------------------------------------------------
# the parser decides, and the cross-check


def decide(
    tokens: list[dict[str, Any]], candidates: list[Candidate], marked: str, base: str
) -> Decision:
    """Match mistune's ``tokens`` of the ``marked`` copy against the candidates (see above)."""
    from mistune.helpers import unescape_char
    from mistune.util import escape_url

    marker_re = re.compile(re.escape(base) + r"([0-9]+)$")
    confirmed: dict[int, str] = {}
    notes: list[tuple[str, int]] = []
    consistent = True
    shared_with_link: set[int] = set()

    def candidate_for(value: str, kind: str) -> int | None:
        """The candidate whose marker ends ``value``. Candidates that end at one place have their
        markers there one after the other (``[b]: <img src=x>`` is a definition or an ``<img>``):
        the one of ``kind`` is meant, else the last."""
        last: int | None = None
        end = len(value)
        while (match := marker_re.search(value, 0, end)) is not None:
            index = int(match.group(1))
            if index < len(candidates):
                if candidates[index].kind == kind:
                    return index
                last = index if last is None else last
            end = match.start()
        return last

    def mismatch(message: str, pos: int = 0) -> None:
        nonlocal consistent
        consistent = False
        notes.append((f"cross-check failed, note left alone: {message}", pos))

    images, links, html_raws, embeds = _collect(tokens)
    for image in images:
        url = image["attrs"].get("url", "")
        by_reference = "ref" in image
        expected_kind = "reference" if by_reference else "inline"
        index = candidate_for(url, expected_kind)
        if index is None:
            mismatch(f"the parser sees an image {_unmark(url, base)!r} the scanner did not locate")
            continue
        candidate = candidates[index]
        expected = escape_url(unescape_char(without_surrogates(_marked_raw(marked, candidate))))
        if candidate.kind != expected_kind or url != expected:
            mismatch(
                f"image {_unmark(url, base)!r} is not where the scanner put it", candidate.start
            )
            continue
        confirmed.setdefault(
            index, _plain_text(image.get("children", ())) if by_reference else candidate.alt
        )

    for link in links:
        index = candidate_for(link["attrs"].get("url", ""), "reference")
        if index is not None and candidates[index].kind == "reference":
            shared_with_link.add(index)

    for raw in html_raws:
        for value_start, value_end, _quote, _alt in scan_img_tags(raw, skip_comments=True):
            value = raw[value_start:value_end]
            index = candidate_for(value, "html")
            if index is None or candidates[index].kind != "html":
                where = _unmark(value, base)
                if index is not None and not where:
                    # ``<img src=>`` was no tag: the marker of another candidate made one
                    continue
                mismatch(f"the parser sees an <img src={where!r}> the scanner did not locate")
                continue
            confirmed.setdefault(index, candidates[index].alt)

    for body in embeds:
        file_start, file_end, _alias = split_embed(body, 0, len(body))
        file_part = body[file_start:file_end]
        index = candidate_for(file_part, "embed")
        name = _unmark(file_part, base)
        if not has_image_extension(name):
            continue  # not an image, whichever candidate ends there
        if index is None:
            mismatch(f"the parser sees an embed {name!r} the scanner did not locate")
            continue
        if candidates[index].kind != "embed":
            mismatch(f"embed {name!r} is not where the scanner put it", candidates[index].start)
            continue
        confirmed.setdefault(index, candidates[index].alt)

    shared_with_link &= confirmed.keys()
    for index in sorted(shared_with_link):
        notes.append((SHARED_DEFINITION_WARNING, candidates[index].start))
    return Decision(confirmed, notes, consistent, shared_with_link)


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


def _marked_raw(marked: str, candidate: Candidate) -> str:
    return marked[candidate.marked_start : candidate.marked_end]


def _unmark(value: str, base: str) -> str:
    return re.sub(re.escape(base) + r"[0-9]+", "", value)
