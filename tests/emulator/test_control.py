"""The control plane: request log, reset, config, state, review and errors (docs/contract.md)."""

from __future__ import annotations

import pytest

from ..support import png_like as png
from .conftest import Bed

LIST = "/api/v1/oss/file/list"
DETAIL = "/api/v1/oss/file/detail"


def test_request_log_records_what_went_over_the_wire(bed: Bed) -> None:
    token = bed.login()
    bed.call(LIST, {"limit": 5, "type": 1})
    bed.get(DETAIL, {"fileID": "nope"})
    entries = bed.log()
    assert [e["path"] for e in entries] == ["/api/v1/access_token", LIST, DETAIL]
    login, listing, detail = entries
    assert set(listing) >= {"time", "method", "path", "query", "headers", "json", "status", "code"}
    assert login["json"] == {"clientID": "demo", "clientSecret": "demo"}
    assert listing["method"] == "POST" and listing["json"] == {"limit": 5, "type": 1}
    assert listing["headers"]["Authorization"] == "Bearer <redacted>"
    assert listing["headers"]["Platform"] == "open_platform"
    assert token not in str(entries)
    assert (listing["status"], listing["code"]) == (200, 0)
    assert detail["method"] == "GET" and detail["query"] == {"fileID": "nope"}
    assert detail["json"] is None and detail["code"] == 5066
    assert login["time"] <= listing["time"] <= detail["time"]


def test_request_log_covers_puts_and_downloads(bed: Bed) -> None:
    data = png("logged")
    url = bed.detail(bed.upload(data, "logged.png"))["downloadURL"]
    bed.http.get(url, timeout=10)
    (put,) = bed.log("/_s3/")
    assert put["method"] == "PUT" and put["status"] == 200 and put["code"] is None
    assert put["headers"]["Content-Length"] == str(len(data)) and put["json"] is None
    assert "X-Amz-Expires" in put["query"] and "X-Amz-Signature" in put["query"]
    (download,) = bed.log("/dl/")
    assert download["method"] == "GET" and download["status"] == 200


def test_request_log_can_be_cleared(bed: Bed) -> None:
    bed.login()
    assert bed.log()
    assert bed.control("requests", method="DELETE").status_code == 200
    assert bed.log() == []


def test_reset_forgets_everything(bed: Bed) -> None:
    old_token = bed.login()
    bed.upload(png("forgotten"), "f.png")
    bed.config(latency_ms=1, slice_size=1234)
    bed.faults({"match": "nothing-matches-this", "action": "reset"})
    assert bed.set("reset", {}) == {"ok": True}
    assert bed.files() == [] and bed.log() == []
    assert bed.control("config", method="GET").json()["slice_size"] == 104857600
    assert bed.control("faults", method="GET").json()["rules"] == []
    assert bed.call(LIST, {"limit": 5, "type": 1}, token=old_token)["code"] == 401


def test_config_answers_the_whole_config_and_validates(bed: Bed) -> None:
    config = bed.config(async_polls=2, qps={"/api/v1/oss/file/list": 3})
    assert config["async_polls"] == 2 and config["qps"] == {"/api/v1/oss/file/list": 3.0}
    assert set(config) >= {
        "latency_ms",
        "slice_size",
        "async_polls",
        "qps",
        "token_ttl_s",
        "url_ttl_s",
    }
    assert bed.control("config", method="GET").json() == config


@pytest.mark.parametrize(
    "change",
    [
        {"latency": 5},
        {"latency_ms": -1},
        {"slice_size": 0},
        {"async_polls": "2"},
        {"token_ttl_s": 0},
        {"qps": {"list": 2}},
        {"qps": {"/api/v1/oss/file/list": -1}},
        {"hold_tasks": "yes"},
    ],
)
def test_bad_config_is_refused(bed: Bed, change: dict) -> None:
    response = bed.control("config", change)
    assert response.status_code == 400 and response.json()["error"]


def test_state_lists_every_folder_and_file_as_list_does(bed: Bed) -> None:
    folder = bed.mkdir("outer")
    inner = bed.mkdir("inner", folder)
    file_id = bed.upload(png("state"), "s.png", inner)
    files = bed.files()
    assert [f["fileId"] for f in files] == [folder, inner, file_id]
    assert files[2] == bed.listing(inner)["fileList"][0]


def test_review_is_validated(bed: Bed) -> None:
    assert bed.control("review", {"etag": "", "status": 150}).status_code == 400
    assert bed.control("review", {"etag": "a" * 32, "status": "150"}).status_code == 400


def test_unknown_control_endpoint_and_method(bed: Bed) -> None:
    assert bed.control("nothing", {}).status_code == 404
    assert bed.control("reset", method="GET").status_code == 405
    assert (
        bed.http.post(f"{bed.base_url}/_emulator/config", data=b"{", timeout=5).status_code == 400
    )
