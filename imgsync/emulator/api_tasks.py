"""Endpoints that start and query background tasks: offline migration and cloud-drive copy.

The work itself happens in :mod:`imgsync.emulator.tasks`; these handlers validate the request,
record the task and answer its id, or report a task's progress in the reference's shapes.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from .app import Call
from .media import filename_problem, has_image_extension
from .model import COPY_UNFINISHED, CopyTask, OfflineTask
from .protocol import MAX_PAGE_SIZE, bad_request
from .state import ID_BODY_CHARS, random_text

# Reference, source/copy: "可创建的任务数:3".
MAX_UNFINISHED_COPY_TASKS = 3
# Reference: offline tasks are "仅支持http/https".
FETCHABLE_SCHEMES = ("http", "https")
# Reference, copy: "复制来源(1=云盘)", typed string but sent as a number in the example.
CLOUD_DRIVE_SOURCE = ("1", 1)


def _require_http_url(name: str, url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in FETCHABLE_SCHEMES or not parts.netloc:
        raise bad_request(f"{name}: only http and https URLs are supported, got {url!r}")


def offline_download(call: Call) -> dict[str, Any]:
    params, app = call.params, call.app
    state = app.state
    params.require_type_one()
    url = params.required_str("url", allow_empty=False)
    _require_http_url("url", url)
    file_name = params.optional_str("fileName") or ""
    if file_name:
        problem = filename_problem(file_name)
        if problem:
            raise bad_request(f"fileName: {problem}")
        if not has_image_extension(file_name):
            raise bad_request(
                "fileName: must end in png, gif, jpeg, tiff, webp, jpg, tif, svg or bmp"
            )
    dir_id = params.optional_str("businessDirID") or ""
    if dir_id:
        folder = state.folder(dir_id)
        if folder is None:
            raise bad_request(f"businessDirID: no folder {dir_id!r}")
        if folder.file_id == state.root_id:
            raise bad_request("businessDirID: 不支持下载到根目录")
    callback_url = params.optional_str("callBackUrl") or ""
    if callback_url:
        _require_http_url("callBackUrl", callback_url)
    task = OfflineTask(
        task_id=state.take_offline_task_id(),
        url=url,
        file_name=file_name,
        dir_id=dir_id,
        callback_url=callback_url,
        created_at=state.clock(),
    )
    state.offline_tasks[task.task_id] = task
    state.mark_dirty()
    app.tasks.start_offline(task.task_id)
    return {"taskID": task.task_id}


def offline_process(call: Call) -> dict[str, Any]:
    task_id = call.params.required_int("taskID")
    task = call.app.state.offline_tasks.get(task_id)
    if task is None:
        raise bad_request(f"taskID: no offline task {task_id}")  # GUESS: code for unknown task
    return {"status": task.status, "process": task.process}


def source_copy(call: Call) -> dict[str, Any]:
    params, app = call.params, call.app
    state = app.state
    params.require_type_one()
    file_ids = params.id_list("fileIDs")
    to_id = params.required_str("toParentFileID")
    if not params.has("sourceType"):
        raise bad_request("sourceType: required parameter missing")
    if params.raw("sourceType") not in CLOUD_DRIVE_SOURCE:
        raise bad_request(f"sourceType: must be 1 (cloud drive), got {params.raw('sourceType')!r}")
    folder = state.folder(to_id)
    if folder is None:
        raise bad_request(f"toParentFileID: no folder {to_id!r}")
    unfinished = sum(1 for t in state.copy_tasks.values() if t.status in COPY_UNFINISHED)
    if unfinished >= MAX_UNFINISHED_COPY_TASKS:
        # GUESS: the wording; the cap of 3 is documented.
        raise bad_request(f"复制任务数已达上限({MAX_UNFINISHED_COPY_TASKS}),请等待任务完成")
    task = CopyTask(random_text(ID_BODY_CHARS), file_ids, folder.file_id, state.clock())
    state.copy_tasks[task.task_id] = task
    state.mark_dirty()
    app.tasks.wake()
    return {"taskID": task.task_id}


def _copy_task(call: Call) -> CopyTask:
    task_id = call.params.required_str("taskID", allow_empty=False)
    task = call.app.state.copy_tasks.get(task_id)
    if task is None:
        raise bad_request(f"taskID: no copy task {task_id!r}")  # GUESS: code for unknown task
    return task


def copy_process(call: Call) -> dict[str, Any]:
    task = _copy_task(call)
    return {"status": task.status, "failMsg": task.fail_msg}


def copy_fail(call: Call) -> dict[str, Any]:
    task = _copy_task(call)
    limit = call.params.required_int("limit", low=1, high=MAX_PAGE_SIZE)
    page = call.params.required_int("page", low=1)
    chosen = task.failures[(page - 1) * limit : page * limit]
    # Reference example: an empty list is null, not [].
    return {"total": len(task.failures), "list": [dict(f) for f in chosen] or None}
