"""The image bed as the manage commands address it: folders by path or ID, entries, outcomes.

Users name folders by path (``imgsync/2026/11``, ``/`` for the root) or by ID; the service knows
only IDs, and the root is ``""`` in requests. A path is resolved from the root by listing each
level (every page), and a level that does not exist is named in the error. A bare word without a
``/`` may be either: it is tried as an ID first (one ``detail``), then as a folder at the top.

Every manage job (:mod:`imgsync.jobs.browse`, :mod:`imgsync.jobs.bulk`,
:mod:`imgsync.jobs.drivecopy`, :mod:`imgsync.jobs.migrate`, :mod:`imgsync.jobs.cachejobs`,
:mod:`imgsync.jobs.orphans`) works through one :class:`ImageBed`: it holds the API client and the
local index, opened on first use, and answers per item with :class:`ItemOutcome`. Nothing here
prints.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from imgsync.config import LINK_FIELDS
from imgsync.engine import transfer
from imgsync.engine.folders import ImageBedFolders
from imgsync.engine.transfer import FATAL_ERRORS
from imgsync.engine.uploader import Uploader
from imgsync.errors import (
    EXIT_UNREACHABLE,
    ApiError,
    CacheError,
    ImgsyncError,
    ItemError,
    NotFound,
)
from imgsync.store.cache import RemoteObject

if TYPE_CHECKING:
    from imgsync.client.api import Api, RemoteFile
    from imgsync.config import Settings
    from imgsync.store.cache import Cache

__all__ = [
    "ROOT_ID",
    "Entry",
    "FolderNotFound",
    "ImageBed",
    "ItemOutcome",
    "Located",
    "NotAFolder",
    "PollSpacing",
    "batched",
    "failure",
    "is_fatal",
    "object_from_remote",
]

# The root folder's ID in requests (api-facts: "The root is "" in requests").
ROOT_ID = ""
# How users write the root, and what separates path levels.
ROOT_PATH = "/"
SEPARATOR = "/"

_, USER_SELF_URL = LINK_FIELDS

# What code 5066 means for an ID the user gave.
NOT_FOUND_TEXT = "no file or folder on the image bed has this ID (code 5066)"


class FolderNotFound(ItemError):
    """A folder path (or ID) that names nothing on the image bed; the message says which level."""


class NotAFolder(ItemError):
    """A file named where a folder is needed (``ls`` shows files; ``mv --to`` needs a folder)."""


def is_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` stops the whole command: every other item would fail the same way
    (authentication, configuration, usage, an unusable local index)."""
    return isinstance(exc, (*FATAL_ERRORS, CacheError))


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one item of a manage command (an ID, a path, a URL), as it was given.

    ``status`` is the command's word for what was done (``deleted``, ``moved``, ``created``,
    ``found``, ``started``, ``migrated``, ``exists``) or ``failed``; ``unreachable`` marks a
    failure because the service could not be reached or kept failing (after the transport's
    retries), which a front end tells apart from a failure of the item itself.
    """

    input: str
    status: str
    error: str | None = None
    unreachable: bool = False
    file_id: str = ""
    name: str = ""
    url: str = ""
    task_id: str = ""

    FAILED = "failed"

    @property
    def ok(self) -> bool:
        return self.error is None


def failure(item: str, exc: BaseException, **known: str) -> ItemOutcome:
    """The failed outcome of ``item`` for ``exc``; a whole-command failure is raised again."""
    if is_fatal(exc) or not isinstance(exc, Exception):
        raise exc
    if isinstance(exc, ImgsyncError):
        text = NOT_FOUND_TEXT if isinstance(exc, NotFound) else str(exc)
        unreachable = exc.exit_code == EXIT_UNREACHABLE
        return ItemOutcome(item, ItemOutcome.FAILED, text, unreachable, **known)
    return ItemOutcome(
        item, ItemOutcome.FAILED, f"internal error: {type(exc).__name__}: {exc}", **known
    )


def batched(items: Sequence[str], size: int) -> Iterator[list[str]]:
    """``items`` in lists of at most ``size``, in order (the service's per-request limits)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def object_from_remote(remote: RemoteFile) -> RemoteObject | None:
    """The index entry for a file listed or detailed by the service, or None when it cannot be
    one: a folder, a file without a link, or an etag that is not an md5."""
    if remote.is_folder or not remote.download_url:
        return None
    try:
        return RemoteObject(
            md5=remote.etag,
            size=remote.size,
            file_id=remote.file_id,
            download_url=remote.download_url,
            user_self_url=remote.user_self_url,
            status=remote.status,
            filename=remote.filename,
        )
    except ValueError:
        return None


class PollSpacing:
    """Keeps the rounds of task-progress polls at least ``transfer.POLL_INTERVAL_S`` apart (the
    reference asks for a second between polls), counting from when the tasks were started."""

    def __init__(self, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self._sleep = sleep
        self._clock = clock
        self._last = clock()

    def wait(self) -> None:
        """Return when the next round may start."""
        self._sleep(max(0.0, self._last + transfer.POLL_INTERVAL_S - self._clock()))
        self._last = self._clock()


@dataclass(frozen=True)
class Located:
    """A file or folder found by path or ID. ``path`` is the one it was found by (None when it was
    found by ID); ``remote`` is None for the root, which the service never describes."""

    file_id: str
    path: str | None
    remote: RemoteFile | None = None

    @property
    def is_folder(self) -> bool:
        return self.remote is None or self.remote.is_folder

    @property
    def shown(self) -> str:
        """How to name it to the user."""
        if self.path is not None:
            return self.path
        return self.remote.filename if self.remote is not None else ROOT_PATH


@dataclass(frozen=True)
class Entry:
    """One file or folder of a listing, with its path below the folder listed."""

    path: str
    remote: RemoteFile
    link: str


class ImageBed:
    """One manage command's session with the image bed: the API client, the local index, and
    folders by path or ID (resolved once per command).

    ``api`` and ``cache`` given are the caller's to close; those opened here (on first use, so a
    command that needs only one never opens the other) are closed by :meth:`close`. ``now`` dates
    folder templates; ``sleep`` and ``clock`` space the polls of task progress.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        api: Api | None = None,
        cache: Cache | None = None,
        now: Callable[[], datetime] = datetime.now,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.now = now
        self.sleep = sleep
        self.clock = clock
        self._given_api = api
        self._given_cache = cache
        # The upload engine's front owns the client, the index, the folders and the transfer the
        # way every job needs them; built on first use (a command that fails on its arguments
        # opens nothing) and closed with this session.
        self._uploader: Uploader | None = None
        self._paths: dict[tuple[str, ...], Located] = {}

    @property
    def engine(self) -> Uploader:
        """The upload engine's collaborators for this account (built on first use)."""
        if self._uploader is None:
            self._uploader = Uploader.from_settings(
                self.settings,
                api=self._given_api,
                cache=self._given_cache,
                now=self.now,
                sleep=self.sleep,
                clock=self.clock,
            )
        return self._uploader

    @property
    def api(self) -> Api:
        """The API client (built on first use; needs credentials)."""
        return self.engine.api

    @property
    def cache(self) -> Cache:
        """The local index of this account (opened on first use)."""
        return self.engine.cache

    @property
    def folders(self) -> ImageBedFolders:
        """The engine's image-bed folders (created on demand, cached in the index)."""
        return self.engine.folders

    def close(self) -> None:
        """Close what this session opened (not what it was given)."""
        if self._uploader is not None:
            self._uploader.close()
            self._uploader = None

    def __enter__(self) -> ImageBed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def remember(self, remote: RemoteFile, *, source_url: str | None = None) -> RemoteObject:
        """Check a file's review status and link, then record it in the index (under the URL it
        was migrated from, if given), as the upload engine records what it uploads; a rejected
        image raises instead."""
        return self.engine.transfer.remember(remote, source_url=source_url)

    # -- links ------------------------------------------------------------------------------------

    def link(self, remote: RemoteFile) -> str:
        """The link imgsync hands out for a file (``upload.link``: ``userSelfURL`` falls back to
        ``downloadURL``); "" for a folder."""
        if self.settings.upload.link == USER_SELF_URL and remote.user_self_url:
            return remote.user_self_url
        return remote.download_url

    def entry(self, remote: RemoteFile, path: str | None = None) -> Entry:
        """``remote`` as an entry of a listing (its path defaults to its name)."""
        return Entry(path if path is not None else remote.filename, remote, self.link(remote))

    # -- finding files and folders ----------------------------------------------------------------

    def locate(self, spec: str) -> Located:
        """The file or folder ``spec`` names: a path (``a/b/c``, ``/`` the root) or an ID.

        Anything with a ``/`` is a path; a bare word is tried as an ID first, then as a folder at
        the top. Raises
        :class:`FolderNotFound` saying which level is missing.
        """
        parts = split_path(spec)
        if not parts:
            return Located(ROOT_ID, ROOT_PATH)
        if SEPARATOR in spec:
            return self._by_path(parts)
        try:
            remote = self.api.detail(spec)
        except ApiError as exc:
            if exc.retryable or is_fatal(exc):
                raise
            # Not an ID the service knows (5066, or a refusal of its form): a name at the top?
            try:
                return self._by_path(parts)
            except FolderNotFound:
                raise FolderNotFound(
                    f"{spec!r} is neither a folder at the top of the image bed nor the ID of a"
                    f" file or folder ({exc.message or f'code {exc.code}'})"
                ) from None
        return Located(remote.file_id, None, remote)

    def folder(self, spec: str) -> Located:
        """The folder ``spec`` names (a path or an ID); :class:`NotAFolder` if it is a file."""
        found = self.locate(spec)
        if not found.is_folder:
            raise NotAFolder(f"{found.shown} is a file ({found.file_id}), not a folder")
        return found

    def _by_path(self, parts: tuple[str, ...]) -> Located:
        """Resolve a path level by level from the root, each level by listing its parent."""
        known = self._paths.get(parts)
        if known is not None:
            return known
        parent = self._by_path(parts[:-1]) if len(parts) > 1 else Located(ROOT_ID, ROOT_PATH)
        if not parent.is_folder:
            raise NotAFolder(f"{parent.shown} is a file ({parent.file_id}), not a folder")
        name = parts[-1]
        found: RemoteFile | None = None
        for remote in self.api.iter_files(parent.file_id):
            if remote.filename == name and (found is None or remote.is_folder):
                found = remote  # a folder wins over a file of the same name
        if found is None:
            where = "at the top" if len(parts) == 1 else f"in {SEPARATOR.join(parts[:-1])!r}"
            raise FolderNotFound(f"no folder {name!r} {where} of the image bed")
        located = Located(found.file_id, SEPARATOR.join(parts), found)
        self._paths[parts] = located
        return located

    def walk(self, folder: Located, *, recursive: bool = False) -> Iterator[Entry]:
        """The entries of ``folder`` (every page), and with ``recursive`` those of every folder
        below it, each folder's right after it; paths are relative to ``folder``. A file is its
        own listing."""
        if not folder.is_folder:
            assert folder.remote is not None
            yield self.entry(folder.remote)
            return
        yield from self._walk(folder.file_id, "", recursive)

    def _walk(self, folder_id: str, prefix: str, recursive: bool) -> Iterator[Entry]:
        # The parent's listing waits while a folder below is listed: its lastFileId cursor stays
        # valid, and only one page per level is held.
        for remote in self.api.iter_files(folder_id):
            path = prefix + remote.filename
            yield self.entry(remote, path)
            if recursive and remote.is_folder:
                yield from self._walk(remote.file_id, path + SEPARATOR, recursive)


def split_path(spec: str) -> tuple[str, ...]:
    """The levels of a folder path as the user wrote it (``/``, ``""`` = the root), NFC as the
    service's names are."""
    text = unicodedata.normalize("NFC", spec)
    return tuple(part for part in text.split(SEPARATOR) if part)
