"""The remote-image policy: kept links, links that are not images, and dead URLs remembered.

Against the emulator (its offline tasks really fetch) and a web server on loopback; the request log
shows what was sent. A dead URL is a loopback port nothing listens on: the service's fetch and
imgsync's own download are both refused, for real.
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsync.config import Settings, SyncSettings
from imgsync.engine.cached import CacheAnswers
from imgsync.engine.remote_policy import (
    FIRST_RETRY_S,
    KEPT,
    LONGEST_RETRY_S,
    NS_PER_S,
    backoff_ns,
    not_image_reason,
)
from imgsync.engine.uploader import Uploader
from imgsync.store.cache import Cache

from ..support import Control, image_bytes, serving_folder

OFFLINE_POST = "/api/v1/oss/offline/download"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dead_url() -> str:
    return f"http://127.0.0.1:{closed_port()}/gone/photo.png"


@pytest.fixture
def remote(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings for remote tests: loopback downloads allowed, the service retries little."""

    def make(**sync: Any) -> Settings:
        settings = make_settings(upload={"allow_private_urls": True, "poll_deadline": 20.0})
        return dataclasses.replace(settings, sync=SyncSettings(**sync))

    return make


@pytest.fixture(autouse=True)
def quick_offline(control: Control) -> None:
    control.config(offline_retries=0)


def upload_url(settings: Settings, url: str) -> Any:
    with Uploader.from_settings(settings) as up:
        return up.upload_url(url)


class Pages:
    """A web server on loopback that answers every GET with one page (and counts them)."""

    def __init__(self, content_type: str, body: bytes) -> None:
        pages = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                pages.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def page_server() -> Iterator[Pages]:
    server = Pages("text/html; charset=utf-8", b"<!doctype html><title>a page</title>")
    yield server
    server.close()


# ------------------------------------------------------------------------------------ keep


def test_keep_makes_no_request_for_a_remote_image(
    control: Control, remote: Callable[..., Settings], page_server: Pages
) -> None:
    result = upload_url(remote(remote="keep"), page_server.base + "/cat.png")
    assert (result.kind, result.status, result.url, result.error) == (
        "remote",
        "skipped",
        None,
        KEPT,
    )
    assert control.requests() == [] and page_server.hits == 0


# ---------------------------------------------------------------------- links that are not images


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "not an image: youtube.com serves pages and videos, not images",
        ),
        (
            "https://youtu.be/dQw4w9WgXcQ",
            "not an image: youtu.be serves pages and videos, not images",
        ),
        (
            "https://x.com/someone/status/1",
            "not an image: x.com serves pages and videos, not images",
        ),
        (
            "https://m.bilibili.com/video/BV1xx",
            "not an image: bilibili.com serves pages and videos, not images",
        ),
        ("https://example.com/clips/intro.MP4?t=3", "not an image: a .mp4 file"),
        ("https://example.com/paper.pdf", "not an image: a .pdf file"),
        ("https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg", None),  # YouTube's image CDN
        ("https://pbs.twimg.com/media/abc.png", None),
        ("https://notyoutube.com/a.png", None),  # a host that only ends like one
        ("https://example.com/x.com/a.png", None),  # the path is not the host
    ],
)
def test_hosts_of_pages_and_videos_are_known_by_host(url: str, reason: str | None) -> None:
    assert not_image_reason(url) == reason


def test_a_video_link_is_skipped_without_any_request(
    control: Control, remote: Callable[..., Settings]
) -> None:
    result = upload_url(remote(), "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert result.status == "skipped"
    assert result.error == "not an image: youtube.com serves pages and videos, not images"
    assert control.requests() == []


def test_a_link_serving_a_page_is_skipped_and_remembered(
    control: Control, remote: Callable[..., Settings], page_server: Pages
) -> None:
    url = page_server.base + "/article"  # no image extension: imgsync fetches it itself
    first = upload_url(remote(), url)
    assert (first.status, first.error) == ("skipped", "not an image: the link serves text/html")
    log = control.requests()
    second = upload_url(remote(), url)
    assert second.status == "skipped"
    assert second.error.startswith(
        "not an image: the link serves text/html (found earlier; looked at again after "
    )
    assert page_server.hits == 1 and control.requests() == log


# ------------------------------------------------------------------------------------ dead URLs


def test_a_dead_url_gets_one_task_then_none_until_retry_failed(
    control: Control, remote: Callable[..., Settings], dead_url: str
) -> None:
    first = upload_url(remote(), dead_url)
    assert first.status == "failed"
    assert first.error == "download failed: 127.0.0.1 refused the connection"
    assert len(control.requests(OFFLINE_POST, method="POST")) == 1
    log = control.requests()

    before = time.time()
    second = upload_url(remote(), dead_url)
    assert second.status == "failed" and not second.unreachable
    retry_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(before + FIRST_RETRY_S))
    retry_late = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + FIRST_RETRY_S))
    assert second.error in {
        f"failed earlier (download failed: 127.0.0.1 refused the connection); retry after {when}"
        ", or now with --retry-failed"
        for when in (retry_at, retry_late)
    }
    assert control.requests() == log  # no request at all, let alone a second task

    third = upload_url(remote(retry_failed=True), dead_url)
    assert third.status == "failed"
    assert len(control.requests(OFFLINE_POST, method="POST")) == 2


@pytest.mark.slow(3)
def test_the_back_off_doubles_per_failure_up_to_a_week(
    remote: Callable[..., Settings], dead_url: str
) -> None:
    assert [backoff_ns(n) // NS_PER_S for n in (1, 2, 3, 4)] == [3600, 7200, 14400, 28800]
    assert backoff_ns(8) // NS_PER_S == 128 * 3600  # 5⅓ days
    assert backoff_ns(9) // NS_PER_S == LONGEST_RETRY_S == 7 * 24 * 3600  # not 256 h: a week
    assert backoff_ns(1000) // NS_PER_S == LONGEST_RETRY_S
    settings = remote(retry_failed=True)
    for _ in range(3):
        upload_url(settings, dead_url)
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        attempt = cache.attempts.get(dead_url)
    assert attempt is not None and attempt.failures == 3 and attempt.task_id == ""
    assert attempt.next_try_ns - attempt.last_try_ns == 4 * 3600 * NS_PER_S


def test_a_dead_url_is_tried_again_once_its_back_off_has_passed(
    control: Control, remote: Callable[..., Settings], dead_url: str
) -> None:
    settings = remote()
    upload_url(settings, dead_url)
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        now = CacheAnswers(settings, cache)
        assert now.answer_url(dead_url) is not None
        later = CacheAnswers(settings, cache, clock_ns=lambda: time.time_ns() + backoff_ns(1))
        assert later.answer_url(dead_url) is None  # to be tried: the uploader's business


def test_a_success_forgets_the_failures(
    control: Control, remote: Callable[..., Settings], tmp_path: Path
) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/back.png"
    settings = remote()
    assert upload_url(settings, url).status == "failed"

    data = image_bytes("png", "back again", 3000)
    (tmp_path / "back.png").write_bytes(data)
    with serving_folder(tmp_path, port):  # the host is back
        result = upload_url(remote(retry_failed=True), url)
    assert result.status == "migrated", result.error
    assert control.fetch(result.url) == data
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        assert cache.attempts.get(url) is None
    assert upload_url(settings, url).status == "cached"


def test_a_task_still_running_is_asked_again_never_started_twice(
    control: Control, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = image_bytes("png", "slow migration", 3000)
    (tmp_path / "late.png").write_bytes(data)
    with serving_folder(tmp_path) as (base, _hits):
        url = f"{base}/late.png"
        control.config(hold_tasks=True)  # the service's task waits
        impatient = make_settings(upload={"poll_deadline": 1.5})
        first = upload_url(impatient, url)
        assert first.status == "failed"
        assert "did not finish within 1.5 s; the next run picks it up" in first.error
        assert len(control.requests(OFFLINE_POST, method="POST")) == 1

        control.config(hold_tasks=False)
        second = upload_url(make_settings(), url)
    assert second.status == "migrated", second.error
    assert control.fetch(second.url) == data
    assert len(control.requests(OFFLINE_POST, method="POST")) == 1  # the first task, asked
    assert len(control.images()) == 1


def test_an_answer_from_memory_loads_no_http_library(
    remote: Callable[..., Settings], dead_url: str, tmp_path: Path
) -> None:
    settings = remote()
    upload_url(settings, dead_url)
    config = settings.config_path
    code = (
        "import sys\n"
        "from imgsync.jobs.upload import upload_items\n"
        "from imgsync.config import load_settings\n"
        f"settings = load_settings({str(config)!r})\n"
        f"(result,) = upload_items(settings, [{dead_url!r}])\n"
        "print(result.status, result.error.split(';')[0])\n"
        "print(sorted({'requests', 'urllib3', 'imgsync.client.api'} & set(sys.modules)))\n"
    )
    env = {**os.environ, "IMGSYNC_DATA_DIR": str(settings.data_dir)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    answered, loaded = out.stdout.splitlines()
    assert answered == ("failed failed earlier (download failed: 127.0.0.1 refused the connection)")
    assert loaded == "[]"


def test_how_long_an_answer_without_a_request_holds(
    remote: Callable[..., Settings], dead_url: str
) -> None:
    """What a job needs to stamp a note of dead links clean until one of them is due again."""
    settings = remote()
    upload_url(settings, dead_url)
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        attempt = cache.attempts.get(dead_url)
        assert attempt is not None
        answers = CacheAnswers(settings, cache)
        assert answers.settled_until_ns(dead_url) == attempt.next_try_ns
        assert answers.settled_until_ns("https://youtu.be/x") == 0  # never an image
        assert answers.settled_until_ns("https://elsewhere.test/new.png") is None  # to be tried
        for changed in (remote(remote="keep"), remote(retry_failed=True)):
            assert CacheAnswers(changed, cache).settled_until_ns(dead_url) is None
        due = CacheAnswers(settings, cache, clock_ns=lambda: attempt.next_try_ns)
        assert due.settled_until_ns(dead_url) is None
