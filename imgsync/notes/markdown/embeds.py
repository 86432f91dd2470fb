"""Obsidian embeds ``![[file#anchor|alias]]``: a candidate for each one naming an image file.

The whole embed is what a rewrite replaces (it becomes ``![alias](url)``); the marker goes at the
end of its file part. The parser's embed plugin uses :data:`EMBED_PATTERN` too.

Part of the scanner: imports :mod:`.candidates` and :mod:`.inert`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from imgsync.notes.markdown.candidates import Candidate, has_image_extension
from imgsync.notes.markdown.inert import marker_is_inert

__all__ = ["EMBED_PATTERN", "EMBED_RE", "propose_embeds", "split_embed"]

#: Obsidian embeds ``![[file|alias]]``; the parser's embed plugin uses the same pattern.
EMBED_PATTERN = r"!\[\[[^\[\]\n]+\]\]"
#: :data:`EMBED_PATTERN`, compiled.
EMBED_RE = re.compile(EMBED_PATTERN)


def propose_embeds(body: str) -> Iterator[Candidate]:
    """A candidate for each embed of ``body`` whose file has an image extension."""
    if "![[" not in body:
        return
    for match in EMBED_RE.finditer(body):
        inner_start = match.start() + 3
        file_start, file_end, alias = split_embed(body, inner_start, match.end() - 2)
        target = body[file_start:file_end]
        if not has_image_extension(target) or not marker_is_inert(body, file_end):
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
