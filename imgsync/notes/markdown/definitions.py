"""Reference definitions ``[label]: dest``: a candidate for the destination of each line that may
be one (an image ``![alt][label]`` elsewhere then points there).

Part of the scanner: imports :mod:`.candidates`, :mod:`.destinations` and :mod:`.inert`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from imgsync.notes.markdown.candidates import Candidate
from imgsync.notes.markdown.destinations import MD_WHITESPACE, Walks, parse_destination
from imgsync.notes.markdown.inert import marker_is_inert

__all__ = ["LINK_LABEL", "MAX_LABEL_LENGTH", "MAX_LABEL_LINES", "propose_definitions"]

#: CommonMark link labels are at most 999 characters.
MAX_LABEL_LENGTH = 999
#: A link label's text as mistune reads it (before its ``]``; it may run over lines).
LINK_LABEL = rf"(?=[\s\S]{{0,{MAX_LABEL_LENGTH}}}\])(?:[^\\\[\]]|\\.){{0,{MAX_LABEL_LENGTH}}}"

#: A reference definition's label is looked for over at most this many lines. Longer labels are
#: legal but unheard of; an image using one is caught by the cross-check.
MAX_LABEL_LINES = 5

# A reference definition starts its line, after container prefixes (quotes, list markers).
_DEF_RE = re.compile(
    r"[ \t>*+\-0-9.)]*\[(?P<label>(?:[^\\\[\]]|\\.){1," + str(MAX_LABEL_LENGTH) + r"})\]:"
)


def propose_definitions(body: str, walks: Walks) -> Iterator[Candidate]:
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


def _definition_candidate(body: str, match: re.Match[str], walks: Walks) -> Candidate | None:
    if not match.group("label").strip(MD_WHITESPACE):
        return None
    dest = parse_destination(body, match.end(), walks, block=True)
    if dest is None:
        return None
    span_start, span_end, angle = dest
    if not marker_is_inert(body, span_end):
        return None
    return Candidate("reference", span_start, span_end, span_end, angle=angle)
