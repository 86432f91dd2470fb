"""Tokens, the envelope, the Platform header, unknown paths and per-endpoint rate limits."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from ..support import wait_for
from .conftest import Bed

LIST = "/api/v1/oss/file/list"
LIST_BODY = {"limit": 10, "type": 1}


def test_access_token_answers_token_and_china_time_expiry(bed: Bed) -> None:
    before = datetime.now().astimezone()
    answer = bed.call(
        "/api/v1/access_token", {"clientID": "demo", "clientSecret": "demo"}, token=None
    )
    assert set(answer) == {"code", "message", "data", "x-traceID"}
    assert answer["code"] == 0 and answer["message"] == "ok"
    data = answer["data"]
    assert set(data) == {"accessToken", "expiredAt"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", data["expiredAt"])
    lifetime = datetime.fromisoformat(data["expiredAt"]) - before
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30, seconds=5)
    assert bed.call(LIST, LIST_BODY, token=data["accessToken"])["code"] == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"clientID": "demo", "clientSecret": "x"}, 401),  # wrong credentials
        ({"clientID": "demo"}, 1),
        ({"clientID": "demo", "clientSecret": 5}, 1),
        (None, 1),
    ],
)
def test_access_token_refuses_wrong_credentials_and_bad_bodies(
    bed: Bed, body: dict[str, Any] | None, code: int
) -> None:
    answer = bed.call("/api/v1/access_token", body, token=None)
    assert answer["code"] == code and answer["data"] is None


def test_every_response_has_its_own_trace_id(bed: Bed) -> None:
    ids = {bed.call(LIST, LIST_BODY)["x-traceID"] for _ in range(5)}
    ids.add(bed.call(LIST, {"type": 1})["x-traceID"])
    assert len(ids) == 6


def test_missing_or_bad_token_is_code_401(bed: Bed) -> None:
    assert bed.call(LIST, LIST_BODY, token=None)["code"] == 401
    assert bed.call(LIST, LIST_BODY, token="not-a-token")["code"] == 401
    response = bed.raw("POST", LIST, json=LIST_BODY, headers={"Authorization": bed.token})
    assert response.json()["code"] == 401  # the Bearer scheme is required


def test_platform_header_is_required(bed: Bed) -> None:
    response = bed.http.post(
        bed.base_url + LIST,
        json=LIST_BODY,
        headers={"Authorization": f"Bearer {bed.token}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["code"] == 1
    assert "Platform" in response.json()["message"]


def test_fourth_token_invalidates_the_first(bed: Bed) -> None:
    tokens = [bed.new_token() for _ in range(3)]
    for token in tokens:
        assert bed.call(LIST, LIST_BODY, token=token)["code"] == 0
    fourth = bed.new_token()
    assert bed.call(LIST, LIST_BODY, token=tokens[0])["code"] == 401
    for token in [*tokens[1:], fourth]:
        assert bed.call(LIST, LIST_BODY, token=token)["code"] == 0


def test_token_expires_after_its_ttl(bed: Bed) -> None:
    bed.config(token_ttl_s=1)
    token = bed.new_token()
    assert bed.call(LIST, LIST_BODY, token=token)["code"] == 0
    wait_for(lambda: bed.call(LIST, LIST_BODY, token=token)["code"] == 401, timeout=5)
    assert bed.call(LIST, LIST_BODY, token=bed.new_token())["code"] == 0


def test_unknown_path_is_http_404_with_envelope(bed: Bed) -> None:
    response = bed.raw("POST", "/api/v1/oss/file/nope", json={})
    assert response.status_code == 404
    assert response.json()["code"] == 404 and "x-traceID" in response.json()


def test_wrong_method_is_refused(bed: Bed) -> None:
    response = bed.raw("GET", LIST)
    assert response.status_code == 405
    response = bed.raw("POST", "/api/v1/oss/file/detail", json={"fileID": "x"})
    assert response.status_code == 405


def test_body_must_be_a_json_object(bed: Bed) -> None:
    response = bed.raw(
        "POST", LIST, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.json()["code"] == 1
    assert bed.call(LIST, [1, 2])["code"] == 1


def test_rate_limit_answers_429_per_path(bed: Bed) -> None:
    bed.config(qps={LIST: 1})
    codes = [bed.call(LIST, LIST_BODY)["code"] for _ in range(2)]
    assert codes == [0, 429]
    assert bed.log(LIST)[-1]["status"] == 200  # the code is in the body, not the HTTP status
    # another path has its own budget
    assert bed.get("/api/v1/oss/file/detail", {"fileID": "nope"})["code"] == 5066
    # and the bucket refills
    wait_for(lambda: bed.call(LIST, LIST_BODY)["code"] == 0, timeout=5)


def test_rate_limit_message_is_the_documented_one(bed: Bed) -> None:
    bed.config(qps={"*": 1})
    answers = [bed.call(LIST, LIST_BODY) for _ in range(2)]
    assert answers[1]["code"] == 429 and answers[1]["message"] == "请求太频繁"


def test_latency_is_added_to_api_requests(bed: Bed) -> None:
    bed.config(latency_ms=300)
    started = time.monotonic()
    bed.call(LIST, LIST_BODY)
    assert time.monotonic() - started >= 0.3
