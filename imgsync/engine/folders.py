"""Image-bed folders and names: where an upload goes, and what it is called when the name is taken.

The service files images in folders, addressed by ID, and refuses a second file of the same name
in one folder. This module turns the user's templates into both:

- **folders** - ``upload.folder`` (``imgsync/{year}/{month}``) renders to a path whose levels are
  looked up in this run's memo, then the cache, then created on demand. A level that already exists
  (an earlier run, another machine, a ``mkdir`` retried after a lost answer) is found by listing
  its parent.
- **folders that are gone** - the cache's IDs are not trusted blindly: a folder deleted in the
  123pan console leaves its ID behind. Any refusal that names a folder imgsync used (by its ID, as
  the request's parent, or code 5066) makes it forget every cached folder ID of the account and
  make the path again, once per run (api-facts "Still unconfirmed" 1: the real answer is
  undocumented, so any of them is taken for "gone").
- **mkdir's name** - the reference's example sends ``name`` as a string, its table types it
  ``[]string``. The string goes first; a refusal that is not "already exists" is tried once more
  with ``[name]``, and the form that worked is remembered for the account (api-facts "Still
  unconfirmed" 2).
- **names** - ``upload.filename`` renders to the wanted name; when that name can collide (a
  template without ``{md5}``), the md5 is added to make a second candidate for other content.
- **finding a file by name** - how a same-name refusal, a lost completion and a migrated URL are
  resolved without a duplicate.

What the service calls, and when, is decided here; the calls themselves are
:mod:`imgsync.client.api`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from imgsync.engine.keyedlocks import KeyedLocks
from imgsync.errors import ApiError, AuthError, ItemError, NotFound
from imgsync.naming import render_filename, render_folder

if TYPE_CHECKING:
    from imgsync.client.api import Api, Folder, RemoteFile
    from imgsync.store.cache import Cache

log = logging.getLogger(__name__)

T = TypeVar("T")

# The service's generic business error: it is how "same name exists" and "folder exists" arrive.
CODE_GENERIC = 1

# The forms of mkdir's ``name``, as remembered under MKDIR_NAME_FACT in the index: the reference's
# example (a string) first, its documented type (an array of strings) second.
NAME_AS_TEXT = "string"
NAME_AS_LIST = "list"
MKDIR_NAME_FACT = "mkdir.name"

# What a refusal that names the parent folder contains (every parent parameter: parentFileId for
# list, parentFileID for create, parentID for mkdir), compared in lower case.
PARENT_WORD = "parent"


class FolderGone(ItemError):
    """A folder imgsync holds the ID of is no longer on the image bed (deleted in the console);
    ``cause`` is the service's refusal that said so."""

    def __init__(self, folder_id: str, cause: ApiError) -> None:
        super().__init__(str(cause))
        self.folder_id = folder_id
        self.cause = cause


@dataclass(frozen=True)
class Ensured:
    """A folder path on the image bed: its ID, and whether this call made its last level (False:
    it was there already)."""

    folder_id: str
    created: bool


def names_folder(exc: ApiError, folder_id: str) -> bool:
    """Whether the service's refusal ``exc`` of a request about the folder ``folder_id`` says the
    folder is gone: code 5066 ("file does not exist": the folder was all the request named), or a
    message naming it by its ID or as the request's parent. The root ("") is never gone."""
    if not folder_id or exc.retryable or isinstance(exc, AuthError):
        return False
    if isinstance(exc, NotFound):
        return True
    text = exc.message.lower()
    return folder_id.lower() in text or PARENT_WORD in text


class ImageBedFolders:
    """The folder IDs of one run, created on demand and shared by its threads.

    ``api`` makes the calls, ``cache`` keeps the IDs between runs (and the mkdir form that works),
    ``now`` dates the folder names; with ``use_cache`` False (``--no-cache``) no folder ID is read
    from the cache, only written.
    """

    def __init__(
        self,
        *,
        api: Api,
        cache: Cache,
        now: Callable[[], datetime],
        use_cache: bool = True,
    ) -> None:
        self._api = api
        self._cache = cache
        self._now = now
        self._use_cache = use_cache
        self._locks = KeyedLocks()
        # Folder IDs known during this run; those the service vouched for in this run (made,
        # found by listing, or accepted a create in) are confirmed, the others came from the
        # cache. Both are replaced, not emptied, when the IDs are forgotten: a thread still
        # walking with the old ones then writes into the old ones.
        self._ids: dict[str, str] = {}
        self._confirmed: set[str] = set()
        # Forgetting the folder IDs happens once per run; each time bumps the generation, so a
        # thread that failed on an old ID tries again instead of giving up.
        self._recovery_lock = threading.Lock()
        self._generation = 0
        self._recovered = False
        self._name_form: str | None = None  # mkdir's name form, read from the cache on first use

    # -- public operations ------------------------------------------------------------------------

    def ensure(self, template: str) -> str:
        """The ID of the image-bed folder ``template`` renders to, created on demand.

        Each level is looked up in this run's memo, then the cache, then created; a level that
        already exists is found by listing its parent. ``""`` is the root.
        """
        return self.within(template, lambda folder_id: folder_id)

    def make(self, template: str) -> Ensured:
        """Make the folder path ``template`` renders to, every level checked with the service (an
        ID from the cache is not trusted: the folder may have been deleted in the console); say
        whether its last level was made now or was there."""
        return self._with_recovery(lambda: self._walk(template, trust_cache=False))

    def within(self, template: str, work: Callable[[str], T]) -> T:
        """``work(folder_id)`` in the folder ``template`` renders to.

        When the service refuses because that folder (or one above it) is gone - a refusal that
        names it, or :class:`FolderGone` raised by ``work`` - every cached folder ID of the account
        is forgotten and the path made again, once per run, and ``work`` runs again.
        """

        def attempt() -> T:
            folder_id = self._walk(template).folder_id
            try:
                return work(folder_id)
            except ApiError as exc:
                if names_folder(exc, folder_id):
                    raise FolderGone(folder_id, exc) from exc
                raise

        return self._with_recovery(attempt)

    def confirm(self, template: str) -> None:
        """The service accepted a create in this folder: its cached IDs are right."""
        self._confirmed.update(key for key, _ in self._levels(template))

    def unconfirmed(self, template: str) -> bool:
        """Whether a level of ``template``'s folder came from the cache and was not vouched for by
        the service in this run (it may be gone)."""
        return any(key not in self._confirmed for key, _ in self._levels(template))

    def find_file(self, folder_id: str, filename: str) -> RemoteFile | None:
        """The file named ``filename`` in the folder, found by listing it (None if absent)."""
        for entry in self._api.iter_files(folder_id):
            if not entry.is_folder and entry.filename == filename:
                return entry
        return None

    # -- folders that are gone --------------------------------------------------------------------

    def _with_recovery(self, attempt: Callable[[], T]) -> T:
        generation = self._generation
        try:
            return attempt()
        except FolderGone as gone:
            if not self._forget_all(generation, gone):
                raise gone.cause from None
        try:
            return attempt()
        except FolderGone as gone:
            raise gone.cause from None

    def _forget_all(self, generation: int, gone: FolderGone) -> bool:
        """Forget every folder ID of the account (memo and cache) after ``gone``; False when that
        was done already in this run and the folder is still refused."""
        with self._recovery_lock:
            if self._generation != generation:
                return True  # another thread forgot them meanwhile: its new IDs may do
            if self._recovered:
                return False
            self._recovered = True
            self._generation += 1
            self._ids, self._confirmed = {}, set()
            self._cache.forget_folders()
        log.warning(
            "an image-bed folder is gone (deleted in the 123pan console?): making the folders again"
        )
        log.info("folder %s refused: %s", gone.folder_id, gone.cause)
        return True

    # -- the walk ---------------------------------------------------------------------------------

    def _walk(self, template: str, *, trust_cache: bool = True) -> Ensured:
        """The folder ``template`` renders to, level by level from the root."""
        ids, confirmed = self._ids, self._confirmed
        parent, parent_key = "", ""
        created = False
        for key, name in self._levels(template):
            with self._locks.hold(key):
                folder_id = ids.get(key) if trust_cache or key in confirmed else None
                created = False
                if folder_id is None and trust_cache and self._use_cache:
                    folder_id = self._cache.get_folder(key)
                if folder_id is None:
                    folder_id, created = self._make(name, parent, parent_key in confirmed)
                    self._cache.put_folder(key, folder_id)
                    confirmed.add(key)
                ids[key] = folder_id
            parent, parent_key = folder_id, key
        return Ensured(parent, created)

    def _levels(self, template: str) -> list[tuple[str, str]]:
        """(cache key, name) of each level of the folder ``template`` renders to, top first."""
        parts = render_folder(template, now=self._now())
        return [("/".join(parts[: depth + 1]), parts[depth]) for depth in range(len(parts))]

    def _make(self, name: str, parent_id: str, parent_confirmed: bool) -> tuple[str, bool]:
        """Make one folder level: (its ID, True), or (the ID, False) when it exists already.

        A refusal that names the parent raises :class:`FolderGone`. Any other code 1 is looked
        into by listing the parent: the folder is there ("folder exists", also after a lost
        answer), or the parent from the cache may be gone (it lists as empty), or the service
        wants the other form of ``name``.
        """
        form = self._mkdir_form()
        try:
            made = self._api.mkdir(name, parent_id, name_as_list=form == NAME_AS_LIST)
        except ApiError as exc:
            if names_folder(exc, parent_id):
                raise FolderGone(parent_id, exc) from exc
            if exc.retryable or exc.code != CODE_GENERIC:
                raise
            found = self._find_folder(parent_id, name)
            if found is not None:
                return found, False
            if parent_id and not parent_confirmed:
                raise FolderGone(parent_id, exc) from exc
            made = self._mkdir_other_form(name, parent_id, form, exc)
            if isinstance(made, str):
                return made, False
        return self._made_id(made, name, parent_id), True

    def _mkdir_other_form(
        self, name: str, parent_id: str, form: str, refusal: ApiError
    ) -> Sequence[Folder] | str:
        """mkdir again with the other form of ``name``; remember it when it works. Returns what
        it made, or the ID of the folder when it turns out to exist."""
        other = NAME_AS_LIST if form == NAME_AS_TEXT else NAME_AS_TEXT
        log.info("mkdir refused name as a %s (%s); trying it as a %s", form, refusal, other)
        try:
            made = self._api.mkdir(name, parent_id, name_as_list=other == NAME_AS_LIST)
        except ApiError as exc:
            if exc.retryable or exc.code != CODE_GENERIC:
                raise
            found = self._find_folder(parent_id, name)
            if found is not None:
                return found
            raise ItemError(
                f"the service refused to make folder {name!r} with its name as a {form}"
                f" ({refusal.message or refusal}) and as a {other} ({exc.message or exc})"
            ) from None
        self._name_form = other
        self._cache.put_fact(MKDIR_NAME_FACT, other)
        log.info("mkdir takes its name as a %s on this service; remembered", other)
        return made

    def _mkdir_form(self) -> str:
        if self._name_form is None:
            known = self._cache.get_fact(MKDIR_NAME_FACT)
            self._name_form = NAME_AS_LIST if known == NAME_AS_LIST else NAME_AS_TEXT
        return self._name_form

    def _made_id(self, made: Sequence[Folder], name: str, parent_id: str) -> str:
        """The ID of the folder mkdir made; one the answer did not name (an empty or null list)
        is found by name in its parent."""
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
        """The folder ``name`` in the parent, by listing it; a refusal naming the parent raises
        :class:`FolderGone`."""
        try:
            for entry in self._api.iter_files(parent_id):
                if entry.is_folder and entry.filename == name:
                    return entry.file_id
        except ApiError as exc:
            if names_folder(exc, parent_id):
                raise FolderGone(parent_id, exc) from exc
            raise
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
