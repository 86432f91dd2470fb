"""The upload engine against answers the real service may plausibly give and the emulator never
gives.

A small rewriting proxy on 127.0.0.1 stands between the engine and a fresh emulator: it forwards
every request and, for the endpoints a test names, rewrites the JSON answer into the varied shape
(the reference, docs/api-facts.md or public clients of the open API allow it; each test says which).
The emulator still does the real work, so what the engine hands out can be checked against what
the emulator holds.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from imgsync.config import DEFAULT_QPS, AccountSettings, NetworkSettings, Settings, UploadSettings
from imgsync.emulator import Emulator
from imgsync.engine.uploader import Uploader

from ..loopback import LoopbackServer

CLIENT_ID = "variations-client"
CLIENT_SECRET = "variations-secret"

COMPLETE = "/upload/v1/oss/file/upload_complete"
ASYNC_RESULT = "/upload/v1/oss/file/upload_async_result"
CREATE = "/upload/v1/oss/file/create"
MKDIR = "/upload/v1/oss/file/mkdir"
LIST = "/api/v1/oss/file/list"
DETAIL = "/api/v1/oss/file/detail"

POLL_DEADLINE = 20.0
# The engine's clock here is fake (FakeTime): a poll spaced as the reference says (1 s) costs no
# waiting, so the test process's 50 ms spacing (conftest's short_poll_spacing) would only turn a
# poll to the deadline into 400 requests instead of 20.
pytestmark = pytest.mark.real_poll_spacing

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class RewritingProxy:
    """Forwards to ``target``; answers of the paths in ``rewrites`` pass through their function."""

    def __init__(self, target: str) -> None:
        self.rewrites: dict[str, Rewrite] = {}
        self.counts: dict[str, int] = {}
        self.paths: list[str] = []
        self._lock = threading.Lock()
        parts = urlsplit(target)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                conn = http.client.HTTPConnection(host, port, timeout=10)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    payload = resp.read()
                    status, reply_headers = resp.status, resp.getheaders()
                finally:
                    conn.close()
                with proxy._lock:
                    proxy.paths.append(self.path)
                payload = proxy._rewrite(self.path.split("?", 1)[0], payload)
                self.send_response(status)
                for name, value in reply_headers:
                    if name.lower() not in _HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def _rewrite(self, path: str, payload: bytes) -> bytes:
        with self._lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            rewrite = self.rewrites.get(path)
        if rewrite is None:
            return payload
        try:
            body = json.loads(payload)
        except ValueError:
            return payload
        if not isinstance(body, dict) or body.get("code") != 0:
            return payload
        return json.dumps(rewrite(body)).encode()

    def close(self) -> None:
        self._server.stop()


class FakeTime:
    """A clock that moves only when the engine sleeps: polls and deadlines without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def clock(self) -> float:
        return self.now


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as emu:
        yield emu


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[RewritingProxy]:
    front = RewritingProxy(emulator.base_url)
    yield front
    front.close()


def make_uploader(proxy: RewritingProxy, data_dir: Path, **upload: Any) -> Uploader:
    settings = Settings(
        account=AccountSettings(
            base_url=proxy.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        ),
        network=NetworkSettings(
            connect_timeout=2.0,
            read_timeout=10.0,
            max_attempts=3,
            backoff_initial=0.01,
            backoff_max=0.05,
            qps=dict.fromkeys(DEFAULT_QPS, 0.0),
        ),
        upload=UploadSettings(concurrency=1, poll_deadline=POLL_DEADLINE, **upload),
        data_dir=data_dir,
    )
    fake = FakeTime()
    return Uploader.from_settings(settings, sleep=fake.sleep, clock=fake.clock)


@pytest.fixture
def uploader(proxy: RewritingProxy, tmp_path: Path) -> Iterator[Uploader]:
    with make_uploader(proxy, tmp_path / "data") as up:
        yield up


def write_png(path: Path, tag: str, size: int = 4096) -> bytes:
    seed = hashlib.sha256(tag.encode()).digest()
    data = (b"\x89PNG\r\n\x1a\n" + seed * (size // len(seed) + 1))[:size]
    path.write_bytes(data)
    return data


def on_bed(emulator: Emulator, md5: str) -> list[dict[str, Any]]:
    """The emulator's files holding ``md5`` (its control plane, not the client)."""
    resp = requests.get(f"{emulator.base_url}/_emulator/state", timeout=10)
    resp.raise_for_status()
    return [f for f in resp.json()["files"] if f.get("etag") == md5]


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body.get("data") or {})


# --------------------------------------------------------------------------------------------------
# Completion


def test_completed_without_file_id_is_looked_up_at_once(
    proxy: RewritingProxy, uploader: Uploader, emulator: Emulator, tmp_path: Path
) -> None:
    # "若接口返回的async为false且fileID不为0时，上传完成": completed without a fileID is no link.
    # The file is in the folder under its name: find it there instead of polling to the deadline.
    proxy.rewrites[COMPLETE] = lambda body: {
        **body,
        "data": {"async": False, "completed": True, "fileID": ""},
    }
    data = write_png(tmp_path / "a.png", "completed-no-id")
    result = uploader.upload_path(tmp_path / "a.png")
    assert result.ok, result.error
    (stored,) = on_bed(emulator, hashlib.md5(data).hexdigest())
    assert result.file_id == stored["fileId"]
    assert proxy.counts[COMPLETE] == 1


def test_completed_without_file_id_nowhere_to_be_found_fails_clearly(
    proxy: RewritingProxy, uploader: Uploader, tmp_path: Path
) -> None:
    proxy.rewrites[COMPLETE] = lambda body: {
        **body,
        "data": {"async": False, "completed": True, "fileID": ""},
    }
    proxy.rewrites[LIST] = lambda body: {**body, "data": {"lastFileId": "-1", "fileList": None}}
    data = write_png(tmp_path / "b.png", "completed-no-id-lost")
    result = uploader.upload_path(tmp_path / "b.png")
    assert not result.ok and result.url is None
    assert "did not confirm the upload" in (result.error or "")
    assert uploader.cache.get_object(hashlib.md5(data).hexdigest(), len(data)) is None


def test_complete_answer_without_async_field(
    proxy: RewritingProxy, uploader: Uploader, emulator: Emulator, tmp_path: Path
) -> None:
    # The cloud-drive v2 completion has no "async" (OpenList's 123_open driver); public clients
    # read it as data.get("async", False).
    def drop_async(body: dict[str, Any]) -> dict[str, Any]:
        data = data_of(body)
        data.pop("async", None)
        return {**body, "data": data}

    proxy.rewrites[COMPLETE] = drop_async
    data = write_png(tmp_path / "c.png", "no-async")
    result = uploader.upload_path(tmp_path / "c.png")
    assert result.ok, result.error
    assert result.file_id == on_bed(emulator, hashlib.md5(data).hexdigest())[0]["fileId"]


def test_async_result_without_completed_keeps_polling(
    proxy: RewritingProxy, uploader: Uploader, emulator: Emulator, tmp_path: Path
) -> None:
    # Public clients read data.get("completed", False): an answer without it is "not yet".
    requests.post(f"{emulator.base_url}/_emulator/config", json={"async_polls": 2}, timeout=10)

    def drop_not_completed(body: dict[str, Any]) -> dict[str, Any]:
        return body if data_of(body).get("completed") else {**body, "data": None}

    proxy.rewrites[ASYNC_RESULT] = drop_not_completed
    write_png(tmp_path / "d.png", "async-no-completed")
    result = uploader.upload_path(tmp_path / "d.png")
    assert result.ok, result.error
    assert proxy.counts[ASYNC_RESULT] == 3


# --------------------------------------------------------------------------------------------------
# Instant upload, folders, detail


@pytest.mark.parametrize("file_id", ["", 0, None])
def test_instant_reuse_without_file_id_is_looked_up_by_name(
    proxy: RewritingProxy, emulator: Emulator, tmp_path: Path, file_id: Any
) -> None:
    # OpenList's 123_open driver: "秒传成功才会返回正确的 FileID，否则为 0" - it does not trust
    # reuse without an ID. The engine must never ask detail for fileID "".
    write_png(tmp_path / "e.png", "reuse-no-id")
    with make_uploader(proxy, tmp_path / "first") as first:
        assert first.upload_path(tmp_path / "e.png").ok

    def no_id(body: dict[str, Any]) -> dict[str, Any]:
        data = data_of(body)
        if data.get("reuse"):
            data.update(fileID=file_id, preuploadID="")
        return {**body, "data": data}

    proxy.rewrites[CREATE] = no_id
    with make_uploader(proxy, tmp_path / "second") as second:
        result = second.upload_path(tmp_path / "e.png")
    assert result.ok, result.error
    assert result.status == "reused"
    assert result.file_id and result.url
    assert DETAIL + "?fileID=" not in proxy.paths


def test_reuse_claimed_without_file_id_but_with_preupload_id_uploads(
    proxy: RewritingProxy, uploader: Uploader, emulator: Emulator, tmp_path: Path
) -> None:
    # OpenList's 123_open driver goes on uploading when reuse comes without an ID.
    def claim_reuse(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "data": {**data_of(body), "reuse": True, "fileID": ""}}

    proxy.rewrites[CREATE] = claim_reuse
    data = write_png(tmp_path / "j.png", "reuse-claimed")
    result = uploader.upload_path(tmp_path / "j.png")
    assert result.ok, result.error
    assert result.status == "uploaded"
    assert result.file_id == on_bed(emulator, hashlib.md5(data).hexdigest())[0]["fileId"]


def test_reuse_without_file_id_or_file_fails_clearly(
    proxy: RewritingProxy, uploader: Uploader, tmp_path: Path
) -> None:
    def empty_reuse(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "data": {"reuse": True, "fileID": "", "preuploadID": "", "sliceSize": 0}}

    proxy.rewrites[CREATE] = empty_reuse
    write_png(tmp_path / "k.png", "reuse-empty")
    result = uploader.upload_path(tmp_path / "k.png")
    assert not result.ok and result.url is None
    assert "named no file" in (result.error or "")
    assert DETAIL + "?fileID=" not in proxy.paths


def test_mkdir_answering_no_folder_finds_it_by_name(
    proxy: RewritingProxy, uploader: Uploader, tmp_path: Path
) -> None:
    # The folder was made; an answer without its ID (list empty or null) is resolved by listing
    # the parent, as for "folder exists".
    proxy.rewrites[MKDIR] = lambda body: {**body, "data": {"list": None}}
    write_png(tmp_path / "f.png", "mkdir-no-list")
    result = uploader.upload_path(tmp_path / "f.png")
    assert result.ok, result.error


def test_detail_without_custom_domain_or_status(proxy: RewritingProxy, tmp_path: Path) -> None:
    # api-facts: userSelfURL may be empty; status above 100 is a rejection, a missing one is not.
    def bare(body: dict[str, Any]) -> dict[str, Any]:
        data = data_of(body)
        data.pop("userSelfURL", None)
        data.pop("status", None)
        return {**body, "data": data}

    proxy.rewrites[DETAIL] = bare
    write_png(tmp_path / "g.png", "bare-detail")
    with make_uploader(proxy, tmp_path / "data", link="userSelfURL") as up:
        result = up.upload_path(tmp_path / "g.png")
    assert result.ok, result.error
    assert result.url and result.url.endswith(".png")


def test_detail_with_cloud_drive_id_casing(
    proxy: RewritingProxy, uploader: Uploader, tmp_path: Path
) -> None:
    def recase(body: dict[str, Any]) -> dict[str, Any]:
        data = data_of(body)
        data["fileID"] = data.pop("fileId")
        data["parentFileID"] = data.pop("parentFileId")
        return {**body, "data": data}

    proxy.rewrites[DETAIL] = recase
    write_png(tmp_path / "h.png", "recased-detail")
    result = uploader.upload_path(tmp_path / "h.png")
    assert result.ok, result.error
    assert result.file_id


def test_list_with_numeric_cursor_and_null_lists(
    proxy: RewritingProxy, uploader: Uploader, tmp_path: Path
) -> None:
    # The cloud-drive list answers lastFileId as the number -1; an empty folder may list null.
    def loosen(body: dict[str, Any]) -> dict[str, Any]:
        data = data_of(body)
        if data.get("lastFileId") == "-1":
            data["lastFileId"] = -1
        data["fileList"] = data.get("fileList") or None
        return {**body, "data": data}

    proxy.rewrites[LIST] = loosen
    # A completion answered without a fileID makes the engine list the folder to find the file.
    proxy.rewrites[COMPLETE] = lambda body: {
        **body,
        "data": {"async": False, "completed": True, "fileID": ""},
    }
    write_png(tmp_path / "i.png", "numeric-cursor")
    result = uploader.upload_path(tmp_path / "i.png")
    assert result.ok, result.error
    assert os.path.basename(result.url or "").endswith(".png")
