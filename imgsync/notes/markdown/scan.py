"""The scanner: propose where image references *might* be in a note body, with exact spans.

:func:`imgsync.notes.markdown.find_images` needs exact positions, and mistune gives none; so the
scanner reads the raw text and **proposes** candidates (see ``docs/markdown-rules.md``), one
subject per module:

* :mod:`.brackets`: inline destinations ``![..](dest)`` (brackets matched as the parser matches
  them, code spans from :mod:`.codespans`, destinations from :mod:`.destinations`);
* :mod:`.definitions`: reference definitions ``[label]: dest``;
* :mod:`.imgtags`: ``<img src=..>`` values;
* :mod:`.embeds`: Obsidian ``![[..]]`` embeds.

It is deliberately liberal: a candidate in a code span, a comment or plain text costs nothing,
because the parser (:mod:`.parse`), or for a simple note the scanner alone (:mod:`.simple`),
decides which candidates are images. What the scanner must get right is the span of each real
one, and never to propose a candidate whose marker would change the parse (:mod:`.inert`).

The scanner's modules import neither the parser nor :mod:`imgsync.notes.markdown`, and never
mistune. Pure: no filesystem, no network.
"""

from __future__ import annotations

from imgsync.notes.markdown.brackets import IMAGE_OPEN_RE, propose_inline
from imgsync.notes.markdown.candidates import Candidate
from imgsync.notes.markdown.definitions import propose_definitions
from imgsync.notes.markdown.destinations import Walks
from imgsync.notes.markdown.embeds import propose_embeds
from imgsync.notes.markdown.imgtags import HAS_IMG_TAG_RE, propose_html

__all__ = ["may_hold_images", "propose"]


def may_hold_images(body: str) -> bool:
    """False when ``body`` has neither ``![`` nor ``<img``: then it holds no image and the (costly)
    parse can be skipped."""
    return IMAGE_OPEN_RE.search(body) is not None or HAS_IMG_TAG_RE.search(body) is not None


def propose(body: str) -> list[Candidate]:
    """Every candidate of ``body`` once (a place proposed twice, as the same kind, counts once)."""
    candidates: list[Candidate] = []
    walks: Walks = {}  # bare destinations, shared (see destinations._bare_walk)
    if "!" in body:
        candidates.extend(propose_inline(body, walks))
        candidates.extend(propose_embeds(body))
    if "]:" in body:
        candidates.extend(propose_definitions(body, walks))
    candidates.extend(propose_html(body))
    unique: dict[tuple[int, int, str], Candidate] = {}
    for candidate in candidates:
        unique.setdefault((candidate.start, candidate.end, candidate.kind), candidate)
    return list(unique.values())
