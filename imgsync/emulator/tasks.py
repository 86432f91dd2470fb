"""Background work: offline migration tasks that really fetch a URL, and cloud-drive copy tasks.

Offline tasks each run in a thread of their own, as the service downloads many URLs at once. Copy
tasks run one after another in a single worker, as the reference says ("当前一个任务处理完后将会继续
处理下个任务"). Both wait while the ``hold_tasks`` setting is on, so tests can observe the waiting
states without racing the worker, and both give up quietly when the emulator is reset or stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .media import (
    FORBIDDEN_FILENAME_CHARS,
    MAX_FILE_SIZE,
    SNIFF_BYTES,
    has_image_extension,
    sniff_image,
)
from .model import (
    COPY_DONE,
    COPY_FAILED,
    COPY_RUNNING,
    COPY_UNFINISHED,
    OFFLINE_DONE,
    OFFLINE_FAILED,
    OFFLINE_RETRYING,
    OFFLINE_RUNNING,
    CopyTask,
    Node,
    OfflineTask,
)
from .state import State

logger = logging.getLogger(__name__)

# Reference: without businessDirID, offline downloads land in a folder of this name.
DEFAULT_OFFLINE_FOLDER = "来自:离线下载"
# Pause between a failed fetch and its retry (while the task shows status 3, 重试中).
OFFLINE_RETRY_DELAY_S = 0.2
# The callback is best effort: a slow receiver must not hold the worker for long.
CALLBACK_TIMEOUT_S = 5.0
FETCH_CHUNK = 256 * 1024
USER_AGENT = "imgsync-emulator-offline/1"
# How long stop() waits for the copy worker to notice.
WORKER_JOIN_S = 5.0
# GUESS: failMsg of a copy task where every file failed; the real text is unknown.
COPY_ALL_FAILED_MSG = "所有文件复制失败"


class TaskFailure(Exception):
    """The task cannot succeed; the message becomes its failReason."""


class RetryableFailure(TaskFailure):
    """A network-level failure worth another attempt."""


class TaskRunner:
    """Starts and stops the background workers of one emulator's state."""

    def __init__(self, state: State) -> None:
        self._state = state
        # One condition on the state lock: workers sleep on it, handlers and config changes wake it.
        self.condition = threading.Condition(state.lock)
        self._stopping = False
        self._copy_thread: threading.Thread | None = None
        # Bumped by reset and stop: a worker whose generation is stale drops its work.
        self.generation = 0
        # Direct fetches: the service does not go through the user's proxy, neither do we.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self.condition:
            self._stopping = False
            unfinished = [
                t.task_id
                for t in self._state.offline_tasks.values()
                if t.status in (OFFLINE_RUNNING, OFFLINE_RETRYING)
            ]
        for task_id in unfinished:
            self.start_offline(task_id)  # resumed after a restart
        self._copy_thread = threading.Thread(
            target=self._copy_loop, name="emulator-copy", daemon=True
        )
        self._copy_thread.start()

    def stop(self) -> None:
        with self.condition:
            self._stopping = True
            self.generation += 1
            self.condition.notify_all()
        if self._copy_thread is not None:
            self._copy_thread.join(WORKER_JOIN_S)

    def forget_all(self) -> None:
        """Called on reset: running workers must not write into the new, empty state."""
        with self.condition:
            self.generation += 1
            self.condition.notify_all()

    def wake(self) -> None:
        with self.condition:
            self.condition.notify_all()

    def _wait_until_released(self, generation: int) -> bool:
        """Block while hold_tasks is on; False when the work should be dropped."""
        with self.condition:
            self.condition.wait_for(
                lambda: self.generation != generation or not self._state.settings.hold_tasks
            )
            return self.generation == generation

    # ------------------------------------------------------------------------ offline migration

    def start_offline(self, task_id: int) -> None:
        thread = threading.Thread(
            target=self._run_offline,
            args=(task_id, self.generation),
            name=f"emulator-offline-{task_id}",
            daemon=True,
        )
        thread.start()

    def _run_offline(self, task_id: int, generation: int) -> None:
        if not self._wait_until_released(generation):
            return
        with self.condition:
            task = self._state.offline_tasks.get(task_id)
            if task is None:
                return
            attempts = 1 + self._state.settings.offline_retries
            timeout = self._state.settings.offline_timeout_s
        try:
            data = self._fetch_with_retries(task, attempts, timeout, generation)
            with self.condition:
                if self.generation != generation:
                    return
                task.file_id = self._store_offline(task, data)
                task.status, task.process = OFFLINE_DONE, 100
                self._state.mark_dirty()
                self._state.commit()
        except TaskFailure as failure:
            with self.condition:
                if self.generation != generation:
                    return
                task.status, task.fail_reason = OFFLINE_FAILED, str(failure)
                self._state.mark_dirty()
                self._state.commit()
            logger.info("offline task %s failed: %s", task_id, failure)
        if task.callback_url:
            self._post_callback(task)

    def _fetch_with_retries(
        self, task: OfflineTask, attempts: int, timeout: float, generation: int
    ) -> bytes:
        for attempt in range(1, attempts + 1):
            try:
                return self._fetch(task, timeout)
            except RetryableFailure:
                if attempt == attempts:
                    raise
                with self.condition:
                    if self.generation != generation:
                        raise
                    task.status = OFFLINE_RETRYING
                    self._state.mark_dirty()
                time.sleep(OFFLINE_RETRY_DELAY_S)
                with self.condition:
                    task.status = OFFLINE_RUNNING
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch(self, task: OfflineTask, timeout: float) -> bytes:
        request = urllib.request.Request(task.url, headers={"User-Agent": USER_AGENT})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                total = int(declared) if declared and declared.isdigit() else 0
                if total > MAX_FILE_SIZE:
                    raise TaskFailure(f"文件超过大小限制 ({total} bytes)")
                body = bytearray()
                while chunk := response.read(FETCH_CHUNK):
                    body += chunk
                    if len(body) > MAX_FILE_SIZE:
                        raise TaskFailure("文件超过大小限制 (100 MB)")
                    if total:
                        with self.condition:
                            task.process = min(99, len(body) * 100 // total)
                return bytes(body)
        except urllib.error.HTTPError as exc:
            # GUESS: server errors and network failures are retried (status 3), 4xx are final.
            failure = RetryableFailure if exc.code >= 500 else TaskFailure
            raise failure(f"下载失败: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RetryableFailure(f"下载失败: {getattr(exc, 'reason', exc)}") from exc

    def _store_offline(self, task: OfflineTask, data: bytes) -> str:
        """Put fetched bytes on the bed (state lock held); return the object's fileID."""
        state = self._state
        kind = sniff_image(data[:SNIFF_BYTES])
        if kind is None:
            raise TaskFailure("不是支持的图片格式 (png, gif, jpeg, tiff, webp, svg, bmp)")
        if task.dir_id:
            folder = state.folder(task.dir_id)
            if folder is None:
                raise TaskFailure("目标目录不存在")
        else:
            folder = state.child_named(state.root_id, DEFAULT_OFFLINE_FOLDER)
            if folder is None or not folder.is_folder:
                folder = state.add_folder(state.root_id, DEFAULT_OFFLINE_FOLDER)
        name = task.file_name or _name_from_url(task.url, kind, task.task_id)
        return self._place(folder, name, data).file_id

    def _place(self, folder: Node, name: str, data: bytes) -> Node:
        """Store bytes as ``name`` in ``folder``; same etag+size there is overwritten (kept)."""
        state = self._state
        etag = hashlib.md5(data).hexdigest()
        same = state.file_with_content(etag, len(data), folder.file_id)
        if same is not None:
            # GUESS: "覆盖原图片": the existing object stays (id and name), only updateAt moves.
            same.update_at = state.clock()
            state.mark_dirty()
            return same
        if state.child_named(folder.file_id, name) is not None:
            raise TaskFailure(f"目标目录下已有同名文件: {name}")  # GUESS
        state.blobs.put_blob(data)
        return state.add_file(folder.file_id, name, etag, len(data))

    def _post_callback(self, task: OfflineTask) -> None:
        # Reference: {"url", "status": 0 success / 1 failure, "failReason", "fileID"}.
        # GUESS: fileID is our string id (the reference example shows a number).
        body = {
            "url": task.url,
            "status": 0 if task.status == OFFLINE_DONE else 1,
            "failReason": task.fail_reason,
            "fileID": task.file_id,
        }
        request = urllib.request.Request(
            task.callback_url,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=CALLBACK_TIMEOUT_S) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            logger.info("offline callback to %s failed: %s", task.callback_url, exc)

    # -------------------------------------------------------------------------------- copy tasks

    def _next_copy_task(self) -> CopyTask | None:
        """The running task (after a restart) or else the oldest waiting one."""
        unfinished = [t for t in self._state.copy_tasks.values() if t.status in COPY_UNFINISHED]
        unfinished.sort(key=lambda t: (t.status != COPY_RUNNING, t.created_at))
        return unfinished[0] if unfinished else None

    def _copy_loop(self) -> None:
        while True:
            with self.condition:
                self.condition.wait_for(
                    lambda: (
                        self._stopping
                        or (
                            not self._state.settings.hold_tasks
                            and self._next_copy_task() is not None
                        )
                    )
                )
                if self._stopping:
                    return
                task = self._next_copy_task()
                assert task is not None
                task.status = COPY_RUNNING
                self._state.mark_dirty()
                generation = self.generation
            try:
                self._run_copy(task, generation)
            except Exception:  # a bug must not kill the only copy worker
                logger.exception("copy task %s crashed", task.task_id)
                with self.condition:
                    task.status, task.fail_msg = COPY_FAILED, "internal emulator error"

    def _run_copy(self, task: CopyTask, generation: int) -> None:
        failures: list[dict[str, Any]] = []
        for file_id in task.file_ids:
            with self.condition:
                if self.generation != generation:
                    return
                reason, listed = self._copy_one(task, file_id)
                if reason is not None:
                    logger.info("copy task %s: %s: %s", task.task_id, file_id, reason)
                if reason is not None and listed:
                    drive_file = self._state.drive.get(file_id)
                    failures.append(
                        {
                            # Reference: list.fileId is a number; drive ids are numeric strings.
                            "fileId": int(file_id) if file_id.isdigit() else file_id,
                            "filename": drive_file.filename if drive_file else "",
                        }
                    )
        with self.condition:
            if self.generation != generation:
                return
            task.failures = failures
            # GUESS: status 3 (失败) only when every file failed; a partial copy is 2 (结束).
            all_failed = bool(task.file_ids) and len(failures) == len(task.file_ids)
            task.status = COPY_FAILED if all_failed else COPY_DONE
            task.fail_msg = COPY_ALL_FAILED_MSG if all_failed else ""
            self._state.mark_dirty()
            self._state.commit()

    def _copy_one(self, task: CopyTask, file_id: str) -> tuple[str | None, bool]:
        """Copy one drive file (state lock held): (why it was not copied, or None; listed?).

        The reference says the fail list records the failures of images "符合对应格式、大小"
        (of an accepted format and size): a file of another format, or over 100 MB, is passed
        over without a fail-list entry. GUESS: an unknown id is listed (nothing says otherwise),
        and so is a file named like an image whose bytes are not one.
        """
        state = self._state
        drive_file = state.drive.get(file_id)
        if drive_file is None:
            return "no such cloud-drive file", True
        if not has_image_extension(drive_file.filename):
            return "not an image by its name (not listed)", False
        if drive_file.size > MAX_FILE_SIZE:
            return "larger than 100 MB (not listed)", False
        with state.blobs.open_blob(drive_file.etag) as source:
            data = source.read()
        if sniff_image(data[:SNIFF_BYTES]) is None:
            return "not an image by its content", True
        folder = state.folder(task.to_parent_id)
        if folder is None:
            return "target folder no longer exists", True
        try:
            self._place(folder, drive_file.filename, data)
        except TaskFailure as failure:
            return str(failure), True
        return None, False


def _name_from_url(url: str, kind: str, task_id: int) -> str:
    """GUESS: without fileName, the object is named after the URL's last path segment."""
    name = urllib.parse.unquote(posixpath.basename(urllib.parse.urlsplit(url).path))
    name = "".join("_" if c in FORBIDDEN_FILENAME_CHARS else c for c in name).strip()
    if not name:
        name = str(task_id)
    if not has_image_extension(name):
        name = f"{name}.{kind}"
    return name
