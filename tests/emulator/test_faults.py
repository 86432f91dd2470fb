"""Scripted and seeded-random faults: every action, call counting, and what is never faulted."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from ..support import png_like as png
from .conftest import Bed

LIST = "/api/v1/oss/file/list"
LIST_BODY = {"limit": 10, "type": 1}
MKDIR = "/upload/v1/oss/file/mkdir"


def _list_codes(bed: Bed, count: int) -> list[int]:
    codes = []
    for _ in range(count):
        response = bed.raw("POST", LIST, json=LIST_BODY)
        codes.append(response.json()["code"])
    return codes


def test_http_action_answers_that_status_and_does_no_work(bed: Bed) -> None:
    bed.login()
    bed.faults({"match": "mkdir", "action": "http:503"})
    response = bed.raw("POST", MKDIR, json={"name": "x", "parentID": "", "type": 1})
    assert response.status_code == 503 and response.json()["code"] == 503
    assert bed.files() == []
    entry = bed.log(MKDIR)[-1]
    assert (entry["status"], entry["code"], entry["fault"]) == (503, 503, "http:503")
    assert bed.mkdir("x")  # the rule hit once


@pytest.mark.parametrize(("code", "message"), [(429, "请求太频繁"), (20103, "文件正在校验中")])
def test_code_action_answers_http_200_with_that_code(bed: Bed, code: int, message: str) -> None:
    bed.login()
    bed.faults({"match": LIST, "action": f"code:{code}"})
    answer = bed.call(LIST, LIST_BODY)
    assert answer["code"] == code and answer["message"].startswith(message)
    assert answer["data"] is None


@pytest.mark.parametrize(
    ("action", "made"),
    [("reset", []), ("apply-then-reset", ["made"])],
    ids=["reset does no work", "apply-then-reset does the work"],
)
def test_reset_actions_close_without_an_answer(bed: Bed, action: str, made: list[str]) -> None:
    bed.login()
    bed.faults({"match": "mkdir", "action": action})
    with pytest.raises(requests.ConnectionError):
        bed.raw("POST", MKDIR, json={"name": "made", "parentID": "", "type": 1})
    assert [f["filename"] for f in bed.files()] == made
    entry = bed.log(MKDIR)[-1]
    assert (entry["status"], entry["code"], entry["fault"]) == (None, None, action)


def test_delay_action_delays_then_answers(bed: Bed) -> None:
    bed.login()
    bed.faults({"match": LIST, "action": "delay:0.3"})
    started = time.monotonic()
    assert bed.call(LIST, LIST_BODY)["code"] == 0
    assert time.monotonic() - started >= 0.3
    assert bed.log(LIST)[-1]["fault"] == "delay:0.3"


def test_nth_and_times_pick_consecutive_matching_calls(bed: Bed) -> None:
    bed.login()
    bed.faults({"match": "/file/list", "nth": 2, "times": 2, "action": "code:429"})
    assert _list_codes(bed, 5) == [0, 429, 429, 0, 0]


def test_times_minus_one_hits_forever_and_method_filters(bed: Bed) -> None:
    bed.login()
    bed.faults({"match": LIST, "method": "GET", "action": "code:500"})
    assert _list_codes(bed, 2) == [0, 0]  # list is a POST
    bed.faults({"match": LIST, "method": "post", "times": -1, "action": "code:500"})
    assert _list_codes(bed, 3) == [500, 500, 500]


def test_first_hitting_rule_wins_and_all_rules_count(bed: Bed) -> None:
    bed.login()
    bed.faults(
        {"match": LIST, "nth": 1, "times": 1, "action": "code:401"},
        {"match": LIST, "nth": 1, "times": 2, "action": "code:429"},
    )
    assert _list_codes(bed, 3) == [401, 429, 0]


def test_put_faults(bed: Bed) -> None:
    data = png("put-faults")
    created = bed.create(data, "put.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    bed.faults({"method": "PUT", "action": "reset"})
    with pytest.raises(requests.ConnectionError):
        bed.put(url, data)
    assert bed.complete(created["preuploadID"])["code"] == 1  # the slice was not stored
    bed.faults({"method": "PUT", "action": "apply-then-reset"})
    with pytest.raises(requests.ConnectionError):
        bed.put(url, data)
    assert bed.complete(created["preuploadID"])["code"] == 0  # it was stored this time


def _a_put(bed: Bed) -> Callable[[], requests.Response]:
    """A slice PUT with a body the fault must drain before it answers."""
    data = png("put-503", 50_000)
    created = bed.create(data, "p.png")
    url = bed.upload_url(created["preuploadID"])["presignedURL"]
    return lambda: bed.put(url, data)


def _a_download(bed: Bed) -> Callable[[], requests.Response]:
    url = bed.detail(bed.upload(png("dl-fault"), "d.png"))["downloadURL"]
    return lambda: bed.http.get(url, timeout=10)


@pytest.mark.parametrize(
    ("request_of", "match", "status"),
    [(_a_put, "/_s3/", 503), (_a_download, "/dl/", 502)],
    ids=["put drains the body", "download"],
)
def test_http_fault_on_the_storage_side_answers_once(
    bed: Bed, request_of: Callable[[Bed], Callable[[], requests.Response]], match: str, status: int
) -> None:
    send = request_of(bed)
    bed.faults({"match": match, "action": f"http:{status}"})
    assert send().status_code == status
    assert send().status_code == 200


def test_apply_then_reset_on_complete_keeps_one_object(bed: Bed) -> None:
    data = png("lost-complete")
    created = bed.create(data, "lost.png")
    bed.send_slices(created["preuploadID"], data, created["sliceSize"])
    bed.faults({"match": "upload_complete", "action": "apply-then-reset"})
    with pytest.raises(requests.ConnectionError):
        bed.complete(created["preuploadID"])
    answer = bed.complete(created["preuploadID"])
    assert answer["code"] == 0 and answer["data"]["completed"] is True
    assert [f["fileId"] for f in bed.files()] == [answer["data"]["fileID"]]


def test_random_faults_are_reproducible_by_seed(bed: Bed) -> None:
    bed.login()
    plan = {"seed": 7, "rate": 0.5, "actions": ["code:429", "code:503"]}
    bed.faults(random=plan)
    first = _list_codes(bed, 30)
    bed.faults(random=plan)
    assert _list_codes(bed, 30) == first
    assert {0, 429, 503} == set(first)
    bed.faults(random={**plan, "seed": 8})
    assert _list_codes(bed, 30) != first


def test_rules_take_precedence_over_random(bed: Bed) -> None:
    bed.login()
    bed.faults(
        {"match": LIST, "action": "code:401"},
        random={"seed": 1, "rate": 1.0, "actions": ["code:429"]},
    )
    assert _list_codes(bed, 2) == [401, 429]


@pytest.mark.parametrize(
    "plan",
    [
        {"rules": [{"action": "explode"}]},
        {"rules": [{"action": "http:42"}]},
        {"rules": [{"action": "delay:forever"}]},
        {"rules": [{"action": "reset", "nth": 0}]},
        {"rules": [{"action": "reset", "times": 0}]},
        {"rules": [{"action": "reset", "match": 5}]},
        {"rules": "reset"},
        {"random": {"seed": 1, "rate": 2, "actions": ["reset"]}},
        {"random": {"seed": 1, "rate": 0.5, "actions": []}},
        {"surprise": []},
        [],
    ],
)
def test_invalid_plans_are_refused(bed: Bed, plan: object) -> None:
    response = bed.control("faults", plan)
    assert response.status_code == 400 and response.json()["error"]


def test_control_plane_is_never_faulted_or_logged(bed: Bed) -> None:
    bed.faults({"match": "", "times": -1, "action": "reset"})
    assert bed.control("state", method="GET").status_code == 200
    assert bed.control("config", {"latency_ms": 0}).status_code == 200
    assert bed.log() == []
    with pytest.raises(requests.ConnectionError):
        bed.raw("POST", LIST, json=LIST_BODY, token=None)
    assert [e["path"] for e in bed.log()] == [LIST]
