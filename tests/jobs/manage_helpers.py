"""What the manage tests share: images put on the emulator's image bed, and their request counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgsync.config import Settings
from imgsync.engine.results import UploadResult
from imgsync.jobs.upload import upload_items

from ..support import Control, md5, write_png

LIST_PATH = "/api/v1/oss/file/list"
DELETE_PATH = "/api/v1/oss/file/delete"
MOVE_PATH = "/api/v1/oss/file/move"
DETAIL_PATH = "/api/v1/oss/file/detail"
COPY_PATH = "/api/v1/oss/source/copy"
COPY_PROCESS_PATH = "/api/v1/oss/source/copy/process"
COPY_FAIL_PATH = "/api/v1/oss/source/copy/fail"
OFFLINE_PATH = "/api/v1/oss/offline/download"


def upload_pngs(settings: Settings, folder: Path, count: int, tag: str) -> list[UploadResult]:
    """Upload ``count`` distinct PNGs (written below ``folder``) the way ``imgsync upload`` does,
    so the local index knows each one."""
    paths = [folder / f"{tag}-{n}.png" for n in range(count)]
    for path in paths:
        write_png(path)
    results = upload_items(settings, [str(p) for p in paths])
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return results


def requests_to(control: Control, path: str) -> list[dict[str, Any]]:
    """The logged requests to exactly ``path`` (not to longer paths that start with it)."""
    return [r for r in control.requests(path) if r["path"] == path]


def listing_requests(control: Control, folder_id: str) -> list[dict[str, Any]]:
    """The list requests that asked for the folder ``folder_id``."""
    return [r for r in requests_to(control, LIST_PATH) if r["json"]["parentFileId"] == folder_id]


def folder_id(control: Control, path: str) -> str:
    """The ID of the folder at ``path`` (``a/b``), read from the emulator's state."""
    state = control.state()
    parent = ""
    root = {f["parentFileId"] for f in state} - {f["fileId"] for f in state}
    parents = root
    for name in path.split("/"):
        (match,) = [
            f
            for f in state
            if f["type"] == 1 and f["filename"] == name and f["parentFileId"] in parents
        ]
        parent = match["fileId"]
        parents = {parent}
    return parent


def same_image_many_times(settings: Settings, path: str, count: int, data: bytes) -> list[str]:
    """``count`` files of the same bytes in the folder ``path`` (made if needed), fast: the first
    is uploaded, the others are instant uploads of it. Returns their IDs, in creation order."""
    from imgsync.client.api import Api
    from imgsync.jobs.imagebed import ImageBed

    with ImageBed(settings) as bed:
        folder = bed.folders.ensure(path)
    digest = md5(data)
    with Api.from_settings(settings) as api:
        first = api.create(folder, "0.png", digest, len(data))
        if first.reuse:  # the image bed holds these bytes already
            ids = [first.file_id]
        else:
            url = api.get_upload_url(first.preupload_id, 1)
            api.put_slice(url.presigned_url, data, len(data))
            ids = [api.upload_complete(first.preupload_id).file_id]
        for n in range(1, count):
            made = api.create(folder, f"{n}.png", digest, len(data))
            assert made.reuse
            ids.append(made.file_id)
    return ids
