"""Offline migration: the emulator really fetches URLs from a local origin server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from ..loopback import LoopbackServer
from ..support import md5, wait_for
from ..support import png_like as png
from .conftest import Bed

OFFLINE = "/api/v1/oss/offline/download"
PROCESS = "/api/v1/oss/offline/download/process"
DEFAULT_FOLDER = "来自:离线下载"


class Origin:
    """A tiny web server: files to serve by path, and the callbacks it received."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.callbacks: list[dict[str, Any]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = origin.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                origin.callbacks.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = LoopbackServer(Handler).start()
        self.url = self.server.url

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


def _process(bed: Bed, task_id: int) -> dict[str, Any]:
    return bed.ok_get(PROCESS, {"taskID": task_id})


def _finished(bed: Bed, task_id: int) -> dict[str, Any]:
    return wait_for(lambda: (p := _process(bed, task_id))["status"] in (1, 2) and p)


def test_offline_download_into_the_default_folder(bed: Bed, origin: Origin) -> None:
    data = png("offline", 30_000)
    origin.files["/pics/cat.png"] = data
    task_id = bed.ok(OFFLINE, {"url": origin.url + "/pics/cat.png", "type": 1})["taskID"]
    assert isinstance(task_id, int)
    assert _finished(bed, task_id) == {"status": 2, "process": 100}
    (folder,) = [f for f in bed.files() if f["type"] == 1]
    assert folder["filename"] == DEFAULT_FOLDER and folder["parentFilename"] == "img_oss"
    (image,) = bed.listing(folder["fileId"])["fileList"]
    assert image["filename"] == "cat.png" and image["etag"] == md5(data)
    assert bed.http.get(image["downloadURL"], timeout=10).content == data


def test_offline_download_with_name_folder_and_callback(bed: Bed, origin: Origin) -> None:
    data = png("named")
    origin.files["/x"] = data
    folder = bed.mkdir("incoming")
    body = {
        "url": origin.url + "/x",
        "fileName": "named.png",
        "businessDirID": folder,
        "callBackUrl": origin.url + "/callback",
        "type": 1,
    }
    task_id = bed.ok(OFFLINE, body)["taskID"]
    assert _finished(bed, task_id)["status"] == 2
    (image,) = bed.listing(folder)["fileList"]
    assert image["filename"] == "named.png"
    (callback,) = wait_for(lambda: origin.callbacks)
    assert callback == {
        "url": origin.url + "/x",
        "status": 0,
        "failReason": "",
        "fileID": image["fileId"],
    }


def test_same_bytes_in_the_folder_are_overwritten_not_doubled(bed: Bed, origin: Origin) -> None:
    origin.files["/a.png"] = origin.files["/b.png"] = png("twice")
    folder = bed.mkdir("twice")
    for name in ("a.png", "b.png"):
        body = {"url": f"{origin.url}/{name}", "businessDirID": folder, "type": 1}
        assert _finished(bed, bed.ok(OFFLINE, body)["taskID"])["status"] == 2
    assert len(bed.listing(folder)["fileList"]) == 1


@pytest.mark.parametrize(
    ("served", "reason"),
    [(None, "404"), (b"<html><body>not an image</body></html>", "不是支持的图片格式")],
    ids=["missing", "not an image"],
)
def test_a_fetch_that_yields_no_image_fails_the_task(
    bed: Bed, origin: Origin, served: bytes | None, reason: str
) -> None:
    if served is not None:
        origin.files["/page.png"] = served
    body = {"url": origin.url + "/page.png", "callBackUrl": origin.url + "/cb", "type": 1}
    task_id = bed.ok(OFFLINE, body)["taskID"]
    assert _finished(bed, task_id)["status"] == 1
    (callback,) = wait_for(lambda: origin.callbacks)
    assert callback["status"] == 1 and reason in callback["failReason"]
    assert bed.files() == []


def test_unreachable_host_fails_after_retrying(bed: Bed) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bed.config(offline_retries=1, hold_tasks=True)
    task_id = bed.ok(OFFLINE, {"url": f"http://127.0.0.1:{port}/x.png", "type": 1})["taskID"]
    assert _process(bed, task_id) == {"status": 0, "process": 0}  # held: still running
    bed.config(hold_tasks=False)
    assert _finished(bed, task_id)["status"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"url": None},
        {"url": "ftp://example.com/a.png"},
        {"url": "not a url"},
        {"url": 5},
        {"type": None},
        {"type": 2},
        {"fileName": "no-extension"},
        {"fileName": "bad.exe"},
        {"fileName": "a/b.png"},
        {"businessDirID": "missing"},
        {"callBackUrl": "mailto:me@example.com"},
    ],
)
def test_offline_validation(bed: Bed, change: dict[str, Any]) -> None:
    body = {"url": "http://127.0.0.1:9/a.png", "type": 1, **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert bed.call(OFFLINE, body)["code"] == 1


def test_root_is_not_a_valid_offline_folder(bed: Bed) -> None:
    folder = bed.mkdir("probe")
    root_id = bed.detail(folder)["parentFileId"]
    body = {"url": "http://127.0.0.1:9/a.png", "businessDirID": root_id, "type": 1}
    assert bed.call(OFFLINE, body)["code"] == 1


def test_process_of_an_unknown_task(bed: Bed) -> None:
    assert bed.get(PROCESS, {"taskID": 1})["code"] == 1
    assert bed.get(PROCESS, {"taskID": "abc"})["code"] == 1
    assert bed.get(PROCESS, {})["code"] == 1
