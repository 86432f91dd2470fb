"""The one retry loop against injected faults: what is retried, how often, and what is not."""

from __future__ import annotations

import socket
import threading

import pytest

from imgsync.client.api import Api
from imgsync.client.failures import FIRM_ATTEMPTS
from imgsync.errors import (
    EXIT_AUTH,
    EXIT_UNREACHABLE,
    ApiError,
    AuthError,
    NetworkError,
    NotFound,
    RateLimited,
    ServerError,
    StillVerifying,
)

from ..support import CLIENT_SECRET, md5, png_like, settings_for
from .conftest import upload

DETAIL = "/api/v1/oss/file/detail"
LIST = "/api/v1/oss/file/list"
COMPLETE = "/upload/v1/oss/file/upload_complete"
THREADS = 8


def scripted_run(api: Api, tag: str) -> list[str]:
    """A realistic sequence touching most endpoints; returns the uploaded file ids."""
    folder = api.mkdir(f"run-{tag}", "")[0].dir_id
    target = api.mkdir(f"target-{tag}", "")[0].dir_id
    ids = []
    for i in range(4):
        data = png_like(f"{tag}-{i}", 3000)
        ids.append(upload(api, folder, f"{tag}-{i}.png", data))
    assert sorted(f.filename for f in api.iter_files(folder)) == [
        f"{tag}-{i}.png" for i in range(4)
    ]
    for file_id in ids:
        assert api.detail(file_id).file_id == file_id
    api.move(ids[:2], target)
    assert {f.file_id for f in api.iter_files(target)} == set(ids[:2])
    api.delete([ids[3]])
    return ids


def test_random_faults_on_30_percent_of_requests_do_not_stop_a_run(control, tmp_path) -> None:
    control.config(slice_size=1024, async_polls=1)
    control.faults(
        random={"seed": 20250301, "rate": 0.3, "actions": ["http:500", "code:429", "reset"]}
    )
    settings = settings_for(control.base_url, tmp_path, max_attempts=12)
    with Api.from_settings(settings) as api:
        ids = scripted_run(api, "chaos")
    log = control.requests()
    faulted = [r for r in log if r.get("fault")]
    assert len(faulted) >= 10, "the fault plan did not bite; the test proves nothing"
    # every file that should exist exists exactly once
    control.faults()
    names = [f["filename"] for f in control.state()]
    for i in (0, 1, 2):
        assert names.count(f"chaos-{i}.png") == 1
    assert "chaos-3.png" not in names
    assert len(ids) == 4


def test_one_401_mid_run_causes_exactly_one_refresh(control, settings) -> None:
    control.faults([{"match": LIST, "nth": 2, "times": 1, "action": "code:401"}])
    with Api.from_settings(settings) as api:
        api.list_files()
        first = api.tokens.token()
        api.list_files()  # refused once, refreshed, retried
        api.list_files()
        second = api.tokens.token()
    assert first != second
    assert control.token_requests() == 2  # the first token, and one refresh
    assert [r["code"] for r in control.requests(LIST)] == [0, 401, 0, 0]


def test_a_second_401_right_after_a_refresh_is_fatal(control, settings) -> None:
    control.faults([{"match": LIST, "times": 5, "action": "code:401"}])
    with Api.from_settings(settings) as api, pytest.raises(AuthError) as err:
        api.list_files()
    assert err.value.exit_code == EXIT_AUTH
    assert control.token_requests() == 2
    assert len(control.requests(LIST)) == 2
    assert err.value.trace_id and err.value.endpoint == "list"


def test_apply_then_reset_on_complete_leaves_exactly_one_object(control, api) -> None:
    control.faults([{"match": COMPLETE, "nth": 1, "times": 1, "action": "apply-then-reset"}])
    data = png_like("applied", 4000)
    file_id = upload(api, "", "applied.png", data)
    assert [r["fault"] for r in control.requests(COMPLETE)][0] == "apply-then-reset"
    assert len(control.requests(COMPLETE)) == 2
    same = [f for f in control.state() if f.get("etag") == md5(data)]
    assert len(same) == 1 and same[0]["fileId"] == file_id


def test_still_verifying_is_raised_not_retried(control, api) -> None:
    control.faults([{"match": COMPLETE, "nth": 1, "times": 1, "action": "code:20103"}])
    data = png_like("verify", 500)
    created = api.create("", "v.png", md5(data), len(data))
    url = api.get_upload_url(created.preupload_id, 1)
    api.put_slice(url.presigned_url, data, len(data))
    with pytest.raises(StillVerifying) as err:
        api.upload_complete(created.preupload_id)
    assert err.value.code == 20103 and err.value.trace_id
    assert len(control.requests(COMPLETE)) == 1
    assert api.upload_complete(created.preupload_id).file_id


def test_persistent_5xx_becomes_server_error_after_the_budget(control, api, settings) -> None:
    file_id = upload(api, "", "x.png", png_like("x", 10))
    control.faults([{"match": DETAIL, "times": 100, "action": "http:502"}])
    with pytest.raises(ServerError) as err:
        api.detail(file_id)
    assert err.value.http_status == 502 and err.value.exit_code == EXIT_UNREACHABLE
    assert len(control.requests(DETAIL)) == settings.network.max_attempts


def test_persistent_429_becomes_rate_limited(control, api, settings) -> None:
    control.faults([{"match": LIST, "times": 100, "action": "code:429"}])
    with pytest.raises(RateLimited) as err:
        api.list_files()
    assert err.value.code == 429 and err.value.endpoint == "list"
    assert len(control.requests(LIST)) == settings.network.max_attempts


def test_business_errors_are_not_retried(control, api) -> None:
    with pytest.raises(NotFound) as err:
        api.detail("no-such-file")
    assert err.value.code == 5066 and err.value.trace_id and "detail" in str(err.value)
    api.mkdir("dup", "")
    with pytest.raises(ApiError) as dup:
        api.mkdir("dup", "")
    assert dup.value.code == 1
    assert len(control.requests(DETAIL)) == 1
    assert len(control.requests("/mkdir")) == 2


def test_a_slow_answer_times_out_and_is_retried(control, tmp_path) -> None:
    settings = settings_for(control.base_url, tmp_path, read_timeout=0.3)
    control.faults([{"match": LIST, "nth": 1, "times": 1, "action": "delay:1.5"}])
    with Api.from_settings(settings) as api:
        api.list_files()
    assert len(control.requests(LIST)) == 2


def test_unreachable_host_is_a_network_error_naming_the_host(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    settings = settings_for(f"http://127.0.0.1:{port}", tmp_path)
    with Api.from_settings(settings, sleep=sleeps.append) as api, pytest.raises(NetworkError) as e:
        api.list_files()
    assert f"127.0.0.1:{port} refused the connection" in str(e.value)
    assert e.value.exit_code == EXIT_UNREACHABLE
    # Refused is not a blip: one more try, not max_attempts (tests/client/test_connection_errors).
    assert len(sleeps) == FIRM_ATTEMPTS - 1
    assert all(0 < s <= settings.network.backoff_max for s in sleeps)


def test_wrong_credentials_are_an_auth_error_with_trace(control, tmp_path) -> None:
    settings = settings_for(control.base_url, tmp_path, client_secret="wrong")
    with Api.from_settings(settings) as api, pytest.raises(AuthError) as err:
        api.list_files()
    assert err.value.exit_code == EXIT_AUTH
    assert err.value.trace_id and err.value.endpoint == "access_token"
    assert control.token_requests() == 1  # not retried
    assert CLIENT_SECRET not in str(err.value)


def test_threads_refused_at_once_share_one_refresh(control, api) -> None:
    api.list_files(limit=1)  # a token is in use
    control.reset()  # the service forgets every token: all in-flight callers get 401 now
    barrier = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            for _ in range(3):
                api.list_files(limit=1)
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert failures == []
    assert control.token_requests() == 1
    codes = [r["code"] for r in control.requests(LIST)]
    assert codes.count(0) == THREADS * 3 and 401 in codes and set(codes) <= {0, 401}
