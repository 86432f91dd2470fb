"""Answers the real service may plausibly give that the emulator never gives.

The emulator is one reading of the reference; the client must work against the real service
unchanged. These tests stand a small scripted stub on 127.0.0.1 in for the unreachable service and
answer with the shapes the reference, docs/api-facts.md or public clients of the open API allow:
IDs as numbers, ``null`` lists, fields left out, codes as strings, gateway pages instead of the
JSON envelope, ``Retry-After`` headers. Each test names where its variation comes from.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from imgsync.client.api import Api
from imgsync.config import DEFAULT_QPS, AccountSettings, NetworkSettings, Settings
from imgsync.errors import AuthError, NotFound, NotTheApi, ServerError, StillVerifying

from ..loopback import LoopbackServer

TOKEN_PATH = "/api/v1/access_token"
CREATE = "/upload/v1/oss/file/create"
UPLOAD_URL = "/upload/v1/oss/file/get_upload_url"
COMPLETE = "/upload/v1/oss/file/upload_complete"
ASYNC_RESULT = "/upload/v1/oss/file/upload_async_result"
MKDIR = "/upload/v1/oss/file/mkdir"
LIST = "/api/v1/oss/file/list"
DETAIL = "/api/v1/oss/file/detail"
DELETE = "/api/v1/oss/file/delete"
MOVE = "/api/v1/oss/file/move"
COPY = "/api/v1/oss/source/copy"
OFFLINE = "/api/v1/oss/offline/download"

CHINA = timezone(timedelta(hours=8))
# Longer than any Retry-After below, so a honoured header is not hidden by the cap.
BACKOFF_MAX = 20.0

# A gateway's error page: what a proxy, WAF or load balancer in front of the API answers.
GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

Reply = tuple[int, dict[str, str], bytes]


def envelope(data: Any = None, code: Any = 0, message: str = "ok", **extra: Any) -> Reply:
    body = {"code": code, "message": message, "data": data, "x-traceID": "trace-stub", **extra}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def raw(status: int, body: bytes, content_type: str = "text/html", **headers: str) -> Reply:
    return status, {"Content-Type": content_type, **headers}, body


def token_reply(expired_at: str = "2099-01-01T00:00:00+08:00") -> Reply:
    return envelope({"accessToken": "stub-token", "expiredAt": expired_at})


class StubService:
    """A scripted stand-in for the 123pan API on loopback.

    Each path answers from its queue of replies; the last reply of a queue repeats. The token
    endpoint answers a far-future token unless scripted. Every request is recorded.
    """

    def __init__(self) -> None:
        self._replies: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                status, headers, payload = stub._next(self.command, self.path, path, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._replies[path] = list(replies)

    def _next(self, method: str, full: str, path: str, body: bytes) -> Reply:
        with self._lock:
            self.requests.append((method, full, body))
            queue = self._replies.get(path)
            if not queue:
                return token_reply() if path == TOKEN_PATH else raw(404, b"no such path")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def calls(self, path: str) -> list[bytes]:
        """The bodies of the requests to ``path`` (query strings ignored)."""
        with self._lock:
            return [body for _, full, body in self.requests if full.split("?", 1)[0] == path]

    def close(self) -> None:
        self._server.stop()


@pytest.fixture
def stub() -> Iterator[StubService]:
    service = StubService()
    yield service
    service.close()


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the client asked for (none of them really taken)."""
    return []


@pytest.fixture
def api(stub: StubService, tmp_path: Path, sleeps: list[float]) -> Iterator[Api]:
    settings = Settings(
        account=AccountSettings(
            base_url=stub.url, client_id="stub-client", client_secret="stub-secret"
        ),
        network=NetworkSettings(
            connect_timeout=2.0,
            read_timeout=5.0,
            max_attempts=4,
            backoff_initial=0.01,
            backoff_max=BACKOFF_MAX,
            qps=dict.fromkeys(DEFAULT_QPS, 0.0),
        ),
        data_dir=tmp_path / "data",
    )
    client = Api.from_settings(settings, sleep=sleeps.append)
    yield client
    client.close()


# --------------------------------------------------------------------------------------------------
# create, get_upload_url


@pytest.mark.parametrize(
    "data",
    [
        # The reference: "preuploadID ... 如果reuse为true时,该字段不存在".
        {"fileID": "f-reused", "reuse": True},
        # api-facts [client]: preuploadID may be "" rather than absent.
        {"fileID": "f-reused", "reuse": True, "preuploadID": ""},
        # Go services write zero values for fields they do not set.
        {"fileID": "f-reused", "reuse": True, "preuploadID": "", "sliceSize": 0},
    ],
)
def test_create_instant_reuse_without_preupload_id(
    stub: StubService, api: Api, data: dict[str, Any]
) -> None:
    stub.script(CREATE, envelope(data))
    created = api.create("", "a.png", "0" * 32, 10)
    assert (created.reuse, created.file_id, created.preupload_id) == (True, "f-reused", "")


def test_create_numbers_where_strings_are_documented(stub: StubService, api: Api) -> None:
    # The offline callback shows "fileID":100 and the cloud-drive create answers a numeric fileID;
    # a sliceSize as text costs nothing to accept.
    stub.script(
        CREATE,
        envelope({"fileID": 100, "reuse": True, "preuploadID": "", "sliceSize": "104857600"}),
    )
    created = api.create("", "a.png", "0" * 32, 10)
    assert (created.file_id, created.slice_size) == ("100", 104857600)


def test_get_upload_url_without_is_multipart(stub: StubService, api: Api) -> None:
    # The reference's field table lists presignedURL only; isMultipart appears in its example.
    stub.script(UPLOAD_URL, envelope({"presignedURL": "http://127.0.0.1:9/put?sig=x"}))
    url = api.get_upload_url("pre", 1)
    assert (url.presigned_url, url.is_multipart) == ("http://127.0.0.1:9/put?sig=x", False)


# --------------------------------------------------------------------------------------------------
# upload_complete, upload_async_result


def test_complete_without_async_field(stub: StubService, api: Api) -> None:
    # The cloud-drive v2 completion answers {completed, fileID} with no "async" (OpenList's
    # 123_open driver models it so); public image-bed clients read it as data.get("async", False).
    stub.script(COMPLETE, envelope({"completed": True, "fileID": "f-done"}))
    done = api.upload_complete("pre")
    assert (done.is_async, done.completed, done.file_id) == (False, True, "f-done")


@pytest.mark.parametrize("file_id", [0, "0", None, ""])
def test_complete_file_id_zero_means_none(stub: StubService, api: Api, file_id: Any) -> None:
    # The reference's flow: "若接口返回的async为false且fileID不为0时，上传完成": 0 is no file yet.
    stub.script(COMPLETE, envelope({"async": False, "completed": True, "fileID": file_id}))
    assert api.upload_complete("pre").file_id == ""


def test_complete_with_null_data_is_not_done(stub: StubService, api: Api) -> None:
    stub.script(COMPLETE, envelope(None))
    done = api.upload_complete("pre")
    assert (done.is_async, done.completed, done.file_id) == (False, False, "")


def test_async_result_20103_is_still_verifying(stub: StubService, api: Api) -> None:
    # api-facts [seen] has 20103 from upload_complete; OpenList retries 20103 from any endpoint.
    stub.script(ASYNC_RESULT, envelope(None, 20103, "文件正在校验中,请间隔1秒后再试"))
    with pytest.raises(StillVerifying):
        api.upload_async_result("pre")


@pytest.mark.parametrize("data", [None, {}, {"fileID": ""}])
def test_async_result_without_completed_is_not_yet(
    stub: StubService, api: Api, data: dict[str, Any] | None
) -> None:
    # Public clients read data.get("completed", False); Go clients decode a missing bool as false.
    stub.script(ASYNC_RESULT, envelope(data))
    result = api.upload_async_result("pre")
    assert (result.completed, result.file_id) == (False, "")


def test_async_result_numeric_file_id(stub: StubService, api: Api) -> None:
    stub.script(ASYNC_RESULT, envelope({"completed": True, "fileID": 4242}))
    assert api.upload_async_result("pre").file_id == "4242"


# --------------------------------------------------------------------------------------------------
# list, detail, delete, move


def _item(**changes: Any) -> dict[str, Any]:
    item = {
        "fileId": "f1",
        "filename": "a.png",
        "parentFileId": "p",
        "type": 0,
        "etag": "e" * 32,
        "size": 10,
        "status": 2,
        "createAt": "2025-03-03 16:38:26",
        "updateAt": "2025-03-03 16:38:26",
        "downloadURL": "https://vip.123pan.cn/1/f1.png",
        "userSelfURL": "https://img.example.com/f1.png",
        "totalTraffic": 0,
        "parentFilename": "img_oss",
        "extension": "png",
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not ...}


def test_list_null_file_list_for_an_empty_folder(stub: StubService, api: Api) -> None:
    # The reference's own copy/fail example answers an empty list as "list": null (Go's nil slice).
    stub.script(LIST, envelope({"lastFileId": "-1", "fileList": None}))
    page = api.list_files("p")
    assert page.files == [] and page.is_last


def test_list_with_null_data_is_an_empty_last_page(stub: StubService, api: Api) -> None:
    # The envelope's data is "any|null" (api-facts); an empty folder may come back as data: null.
    stub.script(LIST, envelope(None))
    page = api.list_files("p")
    assert page.files == [] and page.is_last


def test_list_last_file_id_as_number(stub: StubService, api: Api) -> None:
    # The cloud-drive list answers lastFileId as a number (-1 on the last page, OpenList's int64).
    stub.script(
        LIST,
        envelope({"lastFileId": 777, "fileList": [_item(fileId="f1")]}),
        envelope({"lastFileId": -1, "fileList": [_item(fileId="f2")]}),
    )
    assert [f.file_id for f in api.iter_files("p")] == ["f1", "f2"]
    second = json.loads(stub.calls(LIST)[1])
    assert second["lastFileId"] == "777"  # sent back as the documented string
    assert len(stub.calls(LIST)) == 2


def test_list_items_with_unknown_fields_and_loose_types(stub: StubService, api: Api) -> None:
    item = _item(fileId=123, size="2048", status="2", type="0", trashed=0, category=10)
    item["someNewField"] = {"nested": [1, 2]}
    stub.script(LIST, envelope({"lastFileId": "-1", "fileList": [item], "total": 1}))
    (entry,) = api.list_files("p").files
    assert (entry.file_id, entry.size, entry.status, entry.is_folder) == ("123", 2048, 2, False)


def test_detail_without_status_and_custom_domain_link(stub: StubService, api: Api) -> None:
    # api-facts: userSelfURL may be empty; a missing status is not a rejection (only > 100 is).
    stub.script(DETAIL, envelope(_item(status=..., userSelfURL=...)))
    remote = api.detail("f1")
    assert (remote.status, remote.rejected, remote.user_self_url) == (0, False, "")
    assert remote.download_url == "https://vip.123pan.cn/1/f1.png"


def test_detail_with_cloud_drive_id_casing(stub: StubService, api: Api) -> None:
    # The platform's cloud-drive detail spells them fileID / parentFileID; the image-bed reference
    # writes fileId. Either spelling names the same thing.
    item = _item(fileId=..., parentFileId=...)
    item.update(fileID="f1", parentFileID="p")
    stub.script(DETAIL, envelope(item))
    remote = api.detail("f1")
    assert (remote.file_id, remote.parent_file_id) == ("f1", "p")


@pytest.mark.parametrize("data", [None, {}, {"extra": 1}, []])
def test_delete_and_move_accept_any_success_data(stub: StubService, api: Api, data: Any) -> None:
    # The reference's examples answer data: null; another build may answer {} or leave it out.
    stub.script(DELETE, envelope(data))
    stub.script(MOVE, envelope(data))
    api.delete(["f1"])
    api.move(["f1"], "p")


def test_delete_without_data_key(stub: StubService, api: Api) -> None:
    body = {"code": 0, "message": "ok", "x-traceID": "t"}
    stub.script(DELETE, raw(200, json.dumps(body).encode(), "application/json"))
    api.delete(["f1"])


def test_task_ids_of_either_type(stub: StubService, api: Api) -> None:
    # Copy documents a string taskID, offline a number: either may come as the other.
    stub.script(COPY, envelope({"taskID": 123456}))
    stub.script(OFFLINE, envelope({"taskID": "403316"}))
    assert api.copy(["1"], "p").task_id == "123456"
    assert api.offline_download("https://example.com/a.png").task_id == 403316


def test_mkdir_null_list_is_no_folder(stub: StubService, api: Api) -> None:
    stub.script(MKDIR, envelope({"list": None}))
    assert api.mkdir("x") == []


# --------------------------------------------------------------------------------------------------
# The envelope and the gateway in front of it


def test_code_as_string(stub: StubService, api: Api) -> None:
    stub.script(DETAIL, envelope(_item(), code="0"))
    assert api.detail("f1").file_id == "f1"
    stub.script(DETAIL, envelope(None, code="5066", message="文件不存在"))
    with pytest.raises(NotFound):
        api.detail("f1")


def test_unknown_top_level_fields(stub: StubService, api: Api) -> None:
    stub.script(DETAIL, envelope(_item(), timestamp=1748504098, metadata={"gap": 500}))
    assert api.detail("f1").file_id == "f1"


def test_http_200_gateway_page_is_not_the_api(stub: StubService, api: Api) -> None:
    # A captive portal or WAF page answers 200 with HTML: no envelope, so no success, and asking
    # again gets the same page.
    stub.script(DETAIL, raw(200, b"<!doctype html><html><body>verify you are human</body></html>"))
    with pytest.raises(NotTheApi) as err:
        api.detail("f1")
    host = stub.url.removeprefix("http://")
    assert str(err.value) == (
        f"{host} is not the 123pan open API (it answered HTTP 200 OK with an HTML page: "
        "'<!doctype html><html><body>verify you are human</body></html>'); check "
        f"account.base_url ({stub.url}) and any proxy in between"
    )
    assert isinstance(err.value, ServerError) and not err.value.retryable
    assert len(stub.calls(DETAIL)) == 1


def test_http_401_plain_text_refreshes_the_token_once(stub: StubService, api: Api) -> None:
    stub.script(DETAIL, raw(401, b"Unauthorized", "text/plain"), envelope(_item()))
    assert api.detail("f1").file_id == "f1"
    assert len(stub.calls(TOKEN_PATH)) == 2  # the first token, then one refresh


def test_http_403_gateway_page_is_not_an_auth_error(stub: StubService, api: Api) -> None:
    # An IP block (the console has an IP blacklist) or a WAF: refreshing the token cannot help.
    stub.script(DETAIL, raw(403, b"<html><body>403 Forbidden</body></html>"))
    with pytest.raises(ServerError) as err:
        api.detail("f1")
    assert not isinstance(err.value, AuthError)
    assert "HTTP 403" in str(err.value)
    assert len(stub.calls(TOKEN_PATH)) == 1 and len(stub.calls(DETAIL)) == 1


def test_http_502_gateway_page_is_retried(stub: StubService, api: Api) -> None:
    stub.script(DETAIL, raw(502, GATEWAY_PAGE), envelope(_item()))
    assert api.detail("f1").file_id == "f1"
    assert len(stub.calls(DETAIL)) == 2


def test_http_429_plain_text_honours_retry_after_seconds(
    stub: StubService, api: Api, sleeps: list[float]
) -> None:
    stub.script(DETAIL, raw(429, b"Too Many Requests", "text/plain", **{"Retry-After": "3"}))
    stub.script(DETAIL, raw(429, b"", "text/plain", **{"Retry-After": "3"}), envelope(_item()))
    assert api.detail("f1").file_id == "f1"
    assert sleeps and max(sleeps) >= 3.0


def test_http_429_honours_retry_after_as_a_date(
    stub: StubService, api: Api, sleeps: list[float]
) -> None:
    # RFC 9110 allows Retry-After as an HTTP-date as well as seconds.
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    stub.script(DETAIL, raw(429, b"", "text/plain", **{"Retry-After": when}), envelope(_item()))
    assert api.detail("f1").file_id == "f1"
    assert sleeps and max(sleeps) >= 5.0


def test_http_503_honours_retry_after(stub: StubService, api: Api, sleeps: list[float]) -> None:
    # A service in maintenance answers 503 with Retry-After (RFC 9110, 10.2.3).
    stub.script(
        DETAIL, raw(503, b"maintenance", "text/plain", **{"Retry-After": "4"}), envelope(_item())
    )
    assert api.detail("f1").file_id == "f1"
    assert sleeps and max(sleeps) >= 4.0


@pytest.mark.parametrize(
    "reply",
    [
        # Code 429 with another text: the code decides, never the message (api-facts).
        envelope(None, 429, "API rate limit exceeded"),
        envelope(None, "429", "请求过于频繁,请稍后再试"),
        # Kong's rate-limiting plugin (the trace ids name kong): HTTP 429, JSON without a code.
        raw(429, b'{"message":"API rate limit exceeded"}', "application/json"),
    ],
)
def test_rate_limits_whatever_their_message(stub: StubService, api: Api, reply: Reply) -> None:
    stub.script(DETAIL, reply, envelope(_item()))
    assert api.detail("f1").file_id == "f1"
    assert len(stub.calls(DETAIL)) == 2


def test_body_code_429_with_retry_after(stub: StubService, api: Api, sleeps: list[float]) -> None:
    status, headers, body = envelope(None, 429, "请求太频繁")
    stub.script(DETAIL, (status, {**headers, "Retry-After": "2"}, body), envelope(_item()))
    assert api.detail("f1").file_id == "f1"
    assert max(sleeps) >= 2.0


# --------------------------------------------------------------------------------------------------
# access_token


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-23T15:48:37+08:00", datetime(2025, 3, 23, 15, 48, 37, tzinfo=CHINA)),
        # Go's RFC3339Nano (the service's stack answers through Go-style gateways).
        (
            "2025-03-23T15:48:37.123456789+08:00",
            datetime(2025, 3, 23, 15, 48, 37, 123456, tzinfo=CHINA),
        ),
        ("2025-03-23T07:48:37Z", datetime(2025, 3, 23, 15, 48, 37, tzinfo=CHINA)),
        ("2025-03-23T07:48:37.5Z", datetime(2025, 3, 23, 15, 48, 37, 500000, tzinfo=CHINA)),
        # No offset: the service's zone, as createAt/updateAt are written.
        ("2025-03-23T15:48:37", datetime(2025, 3, 23, 15, 48, 37, tzinfo=CHINA)),
        ("2025-03-23 15:48:37", datetime(2025, 3, 23, 15, 48, 37, tzinfo=CHINA)),
    ],
)
def test_expired_at_spellings(stub: StubService, api: Api, text: str, expected: datetime) -> None:
    stub.script(TOKEN_PATH, token_reply(text))
    assert api.tokens.current().expired_at == expected  # a fresh data folder: fetched


def test_access_token_with_extra_fields(stub: StubService, api: Api) -> None:
    status, headers, _ = token_reply()
    body = {
        "code": 0,
        "message": "ok",
        "data": {"accessToken": "t", "expiredAt": "2099-01-01T00:00:00+08:00", "tokenType": "x"},
        "x-traceID": "t",
    }
    stub.script(TOKEN_PATH, (status, headers, json.dumps(body).encode()))
    assert api.tokens.current().access_token == "t"
