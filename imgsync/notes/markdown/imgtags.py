"""HTML images ``<img src=..>``: the ``src`` value of each complete tag, with its quote style.

The scanner proposes a candidate for every such value in the note (:func:`propose_html`), even in
comments; the parser looks at the tags of its HTML tokens again (:func:`scan_img_tags` with
``skip_comments``) to decide which are images.

Part of the scanner: imports :mod:`.candidates` and :mod:`.inert`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from imgsync.notes.markdown.candidates import Candidate
from imgsync.notes.markdown.inert import marker_is_inert

__all__ = ["HAS_IMG_TAG_RE", "IMG_START_RE", "propose_html", "scan_img_tags"]

#: Where an ``<img`` tag may start (a quick test before the scan).
HAS_IMG_TAG_RE = re.compile(r"<img", re.IGNORECASE)
#: Where an ``<img>`` tag starts.
IMG_START_RE = re.compile(r"<img(?=[ \t\n\r\f/>])", re.IGNORECASE)
_HTML_SKIP_RE = re.compile(
    r"<!--|<(script|style|textarea)(?=[ \t\n\r\f/>])|<img(?=[ \t\n\r\f/>])", re.IGNORECASE
)
_HTML_ATTR_RE = re.compile(
    r"[ \t\n\r\f]+(?P<name>[A-Za-z_:][A-Za-z0-9_.:-]*)"
    r"(?:[ \t\n\r\f]*=[ \t\n\r\f]*"
    r"(?:(?P<bare>[^ \t\n\r\f\"'=<>`]+)|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"))?"
)
_HTML_TAG_END_RE = re.compile(r"[ \t\n\r\f]*/?>")


def propose_html(body: str) -> Iterator[Candidate]:
    """A candidate for the ``src`` value of each complete ``<img>`` tag of ``body``."""
    if not HAS_IMG_TAG_RE.search(body):
        return
    for value_start, value_end, quote, alt in scan_img_tags(body, skip_comments=False):
        if not marker_is_inert(body, value_end):
            continue
        yield Candidate("html", value_start, value_end, value_end, alt=alt, quote=quote)


def scan_img_tags(text: str, *, skip_comments: bool) -> Iterator[tuple[int, int, str, str]]:
    """Yield ``(value_start, value_end, quote, alt)`` of the ``src`` of each complete ``<img>``.

    With ``skip_comments`` (used on the parser's HTML tokens), comments and the raw contents of
    ``script``, ``style`` and ``textarea`` are skipped, as a browser does.
    """
    finder = _HTML_SKIP_RE if skip_comments else IMG_START_RE
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
