"""``imgsync rm`` and ``imgsync mv``: delete and move many files, in the service's batches.

The reference takes at most 100 IDs per ``delete`` or ``move`` request, so any number of IDs is
sent in batches of 100: more IDs than that is never an error. When the service refuses a batch for
something one of its IDs may have caused (an unknown ID, code 5066; a name already taken in the
target folder, code 1), the batch is split in halves and each half sent again, until the refusal is
pinned on the IDs that caused it: the other IDs are still done, and each failure is reported with
its own ID. A refusal that no ID can cause (a quota, the service down) fails the batch as it is.

``rm`` deletes files; a folder ID is refused unless ``recursive`` (deleting a folder deletes
everything in it). IDs the local index knows are files; any other is looked at with ``detail``
first, which also names an unknown ID before anything is sent. What was deleted leaves the index
too, with every file below a deleted folder, so no later upload hands out a link that answers 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from imgsync.engine.folders import CODE_GENERIC
from imgsync.errors import ApiError, ImgsyncError, NetworkError, NotFound
from imgsync.jobs.imagebed import (
    ImageBed,
    ItemOutcome,
    Located,
    batched,
    failure,
    is_fatal,
)

__all__ = ["MAX_IDS_PER_REQUEST", "move", "remove", "send_in_batches"]

log = logging.getLogger(__name__)

# delete and move: fileIDs "最多100个" (reference, api-facts "Tree and object shape").
MAX_IDS_PER_REQUEST = 100

DELETED = "deleted"
MOVED = "moved"


def send_in_batches(
    ids: Sequence[str], send: Callable[[list[str]], None]
) -> dict[str, Exception | None]:
    """Send ``ids`` through ``send`` in batches of :data:`MAX_IDS_PER_REQUEST`; return each ID's
    error, or None when its batch was accepted.

    A batch refused for a reason one of its IDs may have caused is split in halves until the
    refusal is pinned on single IDs. Once the service cannot be reached (after the transport's
    own retries), the IDs not yet sent fail with that error instead of each waiting as long.
    Authentication and configuration failures raise.
    """
    errors: dict[str, Exception | None] = {}
    outage: Exception | None = None

    def run(batch: list[str]) -> None:
        nonlocal outage
        if outage is not None:
            errors.update(dict.fromkeys(batch, outage))
            return
        try:
            send(batch)
        except ImgsyncError as exc:
            if is_fatal(exc):
                raise
            if isinstance(exc, NetworkError) or exc.retryable:
                outage = exc
                errors.update(dict.fromkeys(batch, exc))
                return
            if len(batch) > 1 and _may_be_one_ids_fault(exc):
                log.info("a batch of %d was refused (%s); splitting it", len(batch), exc)
                half = len(batch) // 2
                run(batch[:half])
                run(batch[half:])
                return
            errors.update(dict.fromkeys(batch, exc))
            return
        errors.update(dict.fromkeys(batch))

    for batch in batched(ids, MAX_IDS_PER_REQUEST):
        run(batch)
    return errors


def _may_be_one_ids_fault(exc: ImgsyncError) -> bool:
    """An unknown ID (5066), or the generic refusal (code 1: a bad parameter, a name taken)."""
    return isinstance(exc, NotFound) or (isinstance(exc, ApiError) and exc.code == CODE_GENERIC)


def _outcome(file_id: str, error: Exception | None, done: str, name: str = "") -> ItemOutcome:
    if error is None:
        return ItemOutcome(file_id, done, file_id=file_id, name=name)
    return failure(file_id, error, file_id=file_id, name=name)


def _unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def remove(bed: ImageBed, ids: Sequence[str], *, recursive: bool = False) -> list[ItemOutcome]:
    """Delete the files (and with ``recursive`` the folders) ``ids`` name; one outcome per
    distinct ID, in order. Whatever was deleted (or turned out not to exist) leaves the index."""
    ids = _unique(ids)
    outcomes: dict[str, ItemOutcome] = {}
    names: dict[str, str] = {}
    inside: dict[str, list[str]] = {}  # a folder to delete -> the files below it
    to_delete: list[str] = []
    for file_id in ids:
        known = bed.cache.get_object_by_file_id(file_id)
        if known is not None:
            names[file_id] = known.filename
            to_delete.append(file_id)
            continue
        try:
            remote = bed.api.detail(file_id)
            names[file_id] = remote.filename
            if remote.is_folder:
                if not recursive:
                    outcomes[file_id] = ItemOutcome(
                        file_id,
                        ItemOutcome.FAILED,
                        f"{remote.filename!r} is a folder; deleting it deletes everything in it:"
                        " add --recursive to do that",
                        file_id=file_id,
                        name=remote.filename,
                    )
                    continue
                folder = Located(file_id, None, remote)
                inside[file_id] = [
                    e.remote.file_id
                    for e in bed.walk(folder, recursive=True)
                    if not e.remote.is_folder
                ]
        except Exception as exc:  # noqa: BLE001 - each ID's failure is its own; fatal ones raise
            outcomes[file_id] = _outcome(file_id, exc, DELETED)
            if isinstance(exc, NotFound):
                bed.cache.forget_file_id(file_id)
            continue
        to_delete.append(file_id)

    errors = send_in_batches(to_delete, bed.api.delete)
    for file_id, error in errors.items():
        outcomes[file_id] = _outcome(file_id, error, DELETED, names.get(file_id, ""))
        if error is None or isinstance(error, NotFound):
            bed.cache.forget_file_id(file_id)
            for below in inside.get(file_id, ()):
                bed.cache.forget_file_id(below)
    if any(errors.get(folder_id, True) is None for folder_id in inside):
        # The folder IDs the uploader remembered may be (below) a deleted folder.
        bed.cache.forget_folders()
    return [outcomes[file_id] for file_id in ids]


def move(bed: ImageBed, ids: Sequence[str], to: str) -> list[ItemOutcome]:
    """Move the files and folders ``ids`` name into the folder ``to`` (a path or an ID); one
    outcome per distinct ID, in order.

    The target must exist (:class:`~imgsync.jobs.imagebed.FolderNotFound` otherwise: a typo must
    not make a folder). Links do not change when a file moves; a folder that moved takes the
    paths below it along, so the index's folder IDs are forgotten then.
    """
    target = bed.folder(to)
    ids = _unique(ids)
    errors = send_in_batches(ids, lambda batch: bed.api.move(batch, target.file_id))
    moved = [file_id for file_id, error in errors.items() if error is None]
    if any(bed.cache.get_object_by_file_id(file_id) is None for file_id in moved):
        # Not a file the index knows: it may be a folder, whose path is now another.
        bed.cache.forget_folders()
    return [_outcome(file_id, errors[file_id], MOVED) for file_id in ids]
