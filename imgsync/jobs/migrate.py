"""``imgsync migrate``: have the service fetch images by URL (offline migration) onto the image bed.

An offline task needs a target folder (the service refuses the root): by default
``upload.remote_folder``, created on demand as uploads create theirs. The task's progress names no
file, so each URL is given the name the upload engine gives migrations
(:func:`imgsync.engine.remote.migration_name`: a hash of the URL plus its image extension), and the
result is found by listing the folder and matching that name. The same name makes a second run
find what the first migrated instead of starting another task, and lets ``sync`` and ``upload``
reuse it: each migrated URL is remembered in the local index.

With ``wait`` the job polls every task (at least a second apart) until it ends or
``upload.poll_deadline`` passes, then reports each URL's link or why it failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from imgsync.client.api import OfflineProgress
from imgsync.engine.remote import OFFLINE_EXTENSIONS, migration_name, url_extension
from imgsync.errors import ImgsyncError, ItemError, UsageError
from imgsync.jobs.imagebed import (
    ROOT_ID,
    SEPARATOR,
    ImageBed,
    ItemOutcome,
    Located,
    PollSpacing,
    failure,
    is_fatal,
)
from imgsync.naming import render_folder

if TYPE_CHECKING:
    from imgsync.client.api import RemoteFile

__all__ = ["MigrateReport", "migrate"]

log = logging.getLogger(__name__)

# The offline API fetches "仅支持http/https" URLs.
FETCHABLE_SCHEMES = ("http", "https")

STARTED = "started"
MIGRATED = "migrated"
# Already in the folder under the URL's migration name: an earlier run (or task) migrated it.
EXISTS = "exists"

_EXTENSIONS_TEXT = ", ".join(sorted({ext.lstrip(".") for ext in OFFLINE_EXTENSIONS}))


@dataclass
class MigrateReport:
    """What ``imgsync migrate`` did: the target folder and one outcome per distinct URL."""

    folder: Located
    outcomes: list[ItemOutcome]
    waited: bool


@dataclass
class _Task:
    url: str
    name: str
    task_id: int
    status: int = OfflineProgress.RUNNING
    percent: int = 0
    error: ItemOutcome | None = field(default=None)


def migrate(
    bed: ImageBed,
    urls: Sequence[str],
    *,
    to: str | None = None,
    wait: bool = False,
    on_progress: Callable[[str, str, int], None] | None = None,
) -> MigrateReport:
    """Start an offline migration of every URL into ``to`` (a folder path or ID; by default
    ``upload.remote_folder``); with ``wait``, follow them and find each result.

    ``on_progress(url, state, percent)`` hears of each task as it is started and polled.
    """
    folder = _target(bed, to)
    tell = on_progress or (lambda url, state, percent: None)
    outcomes: dict[str, ItemOutcome] = {}
    names: dict[str, str] = {}
    for url in dict.fromkeys(urls):
        try:
            names[url] = migration_name(url, _offline_extension(url))
        except ItemError as exc:
            outcomes[url] = failure(url, exc)
    present = _files_by_name(bed, folder) if names else {}
    tasks: list[_Task] = []
    for url, name in names.items():
        if name in present:
            outcomes[url] = _found(bed, url, present[name], EXISTS)
            continue
        try:
            started = bed.api.offline_download(url, file_name=name, business_dir_id=folder.file_id)
        except Exception as exc:  # noqa: BLE001 - each URL's failure is its own; fatal ones raise
            outcomes[url] = failure(url, exc, name=name)
            continue
        task_id = str(started.task_id)
        tell(url, STARTED, 0)
        outcomes[url] = ItemOutcome(url, STARTED, name=name, task_id=task_id)
        tasks.append(_Task(url, name, started.task_id))
    if wait and tasks:
        _follow(bed, tasks, tell)
        present = _files_by_name(bed, folder)
        for task in tasks:
            outcomes[task.url] = task.error or _result(bed, task, present, folder)
    return MigrateReport(folder, [outcomes[url] for url in dict.fromkeys(urls)], wait)


def _target(bed: ImageBed, to: str | None) -> Located:
    """The folder the tasks download into; never the root (the service refuses it)."""
    if to is None:
        template = bed.settings.upload.remote_folder
        path = SEPARATOR.join(render_folder(template, now=bed.now()))
        if not path:
            raise UsageError(
                "upload.remote_folder is the root, where offline migration cannot put files;"
                " set it to a folder, or give --to FOLDER"
            )
        return Located(bed.folders.ensure(template), path)
    folder = bed.folder(to)
    if folder.file_id == ROOT_ID:
        raise UsageError("offline migration cannot put files in the root: give --to FOLDER")
    return folder


def _offline_extension(url: str) -> str:
    """The URL's image extension, or an ItemError saying why the service would refuse it."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in FETCHABLE_SCHEMES or not urlsplit(url).netloc:
        raise ItemError("not an http(s) URL: offline migration fetches only http and https")
    ext = url_extension(url)
    if ext is None:
        raise ItemError(
            f"the URL's path does not end in an image extension ({_EXTENSIONS_TEXT}), which"
            " offline migration needs; `imgsync upload URL` fetches it from this machine instead"
        )
    return ext


def _files_by_name(bed: ImageBed, folder: Located) -> dict[str, RemoteFile]:
    return {f.filename: f for f in bed.api.iter_files(folder.file_id) if not f.is_folder}


def _follow(bed: ImageBed, tasks: list[_Task], tell: Callable[[str, str, int], None]) -> None:
    """Poll every task until each has ended or ``upload.poll_deadline`` has passed."""
    deadline = bed.clock() + bed.settings.upload.poll_deadline
    spacing = PollSpacing(bed.sleep, bed.clock)
    running = list(tasks)
    while running:
        if bed.clock() > deadline:
            for task in running:
                task.error = ItemOutcome(
                    task.url,
                    ItemOutcome.FAILED,
                    f"offline task {task.task_id} had not finished after"
                    f" {bed.settings.upload.poll_deadline:g} s; run the same command again"
                    " later to pick up its result",
                    name=task.name,
                    task_id=str(task.task_id),
                )
            return
        spacing.wait()
        for task in list(running):
            try:
                progress = bed.api.offline_process(task.task_id)
            except ImgsyncError as exc:
                if is_fatal(exc):
                    raise
                task.error = failure(task.url, exc, name=task.name, task_id=str(task.task_id))
                running.remove(task)
                continue
            task.status, task.percent = progress.status, progress.process
            if progress.status in (OfflineProgress.DONE, OfflineProgress.FAILED):
                running.remove(task)
            state = _STATE_WORDS.get(progress.status, f"status {progress.status}")
            tell(task.url, state, progress.process)


_STATE_WORDS = {
    OfflineProgress.RUNNING: "running",
    OfflineProgress.FAILED: "failed",
    OfflineProgress.DONE: "done",
    OfflineProgress.RETRYING: "retrying",
}


def _result(
    bed: ImageBed, task: _Task, present: dict[str, RemoteFile], folder: Located
) -> ItemOutcome:
    """The outcome of an ended task: the migrated file found by its name, or why not."""
    known = {"name": task.name, "task_id": str(task.task_id)}
    if task.status == OfflineProgress.FAILED:
        return failure(
            task.url,
            ItemError(
                f"the service could not fetch it (offline task {task.task_id} failed);"
                " `imgsync upload URL` fetches it from this machine instead"
            ),
            **known,
        )
    remote = present.get(task.name)
    if remote is None:
        return failure(
            task.url,
            ItemError(
                f"offline task {task.task_id} reported done, but no {task.name} appeared in"
                f" {folder.shown}"
            ),
            **known,
        )
    return _found(bed, task.url, remote, MIGRATED, task_id=str(task.task_id))


def _found(
    bed: ImageBed, url: str, remote: RemoteFile, status: str, task_id: str = ""
) -> ItemOutcome:
    """The outcome for a migrated file, remembered in the index unless review rejected it."""
    known = {"name": remote.filename, "file_id": remote.file_id, "task_id": task_id}
    try:
        bed.remember(remote, source_url=url)
    except Exception as exc:  # noqa: BLE001 - rejected or without a link: this URL's failure
        return failure(url, exc, **known)
    return ItemOutcome(url, status, url=bed.link(remote), **known)
