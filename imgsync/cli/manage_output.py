"""The manage commands' results as the command line shows them: the JSON document of each, and
the exit status a result maps to (docs/contract.md).

The manage jobs (:mod:`imgsync.jobs.browse`, ``bulk``, ``drivecopy``, ``migrate``, ``cachejobs``,
``orphans``) return plain results and print nothing; ``imgsync ls / info / mkdir / mv / rm / copy
/ migrate / orphans / cache`` turn them into text, JSON and an exit status here, as ``upload`` does
in :mod:`imgsync.cli.results` and ``sync`` in :mod:`imgsync.cli.sync`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from imgsync.cli.results import exit_status
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE

if TYPE_CHECKING:
    from imgsync.jobs.cachejobs import (
        CacheStats,
        ClearReport,
        Dropped,
        RebuildReport,
        VerifyReport,
    )
    from imgsync.jobs.drivecopy import CopyReport, CopyTaskReport
    from imgsync.jobs.imagebed import Entry, ItemOutcome, Located
    from imgsync.jobs.migrate import MigrateReport
    from imgsync.jobs.orphans import OrphanReport


# -- exit statuses --------------------------------------------------------------------------------

# Items of every command map to an exit status alike: the upload commands' rule.
outcomes_exit_status = exit_status


def copy_exit_status(report: CopyReport) -> int:
    """0 when every task started (and, waited for, copied everything); 4 when every problem was
    the service being unreachable; else 1."""
    return outcomes_exit_status(report.tasks)


def verify_exit_status(report: VerifyReport) -> int:
    """0 when every object was checked; 4 when the service could not be reached; else 1.
    Dropping is what verify is for, not a failure."""
    if not report.unchecked:
        return EXIT_OK
    return EXIT_UNREACHABLE if report.unreachable and not report.checked else EXIT_PARTIAL


# -- items and entries ----------------------------------------------------------------------------


def outcome_json(outcome: ItemOutcome) -> dict[str, Any]:
    """The object of one item (``mkdir``, ``mv``, ``rm``, ``migrate``, a failed ``info``)."""
    return {
        "input": outcome.input,
        "ok": outcome.ok,
        "status": outcome.status,
        "fileID": outcome.file_id or None,
        "name": outcome.name or None,
        "url": outcome.url or None,
        "taskID": outcome.task_id or None,
        "error": outcome.error,
    }


def entry_json(entry: Entry) -> dict[str, Any]:
    """The object ``imgsync ls --json`` and ``imgsync info --json`` print for a file or folder."""
    remote = entry.remote
    return {
        "fileID": remote.file_id,
        "name": remote.filename,
        "path": entry.path,
        "type": "folder" if remote.is_folder else "file",
        "size": remote.size,
        "etag": remote.etag or None,
        "status": remote.status,
        "rejected": (not remote.is_folder) and remote.rejected,
        "url": entry.link or None,
        "downloadURL": remote.download_url or None,
        "userSelfURL": remote.user_self_url or None,
        "parentFileID": remote.parent_file_id,
        "createAt": remote.create_at,
        "updateAt": remote.update_at,
    }


def _folder_json(folder: Located) -> dict[str, Any]:
    return {"path": folder.shown, "fileID": folder.file_id}


# -- tasks ----------------------------------------------------------------------------------------


def copy_task_json(task: CopyTaskReport) -> dict[str, Any]:
    """One copy task: its IDs, state and failed files."""
    return {
        "taskID": task.task_id or None,
        "fileIDs": task.file_ids,
        "status": task.state,
        "failMsg": task.fail_msg or None,
        "failed": [{"fileID": f.file_id, "filename": f.filename} for f in task.failures],
        "failedTotal": task.failures_total,
        "error": task.error,
    }


def copy_report_json(report: CopyReport) -> dict[str, Any]:
    """The document ``imgsync copy --json`` prints."""
    return {
        "folder": _folder_json(report.folder),
        "waited": report.waited,
        "tasks": [copy_task_json(task) for task in report.tasks],
    }


def migrate_report_json(report: MigrateReport) -> dict[str, Any]:
    """The document ``imgsync migrate --json`` prints."""
    return {
        "folder": _folder_json(report.folder),
        "waited": report.waited,
        "items": [outcome_json(outcome) for outcome in report.outcomes],
    }


# -- the local index ------------------------------------------------------------------------------


def cache_stats_json(stats: CacheStats) -> dict[str, Any]:
    """The document ``imgsync cache stats --json`` prints."""
    return {"path": str(stats.path), "exists": stats.exists, **stats.counts}


def clear_report_json(report: ClearReport) -> dict[str, Any]:
    """The document ``imgsync cache clear --json`` prints."""
    return {
        "path": str(report.path),
        "cleared": report.cleared,
        "removed": [str(p) for p in report.removed],
    }


def dropped_json(dropped: Dropped, *, with_notes: bool = False) -> dict[str, Any]:
    """One image ``cache verify`` dropped; ``with_notes`` (notes were given) adds the notes that
    link to it."""
    obj = dropped.obj
    document: dict[str, Any] = {
        "fileID": obj.file_id,
        "md5": obj.md5,
        "filename": obj.filename,
        "url": obj.download_url,
        "reason": dropped.reason,
        "status": dropped.status,
    }
    if with_notes:
        document["linkedFrom"] = [str(note) for note in dropped.linked_from]
    return document


def verify_report_json(report: VerifyReport, *, with_notes: bool = False) -> dict[str, Any]:
    """The document ``imgsync cache verify --json`` prints; given notes, also how many were read,
    those that could not be, and per dropped image the notes linking to it."""
    document: dict[str, Any] = {
        "checked": report.checked,
        "kept": report.kept,
        "updated": report.updated,
        "dropped": [dropped_json(d, with_notes=with_notes) for d in report.dropped],
        "unchecked": [
            {"fileID": obj.file_id, "md5": obj.md5, "error": error}
            for obj, error in report.unchecked
        ],
    }
    if with_notes:
        document["notes"] = report.notes
        document["problems"] = [
            {"path": str(path), "error": error} for path, error in report.note_problems
        ]
    return document


def rebuild_report_json(report: RebuildReport) -> dict[str, Any]:
    """The document ``imgsync cache rebuild --json`` prints."""
    return {
        "folders": report.folders,
        "files": report.files,
        "recorded": report.recorded,
        "rejected": report.rejected,
        "unusable": report.unusable,
        "forgotten": report.forgotten,
    }


# -- orphans --------------------------------------------------------------------------------------


def orphan_report_json(report: OrphanReport, deleted: Sequence[ItemOutcome] = ()) -> dict[str, Any]:
    """The document ``imgsync orphans --json`` prints, with what ``--delete`` deleted."""
    return {
        "folders": report.folders,
        "notes": report.notes,
        "images": report.images,
        "orphans": [entry_json(entry) for entry in report.orphans],
        "problems": [{"path": str(path), "error": error} for path, error in report.problems],
        "deleted": [outcome_json(outcome) for outcome in deleted],
    }
