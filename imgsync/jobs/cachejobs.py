"""``imgsync cache stats | verify | rebuild | clear``: inspect and repair the local index.

The index (:mod:`imgsync.store.cache`) answers "is this image on the image bed already, and at what
link?" without a request. It is only worth having while it is true:

- **verify** asks ``detail`` for every object the index holds for this account and drops the ones
  the service no longer has (deleted in the console, code 5066) or whose content review rejected
  them (their links do not serve); links and statuses that changed are updated, and every object
  kept counts as confirmed now (``cache.verify_after`` starts again). A rejected image stays in
  the index marked rejected: never handed out again, and the next sync reports the notes that
  link to it. Given notes, verify names the notes that link to each dropped image.
- **rebuild** lists the whole image bed and records every file by content (md5 and size), so a
  new machine, or a fresh data folder, reuses every image already uploaded instead of uploading
  it again; objects the listing no longer shows are forgotten.
- **clear** empties the index (every account's), or removes the file when it is damaged beyond
  opening: nothing on the image bed is touched, only what this machine remembers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from imgsync.errors import ImgsyncError, NetworkError, NotFound
from imgsync.jobs.imagebed import ROOT_ID, ImageBed, Located, is_fatal, object_from_remote
from imgsync.jobs.notelinks import read_note_links
from imgsync.store.cache import Cache, CacheCorrupt, cache_path, remove_cache_files

if TYPE_CHECKING:
    from imgsync.client.api import RemoteFile
    from imgsync.config import Settings
    from imgsync.store.cache import RemoteObject

__all__ = [
    "CacheStats",
    "ClearReport",
    "Dropped",
    "RebuildReport",
    "VerifyReport",
    "cache_stats",
    "clear_cache",
    "rebuild_cache",
    "verify_cache",
]

log = logging.getLogger(__name__)

GONE = "gone"
REJECTED = "rejected"


# -- stats ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheStats:
    """Rows per table (this account's, for the tables that belong to an account), the number of
    accounts with objects, and the bytes on disk; ``exists`` is False when there is no file yet."""

    path: Path
    exists: bool
    counts: dict[str, int]


def cache_stats(settings: Settings) -> CacheStats:
    """What the index of ``settings`` holds; no file is created to answer."""
    path = cache_path(settings.data_dir)
    if not path.exists():
        from imgsync.store.schema import TABLES

        return CacheStats(path, False, {**dict.fromkeys(TABLES, 0), "namespaces": 0, "bytes": 0})
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        return CacheStats(path, True, cache.stats())


# -- clear ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClearReport:
    """``cleared`` rows of a usable file, or ``removed`` files of a damaged one."""

    path: Path
    cleared: bool
    removed: list[Path]


def clear_cache(settings: Settings) -> ClearReport:
    """Empty the index of every account; a file sqlite cannot open any more (damaged, or from a
    newer imgsync) is removed instead, which is the way out its error names."""
    path = cache_path(settings.data_dir)
    if not path.exists():
        return ClearReport(path, False, [])
    try:
        with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
            cache.clear()
    except CacheCorrupt as exc:
        log.info("the cache cannot be opened (%s); removing it", exc)
        return ClearReport(path, False, remove_cache_files(path))
    return ClearReport(path, True, [])


# -- verify ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dropped:
    """An object verify dropped from what the index hands out, and why (``gone`` or
    ``rejected``); ``linked_from`` the notes given that link to it."""

    obj: RemoteObject
    reason: str
    status: int | None = None
    linked_from: tuple[Path, ...] = ()


@dataclass
class VerifyReport:
    """What verify found: how many objects it checked and kept, which it dropped, which it could
    not check (each with the reason), and how many it updated (a link or status that changed);
    with notes given, how many were read and which could not be."""

    checked: int = 0
    kept: int = 0
    updated: int = 0
    dropped: list[Dropped] = field(default_factory=list)
    unchecked: list[tuple[RemoteObject, str]] = field(default_factory=list)
    unreachable: bool = False
    notes: int = 0
    note_problems: list[tuple[Path, str]] = field(default_factory=list)


def verify_cache(
    bed: ImageBed,
    on_object: Callable[[int], None] | None = None,
    *,
    notes: Sequence[Path] = (),
) -> VerifyReport:
    """Check every object of this account's index with ``detail``; drop the missing and the
    rejected, update what changed. ``on_object(n)`` hears the count checked so far. With
    ``notes``, each dropped image says which notes below them link to it.

    Once the service cannot be reached (after the transport's retries), the objects not yet
    checked are reported unchecked instead of each waiting as long.
    """
    report = VerifyReport()
    cache = bed.cache
    outage: str | None = None
    # Read first: the objects are changed while they are checked.
    for obj in list(cache.iter_objects()):
        if outage is not None:
            report.unchecked.append((obj, f"not checked: {outage}"))
            continue
        try:
            remote = bed.api.detail(obj.file_id)
        except NotFound:
            cache.forget_file_id(obj.file_id)
            report.dropped.append(Dropped(obj, GONE))
        except ImgsyncError as exc:
            if is_fatal(exc):
                raise
            if isinstance(exc, NetworkError) or exc.retryable:
                outage, report.unreachable = str(exc), True
            report.unchecked.append((obj, str(exc)))
            continue
        else:
            _check(cache, report, obj, remote)
        report.checked += 1
        if on_object is not None:
            on_object(report.checked)
    if notes and report.dropped:
        _name_linking_notes(report, notes)
    return report


def _check(cache: Cache, report: VerifyReport, obj: RemoteObject, remote: RemoteFile) -> None:
    fresh = object_from_remote(remote)
    same = fresh is not None and (fresh.md5, fresh.size) == (obj.md5, obj.size)
    if remote.rejected:
        # Kept as rejected (never handed out again, and the next sync reports its notes); an
        # entry that no longer describes the file is forgotten.
        if fresh is not None and same:
            cache.put_rejected(fresh)
        else:
            cache.forget_file_id(obj.file_id)
        report.dropped.append(Dropped(obj, REJECTED, remote.status))
        return
    if fresh is None or not same:
        # Not the content the index filed it under (or no longer a file with a link).
        cache.forget_file_id(obj.file_id)
        report.dropped.append(Dropped(obj, GONE, remote.status))
        return
    report.kept += 1
    report.updated += fresh != obj
    cache.put_object(fresh)  # confirmed now, changed or not


def _name_linking_notes(report: VerifyReport, notes: Sequence[Path]) -> None:
    links = read_note_links(notes)
    report.notes, report.note_problems = links.notes, links.problems
    report.dropped = [
        replace(
            dropped,
            linked_from=tuple(
                links.notes_linking(dropped.obj.download_url, dropped.obj.user_self_url)
            ),
        )
        for dropped in report.dropped
    ]


# -- rebuild --------------------------------------------------------------------------------------


@dataclass
class RebuildReport:
    """What rebuild found on the image bed and did to the index."""

    folders: int = 0
    files: int = 0
    recorded: int = 0
    rejected: int = 0
    unusable: int = 0
    forgotten: int = 0


def rebuild_cache(
    bed: ImageBed, on_folder: Callable[[int, int], None] | None = None
) -> RebuildReport:
    """List every folder of the image bed and record each file by its content; forget the objects
    of this account the listing did not show. ``on_folder(folders, files)`` hears the counts so
    far. Nothing is written unless the whole listing succeeded (a failure raises).

    Where several files hold the same content, the one the index already hands out is kept;
    rejected files and files without a link or an md5 etag are not recorded.
    """
    report = RebuildReport()
    cache = bed.cache
    current = {(o.md5, o.size): o for o in cache.iter_objects()}
    chosen: dict[tuple[str, int], RemoteObject] = {}
    for remote in _every_file(bed, report, on_folder):
        report.files += 1
        if remote.rejected:
            report.rejected += 1
            continue
        obj = object_from_remote(remote)
        if obj is None:
            report.unusable += 1
            continue
        key = (obj.md5, obj.size)
        held = current.get(key)
        if key not in chosen or (held is not None and held.file_id == obj.file_id):
            chosen[key] = obj
    seen = {obj.file_id for obj in chosen.values()}
    report.recorded = cache.put_objects(chosen.values())
    for obj in current.values():
        if obj.file_id not in seen and (obj.md5, obj.size) not in chosen:
            cache.forget_file_id(obj.file_id)
            report.forgotten += 1
    return report


def _every_file(
    bed: ImageBed, report: RebuildReport, on_folder: Callable[[int, int], None] | None
) -> Iterator[RemoteFile]:
    """Every file of the image bed, folder by folder (each folder's pages in full)."""
    for entry in bed.walk(Located(ROOT_ID, "/"), recursive=True):
        if entry.remote.is_folder:
            report.folders += 1
            if on_folder is not None:
                on_folder(report.folders, report.files)
            continue
        yield entry.remote
