"""``imgsync copy``: copy images from the user's 123pan cloud drive onto the image bed.

The service copies in background tasks, with two limits from the reference: at most 100 IDs per
task, and at most 3 tasks queued per account at once. So the IDs are cut into tasks of 100, three
are started, and each further one only once one of those has ended (its progress is polled at
least a second apart). Should the service still refuse a task while some of ours are queued (tasks
started elsewhere fill the queue too), the job waits for one of ours to end and tries again.

With ``wait`` the job follows every task to its end and then reads each one's failed files
through the failure endpoint, every page. The reference lists there only the files of an
accepted format and size that could not be copied; files of another format or over 100 MB are
passed over without an entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from imgsync.client.api import MAX_LIST_LIMIT, CopyFailure, CopyProgress
from imgsync.engine.folders import CODE_GENERIC
from imgsync.errors import ApiError, ImgsyncError, NetworkError
from imgsync.jobs.imagebed import ImageBed, Located, PollSpacing, batched, is_fatal

__all__ = [
    "COPY_WAIT_LIMIT_S",
    "MAX_IDS_PER_TASK",
    "MAX_QUEUED_TASKS",
    "CopyReport",
    "CopyTaskReport",
    "copy_from_drive",
]

log = logging.getLogger(__name__)

# source/copy: fileIDs "最多100个"; "可创建的任务数:3" (reference, api-facts "Copy from the cloud
# drive").
MAX_IDS_PER_TASK = 100
MAX_QUEUED_TASKS = 3

# How long the job follows its tasks before it reports them as still running. A task copies at
# most 100 images, one task after another; an hour is far beyond what the service needs, and
# keeps a service that never finishes from holding a script forever.
COPY_WAIT_LIMIT_S = 3600.0

# A task's state as the report words it: before it started, as the service answers it, or when
# the job stopped following it.
NOT_STARTED = "not started"
QUEUED = "queued"
STILL_RUNNING = "still running"
UNKNOWN = "unknown"
PROGRESS_WORDS = {
    CopyProgress.RUNNING: "running",
    CopyProgress.DONE: "done",
    CopyProgress.FAILED: "failed",
    CopyProgress.WAITING: "waiting",
}
ENDED = frozenset({CopyProgress.DONE, CopyProgress.FAILED})


@dataclass
class CopyTaskReport:
    """One copy task: the IDs it was given, its state, and (after ``wait``) its failed files.

    ``error`` says why a task did not start, ended without copying, or was not followed to its
    end; ``unreachable`` marks that it was because the service could not be reached.
    """

    file_ids: list[str]
    task_id: str = ""
    state: str = NOT_STARTED
    fail_msg: str = ""
    failures: list[CopyFailure] = field(default_factory=list)
    failures_total: int = 0
    error: str | None = None
    unreachable: bool = False
    progress: int | None = None  # the service's status code while followed

    @property
    def ok(self) -> bool:
        """Whether the task started (and, followed, copied everything)."""
        return self.error is None and not self.failures_total and self.state != "failed"

    def mark_failed(self, error: str, exc: BaseException | None = None) -> None:
        """Record why the task is not a success, and whether the service was out of reach."""
        self.error = error
        self.unreachable = isinstance(exc, NetworkError) or getattr(exc, "retryable", False)


@dataclass(frozen=True)
class CopyReport:
    """What ``imgsync copy`` did: the target folder and every task."""

    folder: Located
    tasks: list[CopyTaskReport]
    waited: bool


def copy_from_drive(
    bed: ImageBed,
    drive_ids: Sequence[str],
    to: str,
    *,
    wait: bool = False,
    on_progress: Callable[[CopyTaskReport], None] | None = None,
    deadline_s: float = COPY_WAIT_LIMIT_S,
    fail_page_size: int = MAX_LIST_LIMIT,
) -> CopyReport:
    """Copy the cloud-drive files ``drive_ids`` into the image-bed folder ``to`` (path or ID).

    ``on_progress(task)`` hears of every task that starts or changes state. Without ``wait`` the
    job returns once every task has started (waiting only for room in the queue of 3).
    """
    folder = bed.folder(to)
    unique = list(dict.fromkeys(drive_ids))
    tasks = [CopyTaskReport(ids) for ids in batched(unique, MAX_IDS_PER_TASK)]
    run = _CopyRun(bed, folder, on_progress, bed.clock() + deadline_s)
    for task in tasks:
        run.start(task)
    if wait:
        while run.queued and run.stopped is None:
            run.poll()
        for task in run.queued:
            task.state = STILL_RUNNING
            task.mark_failed(f"not followed to its end: {run.stopped}", run.stopped_by)
        for task in tasks:
            if task.task_id and task.progress in ENDED:
                run.read_failures(task, fail_page_size)
    return CopyReport(folder, tasks, wait)


class _CopyRun:
    """The tasks of one ``copy`` that the service has not finished yet, and their polling."""

    def __init__(
        self,
        bed: ImageBed,
        folder: Located,
        on_progress: Callable[[CopyTaskReport], None] | None,
        deadline: float,
    ) -> None:
        self.bed = bed
        self.folder = folder
        self.on_progress = on_progress or (lambda task: None)
        self.deadline = deadline
        self.queued: list[CopyTaskReport] = []
        self.spacing = PollSpacing(bed.sleep, bed.clock)
        # Why no more tasks are started or followed (the service unreachable, the deadline).
        self.stopped: str | None = None
        self.stopped_by: BaseException | None = None

    def start(self, task: CopyTaskReport) -> None:
        """Start ``task`` once the queue has room; wait for one of ours to end when the service
        says the queue is full."""
        while True:
            while len(self.queued) >= MAX_QUEUED_TASKS and self.stopped is None:
                self.poll()
            if self.stopped is not None:
                task.mark_failed(f"not started: {self.stopped}", self.stopped_by)
                return
            try:
                started = self.bed.api.copy(task.file_ids, self.folder.file_id)
            except ImgsyncError as exc:
                if is_fatal(exc):
                    raise
                if isinstance(exc, ApiError) and exc.code == CODE_GENERIC and self.queued:
                    # Perhaps the queue is full of tasks started elsewhere: one of ours ending
                    # makes room.
                    log.info("copy refused while %d tasks are queued: %s", len(self.queued), exc)
                    self._wait_for_one_to_end()
                    continue
                task.mark_failed(f"not started: {exc}", exc)
                if isinstance(exc, NetworkError) or exc.retryable:
                    self.stopped, self.stopped_by = str(exc), exc
                self.on_progress(task)
                return
            task.task_id, task.state = started.task_id, QUEUED
            self.queued.append(task)
            self.on_progress(task)
            return

    def _wait_for_one_to_end(self) -> None:
        before = len(self.queued)
        while len(self.queued) == before and self.stopped is None:
            self.poll()

    def poll(self) -> None:
        """One round of progress questions, at least a second after the last."""
        if self.bed.clock() > self.deadline:
            self.stopped = "the tasks were still running when the time to wait ran out"
            return
        self.spacing.wait()
        for task in list(self.queued):
            try:
                progress = self.bed.api.copy_process(task.task_id)
            except ImgsyncError as exc:
                if is_fatal(exc):
                    raise
                self.queued.remove(task)
                task.state = UNKNOWN
                task.mark_failed(f"its progress could not be read: {exc}", exc)
                self.on_progress(task)
                continue
            changed = progress.status != task.progress
            task.progress = progress.status
            task.state = PROGRESS_WORDS.get(progress.status, f"status {progress.status}")
            task.fail_msg = progress.fail_msg
            if progress.status in ENDED:
                self.queued.remove(task)
            if changed:
                self.on_progress(task)

    def read_failures(self, task: CopyTaskReport, page_size: int) -> None:
        """Every page of the task's failed files."""
        page = 1
        try:
            while True:
                answer = self.bed.api.copy_fail(task.task_id, limit=page_size, page=page)
                task.failures_total = max(task.failures_total, answer.total)
                task.failures.extend(answer.items)
                if not answer.items or len(task.failures) >= answer.total:
                    break
                page += 1
        except ImgsyncError as exc:
            if is_fatal(exc):
                raise
            task.mark_failed(f"its failed files could not be read: {exc}", exc)
        if task.progress == CopyProgress.FAILED and task.error is None:
            task.error = f"the task failed: {task.fail_msg or 'no reason given'}"
            task.unreachable = False
