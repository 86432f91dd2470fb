"""Image-bed folders and names: where an upload goes, and what it is called when the name is taken.

The service files images in folders, addressed by ID, and refuses a second file of the same name
in one folder. This module turns the user's templates into both:

- **folders** - ``upload.folder`` (``imgsync/{year}/{month}``) renders to a path whose levels are
  looked up in this run's memo, then the cache, then created on demand. A level that already exists
  (an earlier run, another machine, a ``mkdir`` retried after a lost answer) is found by listing
  its parent. Cached IDs are not trusted blindly: one the service has not accepted in this run can
  be forgotten and looked up afresh, for when the folder was deleted or moved on the image bed.
- **names** - ``upload.filename`` renders to the wanted name; when that name can collide (a
  template without ``{md5}``), the md5 is added to make a second candidate for other content.
- **finding a file by name** - how a same-name refusal, a lost completion and a migrated URL are
  resolved without a duplicate.

What the service calls, and when, is decided here; the calls themselves are
:mod:`imgsync.client.api`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from imgsync.engine.keyedlocks import KeyedLocks
from imgsync.errors import ApiError, ItemError
from imgsync.naming import render_filename, render_folder

if TYPE_CHECKING:
    from imgsync.client.api import Api, RemoteFile
    from imgsync.store.cache import Cache

# The service's generic business error: it is how "same name exists" and "folder exists" arrive.
CODE_GENERIC = 1


class ImageBedFolders:
    """The folder IDs of one run, created on demand and shared by its threads.

    ``api`` makes the calls, ``cache`` keeps the IDs between runs, ``now`` dates the folder names.
    """

    def __init__(
        self,
        *,
        api: Api,
        cache: Cache,
        now: Callable[[], datetime],
    ) -> None:
        self._api = api
        self._cache = cache
        self._now = now
        self._locks = KeyedLocks()
        # Folder IDs known during this run; those the service accepted a create in are confirmed
        # (the persistent cache may hold stale ones).
        self._ids: dict[str, str] = {}
        self._confirmed: set[str] = set()

    def ensure(self, template: str) -> str:
        """The ID of the image-bed folder ``template`` renders to, created on demand.

        Each level is looked up in this run's memo, then the cache, then created; a level that
        already exists is found by listing its parent. ``""`` is the root.
        """
        parent = ""
        for key, name in self._levels(template):
            folder_id = self._ids.get(key)
            if folder_id is None:
                with self._locks.hold(key):
                    folder_id = self._ids.get(key)
                    if folder_id is None:
                        folder_id = self._cache.get_folder(key)
                        if folder_id is None:
                            folder_id = self._make(name, parent)
                            self._cache.put_folder(key, folder_id)
                            self._confirmed.add(key)
                        self._ids[key] = folder_id
            parent = folder_id
        return parent

    def confirm(self, template: str) -> None:
        """The service accepted a create in this folder: its cached IDs are right."""
        self._confirmed.update(key for key, _ in self._levels(template))

    def forget_unconfirmed(self, template: str) -> bool:
        """Forget the folder IDs of ``template`` that came from the cache and were not confirmed
        this run (the folder may have been deleted or moved); True if there were any."""
        stale = False
        for key, _ in self._levels(template):
            with self._locks.hold(key):
                if key in self._confirmed:
                    continue
                stale = True
                self._ids.pop(key, None)
                self._cache.forget_folder(key)
        return stale

    def find_file(self, folder_id: str, filename: str) -> RemoteFile | None:
        """The file named ``filename`` in the folder, found by listing it (None if absent)."""
        for entry in self._api.iter_files(folder_id):
            if not entry.is_folder and entry.filename == filename:
                return entry
        return None

    def _levels(self, template: str) -> list[tuple[str, str]]:
        """(cache key, name) of each level of the folder ``template`` renders to, top first."""
        parts = render_folder(template, now=self._now())
        return [("/".join(parts[: depth + 1]), parts[depth]) for depth in range(len(parts))]

    def _make(self, name: str, parent_id: str) -> str:
        """Create one folder level; one that exists already ("folder exists"), or one the answer
        did not name (an empty or null list), is found by name in its parent."""
        try:
            made = self._api.mkdir(name, parent_id)
        except ApiError as exc:
            if exc.retryable or exc.code != CODE_GENERIC:
                raise
            found = self._find_folder(parent_id, name)
            if found is None:
                raise
            return found
        for folder in made:
            if folder.filename == name:
                return folder.dir_id
        if made:
            return made[0].dir_id
        found = self._find_folder(parent_id, name)
        if found is None:
            raise ItemError(f"the service created folder {name!r} but returned no ID")
        return found

    def _find_folder(self, parent_id: str, name: str) -> str | None:
        for entry in self._api.iter_files(parent_id):
            if entry.is_folder and entry.filename == name:
                return entry.file_id
        return None


def candidate_names(template: str, *, md5: str, name: str, ext: str, now: datetime) -> list[str]:
    """The names to try for content in a folder, best first: the one ``template`` renders to, then,
    if that one does not already hold the md5, the same name made unique by content (for when
    other content has taken the first)."""
    wanted = render_filename(template, md5=md5, name=name, ext=ext, now=now)
    candidates = [wanted]
    unique = _with_hash(wanted, md5, ext, now)
    if unique != wanted:
        candidates.append(unique)
    return candidates


def _with_hash(filename: str, md5: str, ext: str, now: datetime) -> str:
    """``filename`` made unique by content, for names the template did not make unique (the
    stem gives way if the name would be too long; md5 and extension stay)."""
    if md5 in filename:
        return filename
    stem = filename[: -len(ext)] if ext and filename.lower().endswith(ext.lower()) else filename
    return render_filename("{name}-{md5}{ext}", md5=md5, name=stem, ext=ext, now=now)
