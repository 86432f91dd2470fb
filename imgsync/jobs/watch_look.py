"""What the watcher sees when it looks at a note before syncing it: the bytes it holds, the images
it names, and whether each of them is there and done being written.

A look reads and scans the note with the same scanner and resolver as the sync pass, and makes no
request. It tells the watcher three things the sync job alone cannot:

* which local images are **missing**: editors write a pasted image and the note in either order,
  so an image named by a note saved a moment ago may simply not be there yet;
* which are **still being written** (an image whose size or mtime changed within the settle time):
  uploading it now would put a half-written picture on the image bed;
* the **digest** of the note's bytes, by which imgsync's own writes (and saves that change nothing)
  are recognised.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imgsync.engine.results import HOSTED, LOCAL
from imgsync.errors import ImgsyncError
from imgsync.notes.freshness import content_digest
from imgsync.notes.markdown import find_images
from imgsync.notes.notefile import read_note
from imgsync.notes.resolve import Resolver

__all__ = ["ImageSettling", "NoteScan", "scan_note"]

#: How long an image's looks are remembered once nothing asks about it (in settle times).
FORGET_AFTER_SETTLES = 20


@dataclass(frozen=True)
class NoteScan:
    """A note as a look found it."""

    digest: str
    consistent: bool  # the scanner agreed with the parser (else the pass reports it)
    missing: frozenset[str]  # targets of local images that are not there
    present: dict[str, Path]  # targets of local images that are there, and their files
    uploadable: frozenset[str]  # targets that resolved to something to upload
    hosted: frozenset[str]  # targets already on the image bed
    targets: tuple[str, ...]  # every image target, in order


def scan_note(path: str, resolver: Resolver) -> NoteScan | None:
    """Read and scan the note at ``path``; None when it cannot be read (the pass reports why)."""
    try:
        note = read_note(Path(path))
    except ImgsyncError:
        return None
    digest = content_digest(note.raw)
    scan = find_images(note.text)
    if not scan.consistent:
        return NoteScan(digest, False, frozenset(), {}, frozenset(), frozenset(), ())
    missing: set[str] = set()
    present: dict[str, Path] = {}
    uploadable: set[str] = set()
    hosted: set[str] = set()
    for ref, resolved in zip(
        scan.refs, resolver.resolve_all(Path(path), scan.refs, scan.front_matter), strict=True
    ):
        target = ref.target
        if resolved.kind == HOSTED:
            hosted.add(target)
        elif resolved.skip_reason is None:
            uploadable.add(target)
            if resolved.kind == LOCAL and resolved.path is not None:
                present[target] = resolved.path
        elif resolved.kind == LOCAL and resolved.path is None and target.strip():
            missing.add(target)
    targets = tuple(ref.target for ref in scan.refs)
    return NoteScan(
        digest, True, frozenset(missing), present, frozenset(uploadable), frozenset(hosted), targets
    )


class ImageSettling:
    """Tells whether an image file is done being written: its size and mtime have not changed for
    ``settle`` seconds (by its mtime's age, or by two looks that far apart: a clock set wrong or
    a copy that keeps old mtimes cannot fool both)."""

    def __init__(
        self,
        settle: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settle = settle
        self._clock = clock
        self._wall = wall
        self._looks: dict[Path, tuple[tuple[int, int, int], float]] = {}

    def settled(self, path: Path) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return True  # gone or unreadable: the pass says what is wrong with it
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        now = self._clock()
        earlier = self._looks.get(path)
        if earlier is None or earlier[0] != key:
            self._looks[path] = (key, now)
            earlier = (key, now)
        if st.st_size == 0:
            return False  # an editor creates the file first, then writes it
        return self._wall() - st.st_mtime >= self.settle or now - earlier[1] >= self.settle

    def prune(self) -> None:
        """Forget images not looked at for a while."""
        horizon = self._clock() - FORGET_AFTER_SETTLES * max(self.settle, 0.1)
        for path in [p for p, (_key, at) in self._looks.items() if at < horizon]:
            del self._looks[path]
