"""The client-side rate limiter against the emulator's own per-endpoint limit."""

from __future__ import annotations

from imgsync.client.api import Api

from ..support import UNLIMITED, settings_for

DETAIL_QPS = 5
CALLS = 8


def test_client_spacing_keeps_under_the_service_limit(control, tmp_path, api) -> None:
    file_id = api.mkdir("x", "")[0].dir_id
    control.config(qps={"/api/v1/oss/file/detail": DETAIL_QPS})
    settings = settings_for(
        control.base_url, tmp_path / "limited", qps={**UNLIMITED, "detail": DETAIL_QPS}
    )
    with Api.from_settings(settings) as limited:
        for _ in range(CALLS):
            limited.detail(file_id)
    calls = control.requests("/file/detail")
    assert [r["code"] for r in calls] == [0] * CALLS  # not one 429: nothing had to be retried
    times = [r["time"] for r in calls]
    # CALLS calls spaced 1/qps apart span (CALLS - 1)/qps; single gaps may look shorter when the
    # server stamps one arrival late, so the span is what is checked (with a little slack).
    assert times[-1] - times[0] >= (CALLS - 1) / DETAIL_QPS - 0.05


def test_without_the_limiter_the_service_answers_429_and_the_loop_copes(control, tmp_path) -> None:
    # Backoff long enough to outlast the service's one-second window, short enough for a test.
    settings = settings_for(control.base_url, tmp_path, backoff_initial=0.1, backoff_max=0.5)
    with Api.from_settings(settings) as api:
        file_id = api.mkdir("y", "")[0].dir_id
        control.config(qps={"/api/v1/oss/file/detail": DETAIL_QPS})
        for _ in range(CALLS * 2):
            api.detail(file_id)  # qps 0 on the client: bursts, 429s, backoff, success
    codes = [r["code"] for r in control.requests("/file/detail")]
    assert codes.count(0) == CALLS * 2 and 429 in codes


def test_every_api_of_one_process_shares_one_limiter(control, tmp_path, api) -> None:
    """The service counts per client id: two Api objects (say a watcher's and a server's) must
    not each take the whole allowance."""
    file_id = api.mkdir("z", "")[0].dir_id
    control.config(qps={"/api/v1/oss/file/detail": DETAIL_QPS})
    settings = settings_for(
        control.base_url, tmp_path / "shared", qps={**UNLIMITED, "detail": DETAIL_QPS}
    )
    with Api.from_settings(settings) as first, Api.from_settings(settings) as second:
        for _ in range(CALLS // 2):
            first.detail(file_id)
            second.detail(file_id)
    calls = control.requests("/file/detail")
    assert [r["code"] for r in calls] == [0] * CALLS
    times = [r["time"] for r in calls]
    assert times[-1] - times[0] >= (CALLS - 1) / DETAIL_QPS - 0.05
