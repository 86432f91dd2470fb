"""Every documented endpoint, through the client, against the emulator over real HTTP.

The emulator's request log is the witness: each call must carry exactly the documented field names
(their casing differs per endpoint), ``Platform: open_platform``, and ``Authorization: Bearer ...``
on API calls, but neither header on the presigned PUT nor Authorization on access_token.
"""

from __future__ import annotations

import base64
import time

import pytest
import requests

from imgsync.client.models import (
    AsyncResult,
    CompleteResult,
    CopyFailure,
    CopyFailures,
    CopyProgress,
    CopyTask,
    CreateResult,
    FileList,
    Folder,
    OfflineProgress,
    OfflineTask,
    RemoteFile,
    UploadUrl,
)
from imgsync.errors import ApiError

from ..support import md5, png_like
from .conftest import header, upload

API_PREFIXES = ("/api/v1/", "/upload/v1/")


def test_every_endpoint_sends_exactly_the_documented_fields(api, control) -> None:
    control.config(slice_size=1024, async_polls=1)
    control.drive(
        [
            {
                "fileID": "14802190",
                "filename": "drive.png",
                "content_b64": base64.b64encode(png_like("drive")).decode(),
            }
        ]
    )

    token = api.tokens.current()  # a fresh data folder: fetched now, reused by every call below
    assert token.access_token and token.expired_at.tzinfo is not None

    folders = api.mkdir("album", "")
    assert isinstance(folders[0], Folder) and folders[0].filename == "album"
    folder_id = folders[0].dir_id
    other = api.mkdir("other", "")[0].dir_id

    data = png_like("endpoint-test", 2500)  # 3 slices of 1024
    created = api.create(folder_id, "a.png", md5(data), len(data))
    assert isinstance(created, CreateResult)
    assert not created.reuse and created.preupload_id and created.slice_size == 1024
    for number in (1, 2, 3):
        url = api.get_upload_url(created.preupload_id, number)
        assert isinstance(url, UploadUrl) and url.is_multipart
        chunk = data[(number - 1) * 1024 : number * 1024]
        api.put_slice(url.presigned_url, chunk, len(chunk))
    parts = api.list_upload_parts(created.preupload_id)
    assert [p.part_number for p in parts] == [1, 2, 3]
    done = api.upload_complete(created.preupload_id)
    assert isinstance(done, CompleteResult) and done.is_async and not done.completed
    result = api.upload_async_result(created.preupload_id)
    while not result.completed:
        result = api.upload_async_result(created.preupload_id)
    assert isinstance(result, AsyncResult) and result.file_id
    file_id = result.file_id

    again = api.create(folder_id, "a.png", md5(data), len(data))
    assert again.reuse and again.file_id == file_id  # instant upload (秒传)

    page = api.list_files(folder_id, limit=10, start_time=0, end_time=4102444800)
    assert isinstance(page, FileList) and page.is_last
    assert [f.filename for f in page.files] == ["a.png"]
    paged = api.list_files("", limit=1)
    second = api.list_files("", limit=1, last_file_id=paged.last_file_id)
    assert {paged.files[0].file_id, second.files[0].file_id} <= {folder_id, other}

    info = api.detail(file_id)
    assert isinstance(info, RemoteFile)
    assert (info.file_id, info.filename, info.etag, info.size) == (
        file_id,
        "a.png",
        md5(data),
        len(data),
    )
    assert info.parent_file_id == folder_id and info.parent_filename == "album"
    assert not info.is_folder and not info.rejected and info.extension == "png"
    assert requests.get(info.download_url, timeout=5).content == data

    api.move([file_id], other)
    assert api.detail(file_id).parent_file_id == other

    task = api.copy(["14802190"], folder_id)
    assert isinstance(task, CopyTask) and task.task_id
    progress = api.copy_process(task.task_id)
    assert isinstance(progress, CopyProgress)
    assert progress.status in (CopyProgress.RUNNING, CopyProgress.DONE, CopyProgress.WAITING)
    failures = api.copy_fail(task.task_id, limit=10, page=1)
    assert isinstance(failures, CopyFailures) and failures.total == 0 and failures.items == []

    offline = api.offline_download(
        info.download_url, file_name="mirror.png", business_dir_id=folder_id, callback_url=None
    )
    assert isinstance(offline, OfflineTask) and isinstance(offline.task_id, int)
    state = api.offline_process(offline.task_id)
    assert isinstance(state, OfflineProgress) and 0 <= state.process <= 100

    api.delete([file_id])

    log = control.requests()
    api_calls = [r for r in log if r["path"].startswith(API_PREFIXES)]
    puts = [r for r in log if r["method"] == "PUT"]
    assert len(puts) == 3

    def body_keys(path: str) -> list[set[str]]:
        return [set(r["json"]) for r in api_calls if r["path"] == path]

    def query_keys(path: str) -> list[set[str]]:
        return [set(r["query"]) for r in api_calls if r["path"] == path]

    assert body_keys("/api/v1/access_token") == [{"clientID", "clientSecret"}]
    assert body_keys("/upload/v1/oss/file/mkdir") == [{"name", "parentID", "type"}] * 2
    assert (
        body_keys("/upload/v1/oss/file/create")
        == [{"parentFileID", "filename", "etag", "size", "type"}] * 2
    )
    assert body_keys("/upload/v1/oss/file/get_upload_url") == [{"preuploadID", "sliceNo"}] * 3
    assert body_keys("/upload/v1/oss/file/list_upload_parts") == [{"preuploadID"}]
    assert body_keys("/upload/v1/oss/file/upload_complete") == [{"preuploadID"}]
    assert set(map(frozenset, body_keys("/upload/v1/oss/file/upload_async_result"))) == {
        frozenset({"preuploadID"})
    }
    assert body_keys("/api/v1/oss/file/list") == [
        {"parentFileId", "limit", "type", "startTime", "endTime"},
        {"parentFileId", "limit", "type"},
        {"parentFileId", "limit", "type", "lastFileId"},
    ]
    assert query_keys("/api/v1/oss/file/detail") == [{"fileID"}] * 2
    assert body_keys("/api/v1/oss/file/move") == [{"fileIDs", "toParentFileID"}]
    assert body_keys("/api/v1/oss/file/delete") == [{"fileIDs"}]
    assert body_keys("/api/v1/oss/source/copy") == [
        {"fileIDs", "toParentFileID", "sourceType", "type"}
    ]
    assert query_keys("/api/v1/oss/source/copy/process") == [{"taskID"}]
    assert query_keys("/api/v1/oss/source/copy/fail") == [{"taskID", "limit", "page"}]
    assert body_keys("/api/v1/oss/offline/download") == [
        {"url", "fileName", "businessDirID", "type"}
    ]
    assert query_keys("/api/v1/oss/offline/download/process") == [{"taskID"}]

    # Values that must be typed as documented, not only named.
    by_path = {r["path"]: r for r in api_calls}
    assert by_path["/upload/v1/oss/file/create"]["json"]["type"] == 1
    assert by_path["/upload/v1/oss/file/create"]["json"]["size"] == len(data)
    assert by_path["/api/v1/oss/source/copy"]["json"]["fileIDs"] == ["14802190"]
    assert by_path["/api/v1/oss/file/delete"]["json"]["fileIDs"] == [file_id]

    # GET queries carry no JSON body.
    for r in api_calls:
        if r["method"] == "GET":
            assert r["json"] is None, r["path"]

    documented_paths = {
        "/api/v1/access_token",
        "/upload/v1/oss/file/mkdir",
        "/upload/v1/oss/file/create",
        "/upload/v1/oss/file/get_upload_url",
        "/upload/v1/oss/file/upload_complete",
        "/upload/v1/oss/file/upload_async_result",
        "/api/v1/oss/file/list",
        "/api/v1/oss/file/detail",
        "/api/v1/oss/file/move",
        "/api/v1/oss/file/delete",
        "/api/v1/oss/source/copy",
        "/api/v1/oss/source/copy/process",
        "/api/v1/oss/source/copy/fail",
        "/api/v1/oss/offline/download",
        "/api/v1/oss/offline/download/process",
    }
    assert documented_paths <= {r["path"] for r in api_calls}

    # Headers: Platform everywhere on the API; Bearer everywhere but access_token; neither on PUT.
    for r in api_calls:
        assert header(r, "Platform") == "open_platform", r["path"]
        assert r["status"] == 200 and r["code"] == 0, r
        if r["path"] == "/api/v1/access_token":
            assert header(r, "Authorization") is None
        else:
            assert (header(r, "Authorization") or "").startswith("Bearer "), r["path"]
    for r in puts:
        assert header(r, "Authorization") is None
        assert header(r, "Platform") is None
        assert header(r, "Content-Length") == "1024" or r is puts[-1]
        assert r["status"] == 200
    assert header(puts[-1], "Content-Length") == str(2500 - 2048)


def test_iter_files_pages_through_a_folder(api, control) -> None:
    folder = api.mkdir("many", "")[0].dir_id
    for i in range(5):
        data = png_like(f"page-{i}", 64)
        created = api.create(folder, f"{i}.png", md5(data), len(data))
        url = api.get_upload_url(created.preupload_id, 1)
        api.put_slice(url.presigned_url, data, len(data))
        api.upload_complete(created.preupload_id)
    # list pages of 100: shrink the page by asking list directly, then compare with iter_files
    names = sorted(f.filename for f in api.iter_files(folder))
    assert names == [f"{i}.png" for i in range(5)]
    first = api.list_files(folder, limit=2)
    assert len(first.files) == 2 and not first.is_last


def test_review_rejection_is_visible(api, control) -> None:
    data = png_like("rejected", 100)
    control.review(md5(data), 150)
    created = api.create("", "bad.png", md5(data), len(data))
    url = api.get_upload_url(created.preupload_id, 1)
    api.put_slice(url.presigned_url, data, len(data))
    file_id = api.upload_complete(created.preupload_id).file_id
    assert api.detail(file_id).rejected


def test_copy_failures_come_back_typed(api, control) -> None:
    control.drive(
        [
            {
                "fileID": "100",
                "filename": "ok.png",
                "content_b64": base64.b64encode(png_like("ok")).decode(),
            },
            {
                "fileID": "101",
                "filename": "fake.png",
                "content_b64": base64.b64encode(b"plain text, not an image").decode(),
            },
        ]
    )
    folder = api.mkdir("copied", "")[0].dir_id
    task = api.copy(["100", "101"], folder)
    deadline = time.monotonic() + 10
    progress = api.copy_process(task.task_id)
    while progress.status in (CopyProgress.RUNNING, CopyProgress.WAITING):
        assert time.monotonic() < deadline, "copy task never finished"
        time.sleep(0.02)
        progress = api.copy_process(task.task_id)
    failures = api.copy_fail(task.task_id)
    assert failures.total == 1
    assert failures.items == [CopyFailure("101", "fake.png")]  # numeric on the wire, str here
    assert [f.filename for f in api.iter_files(folder)] == ["ok.png"]


def test_offline_download_runs_to_done(api, control) -> None:
    data = png_like("offline-source", 1500)
    source = upload(api, "", "source.png", data)
    url = api.detail(source).download_url
    folder = api.mkdir("mirror", "")[0].dir_id
    task = api.offline_download(url, file_name="copy.png", business_dir_id=folder)
    deadline = time.monotonic() + 10
    state = api.offline_process(task.task_id)
    while state.status in (OfflineProgress.RUNNING, OfflineProgress.RETRYING):
        assert time.monotonic() < deadline, "offline task never finished"
        time.sleep(0.02)
        state = api.offline_process(task.task_id)
    assert (state.status, state.process) == (OfflineProgress.DONE, 100)
    (copied,) = api.iter_files(folder)
    assert (copied.filename, copied.etag) == ("copy.png", md5(data))


def test_mkdir_sends_name_as_a_string_or_as_a_list(api, control) -> None:
    """The reference's example sends ``name`` as a string, its table types it ``[]string``: the
    client sends either, and a service that takes only one refuses the other."""
    assert api.mkdir("as-text", "")[0].filename == "as-text"
    assert api.mkdir("as-list", "", name_as_list=True)[0].filename == "as-list"
    sent = [r["json"]["name"] for r in control.requests("/upload/v1/oss/file/mkdir")]
    assert sent == ["as-text", ["as-list"]]

    control.config(mkdir_name="list")
    with pytest.raises(ApiError) as refused:
        api.mkdir("refused", "")
    assert refused.value.code == 1 and "name" in refused.value.message
    assert api.mkdir("taken", "", name_as_list=True)[0].filename == "taken"
