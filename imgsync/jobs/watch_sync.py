"""The watcher's one seam onto the sync job: sync a set of notes, with one long-lived session.

Everything the watcher needs of ``imgsync sync`` goes through :class:`SyncSession`, so that when the
sync job changes shape (a per-note pipeline, a remote-image policy, failure memory) only this
module follows it. Today it drives :class:`imgsync.jobs.sync.Syncer` as ``imgsync sync`` does,
with two differences:

* **one session for the watcher's life**: the index (cache) and the API client (its HTTP session
  and token) are opened once and handed to every pass, instead of each pass opening and closing
  its own. Each pass gets a fresh :class:`~imgsync.engine.uploader.Uploader` over them, so an
  outage the engine noticed in one pass does not fail the next pass at once.
* **the notes of a pass are held** (:mod:`imgsync.notes.notelock`) while their images upload: a
  manual ``imgsync sync`` of the same notes waits, then finds the images in the index instead of
  uploading them a second time.

It also builds the resolver the watcher looks at a note with before its pass (is every image it
names there, and done being written?), with the same root and hosted prefixes as the pass, and
tells how long a remote link that failed is held back (:meth:`SyncSession.held_for`).

The watcher's passes never try remembered failures anyway (no ``retry_failed``): a dead link is
tried again when its back-off, kept across runs, has passed, whether ``imgsync sync`` or the
watcher comes first, and never gets a second offline task while the first is known. Its own
retries only bring back what failed for a passing reason (an upload refused, the service down).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from imgsync.engine.cached import CacheAnswers
from imgsync.jobs.session import OpenOnce
from imgsync.jobs.sync import Syncer
from imgsync.notes.notelock import notes_locked
from imgsync.notes.resolve import Resolver, find_root, remote_url
from imgsync.store.cache import Cache

if TYPE_CHECKING:
    from imgsync.client.api import Api
    from imgsync.config import Settings
    from imgsync.engine.uploader import Uploader
    from imgsync.jobs.sync_report import NoteOutcome

__all__ = ["SyncSession"]

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000


class SyncSession:
    """Syncs notes for the watcher over one cache and one API client, opened on first use.

    ``root``: the notes root given by the user (``--root``), else each watched path's own (the
    nearest folder above it with ``.obsidian``, else the folder itself), as ``imgsync sync PATH``
    finds it. ``api_factory`` makes the API client (tests pass one pointed elsewhere);
    ``clock_ns`` is the wall clock remembered failures' back-offs are judged by.
    """

    def __init__(
        self,
        settings: Settings,
        watched: Sequence[Path],
        *,
        root: Path | None = None,
        allow_outside_root: bool = False,
        allow_data: bool = False,
        api_factory: Callable[[], Api] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.allow_outside_root = allow_outside_root
        self.allow_data = allow_data
        self._root = root
        self._watched = {os.path.abspath(p): _root_of(Path(p), root) for p in watched}
        self._open = OpenOnce(settings, api_factory)
        self._clock_ns = clock_ns

    # -- what the watcher asks --------------------------------------------------------------------

    def sync_all(self, paths: Sequence[Path]) -> list[NoteOutcome]:
        """A full sync of ``paths`` (the watcher's start-up: changes made while not watching)."""
        return self._syncer(self._root).run(list(paths)).notes

    def sync_notes(self, notes: Sequence[str]) -> list[NoteOutcome]:
        """Sync these notes (absolute paths), holding them while their images upload."""
        outcomes: list[NoteOutcome] = []
        by_root: dict[Path, list[str]] = {}
        for note in notes:
            by_root.setdefault(self.root_of(note), []).append(note)
        for root, group in by_root.items():
            with notes_locked(group):
                report = self._syncer(root).run([Path(note) for note in group])
            outcomes.extend(report.notes)
        return outcomes

    def root_of(self, note: str) -> Path:
        """The notes root a note below the watched paths is synced under."""
        best = ""
        for watched in self._watched:
            inside = note == watched or note.startswith(watched.rstrip(os.sep) + os.sep)
            if inside and len(watched) > len(best):
                best = watched
        if best:
            return self._watched[best]
        return _root_of(Path(note), self._root)

    def resolver(self, root: Path) -> Resolver:
        """A resolver as the pass over a note under ``root`` would build it."""
        prefixes = {p for p in self.settings.upload.hosted_prefixes if p}
        prefixes |= self._open_cache().link_folders()
        return Resolver(
            root,
            hosted_prefixes=tuple(sorted(prefixes)),
            allow_outside_root=self.allow_outside_root,
            allow_data=self.allow_data,
        )

    def held_for(self, target: str) -> float | None:
        """Seconds until the remote link ``target`` (as written in a note), which failed, may be
        tried again: what is left of its back-off. None when a pass may try it now (it is no
        remote link, or no failure of it holds it back)."""
        remote = remote_url(target)
        if remote is None:
            return None
        answers = CacheAnswers(self.settings, self._open_cache(), clock_ns=self._clock_ns)
        until_ns = answers.held_until_ns(remote[0])
        if until_ns is None:
            return None
        return max(0.0, (until_ns - self._clock_ns()) / NS_PER_S)

    def close(self) -> None:
        """Close the API client and the cache (a pass in flight must have ended)."""
        self._open.close()

    # -- collaborators ----------------------------------------------------------------------------

    def _syncer(self, root: Path | None) -> Syncer:
        return Syncer(
            self.settings,
            root=root,
            allow_outside_root=self.allow_outside_root,
            allow_data=self.allow_data,
            cache=self._open_cache(),
            uploader_factory=self._uploader,
        )

    def _open_cache(self) -> Cache:
        return self._open.cache()

    def _uploader(self) -> Uploader:
        from imgsync.engine.uploader import Uploader  # only a pass with something to upload

        # Given, not owned: closing the pass's uploader leaves the session's api and cache open.
        return Uploader.from_settings(self.settings, api=self._open.api(), cache=self._open_cache())


def _root_of(path: Path, root: Path | None) -> Path:
    return (root or find_root(path)).resolve()
