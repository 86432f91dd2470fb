"""The upload flow: create, presigned PUTs, completion (sync, async, 20103), reuse, verification."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from imgsync.emulator import Emulator

from ..support import md5, wait_for
from ..support import png_like as png
from .conftest import Bed

CREATE = "/upload/v1/oss/file/create"
URL = "/upload/v1/oss/file/get_upload_url"
PARTS = "/upload/v1/oss/file/list_upload_parts"
MIB = 1024 * 1024


def test_single_slice_upload(bed: Bed) -> None:
    data = png("single", 5000)
    created = bed.create(data, "one.png")
    assert created["reuse"] is False and created["fileID"] == ""
    assert created["sliceSize"] == 104857600 and len(created["preuploadID"]) > 64
    upload = bed.upload_url(created["preuploadID"])
    assert upload["isMultipart"] is False
    assert upload["presignedURL"].startswith(bed.base_url + "/_s3/")
    response = bed.put(upload["presignedURL"], data)
    assert response.status_code == 200 and response.content == b""
    answer = bed.complete(created["preuploadID"])
    assert answer["code"] == 0
    assert answer["data"]["async"] is False and answer["data"]["completed"] is True
    file_id = answer["data"]["fileID"]
    detail = bed.detail(file_id)
    assert (
        detail["etag"] == md5(data) and detail["size"] == 5000 and detail["filename"] == "one.png"
    )


def test_multi_slice_upload_with_small_slices(bed: Bed) -> None:
    bed.config(slice_size=1000)
    data = png("multi", 3500)
    created = bed.create(data, "multi.png")
    assert created["sliceSize"] == 1000
    assert bed.upload_url(created["preuploadID"], 1)["isMultipart"] is True
    bed.send_slices(created["preuploadID"], data, 1000)
    parts = bed.ok(PARTS, {"preuploadID": created["preuploadID"]})["parts"]
    assert [p["partNumber"] for p in parts] == ["1", "2", "3", "4"]
    assert [p["size"] for p in parts] == [1000, 1000, 1000, 500]
    assert parts[3]["etag"] == md5(data[3000:])
    file_id = bed.complete(created["preuploadID"])["data"]["fileID"]
    assert bed.http.get(bed.detail(file_id)["downloadURL"], timeout=10).content == data


def test_list_upload_parts_is_empty_below_slice_size(bed: Bed) -> None:
    data = png("parts-small")
    created = bed.create(data, "p.png")
    bed.send_slices(created["preuploadID"], data, created["sliceSize"])
    assert bed.ok(PARTS, {"preuploadID": created["preuploadID"]}) == {"parts": []}


def test_slice_numbers_are_checked(bed: Bed) -> None:
    bed.config(slice_size=1000)
    created = bed.create(png("slices", 2500), "s.png")
    pre = created["preuploadID"]
    for bad in (0, 4, "1"):
        assert bed.call(URL, {"preuploadID": pre, "sliceNo": bad})["code"] == 1
    assert bed.call(URL, {"preuploadID": pre})["code"] == 1
    empty = bed.call(URL, {"preuploadID": "", "sliceNo": 1})
    assert empty["code"] == 1 and empty["message"] == "预上传ID不能为空"
    assert bed.call(URL, {"preuploadID": "unknown", "sliceNo": 1})["code"] == 1


def test_complete_with_a_missing_slice_is_refused(bed: Bed) -> None:
    bed.config(slice_size=1000)
    data = png("missing", 2500)
    created = bed.create(data, "m.png")
    url = bed.upload_url(created["preuploadID"], 1)["presignedURL"]
    assert bed.put(url, data[:1000]).status_code == 200
    assert bed.complete(created["preuploadID"])["code"] == 1
    bed.send_slices(created["preuploadID"], data, 1000)
    assert bed.complete(created["preuploadID"])["code"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"filename": None},
        {"etag": None},
        {"size": None},
        {"parentFileID": None},
        {"type": None},
        {"type": 2},
        {"size": "2048"},
        {"size": 0},
        {"size": 100 * MIB + 1},
        {"etag": "E" * 32},
        {"etag": "abc"},
        {"filename": "a:b.png"},
        {"filename": "  "},
        {"filename": "x" * 251 + ".png"},
        {"filename": 12},
        {"parentFileID": "no-such-folder"},
    ],
)
def test_create_validation(bed: Bed, change: dict[str, Any]) -> None:
    data = png("validation")
    body = {
        "parentFileID": "",
        "filename": "v.png",
        "etag": md5(data),
        "size": len(data),
        "type": 1,
    }
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    answer = bed.call(CREATE, body)
    assert answer["code"] == 1, answer
    assert answer["data"] is None


def test_create_into_a_file_is_refused(bed: Bed) -> None:
    file_id = bed.upload(png("not-a-folder"), "f.png")
    data = png("child")
    body = {"parentFileID": file_id, "filename": "c.png", "etag": md5(data), "size": len(data)}
    assert bed.call(CREATE, {**body, "type": 1})["code"] == 1


def test_same_name_with_other_bytes_is_refused(bed: Bed) -> None:
    bed.upload(png("first"), "same.png")
    data = png("second")
    body = {"parentFileID": "", "filename": "same.png", "etag": md5(data), "size": len(data)}
    assert bed.call(CREATE, {**body, "type": 1})["code"] == 1


def test_same_name_with_same_bytes_is_that_object(bed: Bed) -> None:
    data = png("again")
    file_id = bed.upload(data, "again.png")
    created = bed.create(data, "again.png")
    assert created["reuse"] is True and created["fileID"] == file_id
    assert len(bed.files()) == 1


def test_instant_reuse_makes_a_new_object_with_the_new_name(bed: Bed) -> None:
    data = png("reuse")
    first = bed.upload(data, "a.png")
    folder = bed.mkdir("elsewhere")
    created = bed.create(data, "b.png", folder)
    assert created["reuse"] is True
    assert created["fileID"] and created["fileID"] != first and created["preuploadID"] == ""
    detail = bed.detail(created["fileID"])
    assert detail["filename"] == "b.png" and detail["parentFileId"] == folder
    assert bed.http.get(detail["downloadURL"], timeout=10).content == data
    assert len(bed.log("/_s3/")) == 1  # only the first upload sent bytes


def test_put_with_authorization_is_refused(bed: Bed) -> None:
    data = png("auth")
    created = bed.create(data, "auth.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    response = bed.put(url, data, headers={"Authorization": f"Bearer {bed.token}"})
    assert response.status_code == 400
    assert b"Only one auth mechanism allowed" in response.content
    assert bed.log("/_s3/")[-1]["headers"]["Authorization"] == "Bearer <redacted>"
    assert bed.complete(created["preuploadID"])["code"] == 1  # nothing was stored


def test_put_with_platform_header_is_refused_unless_configured(bed: Bed) -> None:
    data = png("platform")
    created = bed.create(data, "platform.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    assert bed.put(url, data, headers={"Platform": "open_platform"}).status_code == 400
    bed.config(refuse_platform_on_put=False)
    assert bed.put(url, data, headers={"Platform": "open_platform"}).status_code == 200


def test_put_with_wrong_content_length_is_refused(bed: Bed) -> None:
    bed.config(slice_size=1000)
    data = png("length", 1500)
    created = bed.create(data, "len.png")
    first = bed.upload_url(created["preuploadID"], 1)["presignedURL"]
    last = bed.upload_url(created["preuploadID"], 2)["presignedURL"]
    assert bed.put(first, data[:999]).status_code == 400  # all but the last are full slices
    assert bed.put(last, data[1000:1499]).status_code == 400
    assert bed.put(last, data[:1000]).status_code == 400  # the last holds the rest, no more
    assert bed.put(first, data[:1000]).status_code == 200  # the connection is still usable
    assert bed.put(last, data[1000:]).status_code == 200


def test_expired_upload_url_is_refused(bed: Bed) -> None:
    bed.config(url_ttl_s=0.3)
    data = png("expiry")
    created = bed.create(data, "late.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    refused = wait_for(
        lambda: (r := bed.put(url, data)).status_code == 403 and r.content, timeout=5
    )
    assert b"Request has expired" in refused
    fresh = bed.upload_url(created["preuploadID"])["presignedURL"]
    assert bed.put(fresh, data).status_code == 200


def test_unknown_upload_url_is_refused(bed: Bed) -> None:
    assert bed.put(bed.base_url + "/_s3/forged", b"x").status_code == 403


def test_re_put_replaces_the_slice(bed: Bed) -> None:
    data = png("replace", 3000)
    created = bed.create(data, "r.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    assert bed.put(url, b"\0" * 3000).status_code == 200
    assert bed.put(url, data).status_code == 200
    assert bed.complete(created["preuploadID"])["code"] == 0


def test_md5_mismatch_fails_the_upload(bed: Bed) -> None:
    data = png("mismatch", 3000)
    created = bed.create(data, "bad.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    assert bed.put(url, png("other bytes", 3000)).status_code == 200
    for _ in range(2):  # and it stays failed
        answer = bed.complete(created["preuploadID"])
        assert answer["code"] == 1 and answer["message"] == "文件上传失败"
    assert bed.files() == []


def test_md5_mismatch_shows_at_async_result_when_async(bed: Bed) -> None:
    bed.config(async_polls=1)
    data = png("mismatch-async", 3000)
    created = bed.create(data, "bad.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    assert bed.put(url, png("other", 3000)).status_code == 200
    assert bed.complete(created["preuploadID"])["data"]["async"] is True
    assert bed.async_result(created["preuploadID"])["data"]["completed"] is False
    failed = bed.async_result(created["preuploadID"])
    assert failed["code"] == 1 and failed["message"] == "文件上传失败"


def _uploaded_not_completed(bed: Bed, tag: str) -> tuple[bytes, str]:
    data = png(tag)
    created = bed.create(data, f"{tag}.png")
    bed.send_slices(created["preuploadID"], data, created["sliceSize"])
    return data, created["preuploadID"]


def test_async_completion_after_polls(bed: Bed) -> None:
    bed.config(async_polls=2)
    _, pre = _uploaded_not_completed(bed, "async")
    first = bed.complete(pre)["data"]
    assert first == {"async": True, "completed": False, "fileID": ""}
    assert bed.async_result(pre)["data"] == {"completed": False, "fileID": ""}
    assert bed.async_result(pre)["data"] == {"completed": False, "fileID": ""}
    assert bed.files() == []
    done = bed.async_result(pre)["data"]
    assert done["completed"] is True and done["fileID"]
    assert bed.async_result(pre)["data"] == done  # asking again is harmless
    assert [f["fileId"] for f in bed.files()] == [done["fileID"]]


def test_async_result_before_complete_is_refused(bed: Bed) -> None:
    _, pre = _uploaded_not_completed(bed, "early")
    assert bed.async_result(pre)["code"] == 1


def test_complete_answers_20103_while_verifying(bed: Bed) -> None:
    bed.config(verify_20103=2)
    _, pre = _uploaded_not_completed(bed, "verifying")
    for _ in range(2):
        busy = bed.complete(pre)
        assert busy["code"] == 20103 and busy["message"] == "文件正在校验中,请间隔1秒后再试"
    done = bed.complete(pre)
    assert done["code"] == 0 and done["data"]["completed"] is True


def test_20103_then_async_result_also_completes(bed: Bed) -> None:
    bed.config(verify_20103=1)
    _, pre = _uploaded_not_completed(bed, "verify-then-poll")
    assert bed.complete(pre)["code"] == 20103
    assert bed.async_result(pre)["data"]["completed"] is True


def test_complete_is_idempotent(bed: Bed) -> None:
    _, pre = _uploaded_not_completed(bed, "twice")
    first = bed.complete(pre)["data"]["fileID"]
    again = bed.complete(pre)["data"]
    assert again == {"async": False, "completed": True, "fileID": first}
    assert len(bed.files()) == 1
    assert bed.call(URL, {"preuploadID": pre, "sliceNo": 1})["code"] == 1  # closed for slices


def test_largest_allowed_file_streams_through(bed: Bed) -> None:
    data = bytes(100 * MIB)
    file_id = bed.upload(data, "big.bin")
    detail = bed.detail(file_id)
    assert detail["size"] == 100 * MIB and detail["etag"] == md5(data)
    response = bed.http.get(detail["downloadURL"], timeout=60, stream=True)
    received = sum(len(chunk) for chunk in response.iter_content(MIB))
    assert received == 100 * MIB


def _upload_from_eight_threads(base_url: str) -> None:
    token = Bed(base_url).login()
    results: dict[int, str] = {}
    errors: list[Exception] = []

    def worker(number: int) -> None:
        helper = Bed(base_url)
        helper._token = token
        try:
            for round_ in range(3):
                data = png(f"thread-{number}-{round_}", 20_000 + number)
                results[number * 10 + round_] = helper.upload(data, f"t{number}-{round_}.png")
        except Exception as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(set(results.values())) == 24
    assert len(Bed(base_url).files()) == 24


def test_concurrent_uploads_from_eight_threads(bed: Bed) -> None:
    _upload_from_eight_threads(bed.base_url)


def test_concurrent_uploads_with_a_data_folder(tmp_path: Path) -> None:
    with Emulator(data_dir=tmp_path) as emu:
        _upload_from_eight_threads(emu.base_url)
    assert len(list((tmp_path / "blobs").iterdir())) == 24


def test_a_body_cut_short_is_not_stored(bed: Bed) -> None:
    data = png("short", 5000)
    created = bed.create(data, "short.png")
    url = urlsplit(bed.upload_url(created["preuploadID"])["presignedURL"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        head = f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
        raw.sendall(head.encode() + data[:100])
        raw.shutdown(socket.SHUT_WR)  # the client gives up after 100 of 5000 bytes
        assert raw.recv(1024) == b""  # and the server hangs up without an answer
    assert bed.complete(created["preuploadID"])["code"] == 1
    bed.send_slices(created["preuploadID"], data, created["sliceSize"])
    assert bed.complete(created["preuploadID"])["code"] == 0


def test_a_slice_arriving_after_completion_is_answered_not_stored(tmp_path: Path) -> None:
    with Emulator(data_dir=tmp_path, config={"slice_size": 1000}) as emu:
        bed = Bed(emu.base_url)
        data = png("late-slice", 2000)
        pre = bed.create(data, "late.png")["preuploadID"]
        bed.send_slices(pre, data, 1000)
        url = urlsplit(bed.upload_url(pre, 1)["presignedURL"])
        with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
            head = f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
            raw.sendall(head.encode() + b"\0" * 500)
            # the PUT was accepted once its bytes start landing in a temporary slice file
            wait_for(lambda: list((tmp_path / "uploads").glob("*/.*.part")))
            file_id = bed.complete(pre)["data"]["fileID"]  # meanwhile the upload completes
            raw.sendall(b"\0" * 500)
            answer = b""
            while b"</Error>" not in answer:
                chunk = raw.recv(4096)
                assert chunk, answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 404") and b"NoSuchUpload" in answer
        assert not any((tmp_path / "uploads").iterdir())  # the late bytes were not kept
        assert bed.http.get(bed.detail(file_id)["downloadURL"], timeout=10).content == data
