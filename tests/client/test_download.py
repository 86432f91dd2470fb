"""The image downloader (imgsync.client.download) over real HTTP on 127.0.0.1.

A small scripted web server stands in for an image host: each path answers from its queue of
replies (the last one repeats), and every request it saw is recorded. The guard's own address rules
are tested with the engine (tests/engine/test_private_urls.py); here the guard is on only where it
is the subject, and off (``allow_private_urls``) for everything served from loopback.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from imgsync.client.download import (
    DOWNLOAD_ATTEMPTS,
    Downloaded,
    Downloader,
    DownloadError,
    PrivateAddressError,
)
from imgsync.client.session import USER_AGENT
from imgsync.config import Settings, UploadSettings
from imgsync.errors import ItemError, NotAnImage

from ..loopback import LoopbackServer
from ..support import png_like

CAP = 100_000
TIMEOUT = 5.0
# Long enough that a test's short download timeout has passed, short enough to end the test soon.
STALL_S = 1.5
SECRET = "tok-3f9a1c"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    length: bool = True  # send Content-Length (else the body ends with the connection)
    pieces: int = 1  # body written in this many parts, ``gap`` seconds apart
    gap: float = 0.0


class ImageHost:
    """A loopback web server answering scripted replies per path."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                reply = host.next(self.path, dict(self.headers))
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.length:
                    self.send_header("Content-Length", str(len(reply.body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                size = max(-(-len(reply.body) // reply.pieces), 1)
                for start in range(0, len(reply.body), size):
                    self.wfile.write(reply.body[start : start + size])
                    self.wfile.flush()
                    time.sleep(reply.gap)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LoopbackServer(Handler).start()
        self.base = self.server.url

    def script(self, path: str, *replies: Reply) -> str:
        with self.lock:
            self.replies[path] = list(replies)
        return self.base + path

    def next(self, path: str, headers: dict[str, str]) -> Reply:
        with self.lock:
            self.seen.append((path, headers))
            queue = self.replies.get(path.split("?", 1)[0]) or [Reply(404, b"no such image")]
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def hits(self, path: str) -> int:
        with self.lock:
            return sum(1 for seen, _ in self.seen if seen.split("?", 1)[0] == path)

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def web() -> Iterator[ImageHost]:
    server = ImageHost()
    yield server
    server.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def downloader(sleeps: list[float]) -> Iterator[Downloader]:
    """Guard off: every image here is served from loopback."""
    with Downloader(connect_timeout=2.0, allow_private_urls=True, sleep=sleeps.append) as d:
        yield d


def get(d: Downloader, url: str, **kwargs: Any) -> Downloaded:
    return d.download(url, **{"max_bytes": CAP, "timeout": TIMEOUT, **kwargs})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ success


def test_download_returns_body_type_and_final_url(web: ImageHost, downloader: Downloader) -> None:
    data = png_like("downloaded", 3000)
    web.script("/img/cat.png", Reply(body=data, headers={"Content-Type": "image/png"}))
    url = web.script("/go", Reply(302, headers={"Location": "/img/cat.png?sig=abc"}))

    got = get(downloader, url + "?from=note", referer="https://blog.example/post")

    assert got == Downloaded(data, "image/png", web.base + "/img/cat.png")
    assert "sig=abc" not in got.final_url  # the query is not kept
    (_, headers) = [s for s in web.seen if s[0].startswith("/img/cat.png")][-1]
    assert headers["User-Agent"] == USER_AGENT
    assert headers["Referer"] == "https://blog.example/post"
    assert "Authorization" not in headers


def test_no_referer_unless_asked_and_no_content_type_is_empty(
    web: ImageHost, downloader: Downloader
) -> None:
    url = web.script("/plain", Reply(body=b"\x89PNG...."))
    got = get(downloader, url)
    assert got.content_type == "" and got.data == b"\x89PNG...."
    assert "Referer" not in web.seen[-1][1]


def test_a_body_without_length_is_read_to_the_end(web: ImageHost, downloader: Downloader) -> None:
    data = png_like("streamed", 200_000)
    url = web.script("/stream", Reply(body=data, length=False, pieces=4))
    assert get(downloader, url, max_bytes=len(data)).data == data


def test_threads_share_one_downloader(web: ImageHost, downloader: Downloader) -> None:
    bodies = {f"/t{i}": png_like(f"thread {i}", 5000) for i in range(8)}
    urls = {path: web.script(path, Reply(body=body)) for path, body in bodies.items()}
    got: dict[str, bytes] = {}

    def fetch(path: str) -> None:
        got[path] = get(downloader, urls[path]).data

    threads = [threading.Thread(target=fetch, args=(path,)) for path in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert got == bodies


# ------------------------------------------------------------------------------- what is retried


def test_a_5xx_is_tried_once_more(web: ImageHost, downloader: Downloader, sleeps) -> None:
    url = web.script("/flaky", Reply(503, b"busy"), Reply(body=b"fine"))
    assert get(downloader, url).data == b"fine"
    assert web.hits("/flaky") == 2
    assert len(sleeps) == 1  # the loop's backoff between the attempts


def test_a_persistent_5xx_fails_after_the_attempts(web: ImageHost, downloader: Downloader) -> None:
    url = web.script("/down", Reply(502, b"bad gateway"))
    with pytest.raises(DownloadError) as err:
        get(downloader, url)
    assert str(err.value) == "download failed: HTTP 502 Bad Gateway"
    assert web.hits("/down") == DOWNLOAD_ATTEMPTS


@pytest.mark.parametrize(
    ("status", "words"), [(404, "HTTP 404 Not Found"), (403, "HTTP 403 Forbidden"), (429, "429")]
)
def test_other_statuses_fail_at_once(
    web: ImageHost, downloader: Downloader, status: int, words: str
) -> None:
    url = web.script(f"/status{status}", Reply(status, b"nope"))
    with pytest.raises(DownloadError, match=words) as err:
        get(downloader, url)
    assert isinstance(err.value, ItemError)  # one image fails; the run goes on
    assert str(err.value).startswith("download failed: HTTP ")
    assert web.hits(f"/status{status}") == 1


def test_a_refused_connection_names_the_host(downloader: Downloader) -> None:
    with pytest.raises(DownloadError) as err:
        get(downloader, f"http://127.0.0.1:{free_port()}/x.png")
    assert str(err.value) == "download failed: 127.0.0.1 refused the connection"


def test_a_name_that_does_not_resolve(
    downloader: Downloader, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "images.nowhere.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(DownloadError) as err:
        get(downloader, "http://images.nowhere.test/a.png")
    assert str(err.value) == "download failed: could not resolve images.nowhere.test"


def test_a_host_that_does_not_answer_in_time(web: ImageHost, downloader: Downloader) -> None:
    url = web.script("/slow", Reply(body=b"late", delay=STALL_S))
    with pytest.raises(DownloadError) as err:
        get(downloader, url, timeout=0.3)
    assert str(err.value) == "download failed: 127.0.0.1 did not answer within 0.3 s"
    assert web.hits("/slow") == DOWNLOAD_ATTEMPTS


# ------------------------------------------------------------------------------------ the limits


def test_a_declared_length_over_the_cap_is_refused_before_reading(
    web: ImageHost, downloader: Downloader
) -> None:
    url = web.script("/big", Reply(body=b"x" * 5000))
    with pytest.raises(DownloadError) as err:
        get(downloader, url, max_bytes=4999)
    assert str(err.value) == "download is 5000 bytes, over the 4999-byte cap"


def test_a_body_over_the_cap_is_cut_off_while_reading(
    web: ImageHost, downloader: Downloader
) -> None:
    url = web.script("/endless", Reply(body=b"y" * 300_000, length=False, pieces=5))
    with pytest.raises(DownloadError) as err:
        get(downloader, url, max_bytes=104_857)
    assert str(err.value) == "download is over the 104857-byte cap"


def test_an_empty_body_fails(web: ImageHost, downloader: Downloader) -> None:
    url = web.script("/empty", Reply(body=b""))
    with pytest.raises(DownloadError, match="^download is empty$"):
        get(downloader, url)


def test_the_whole_body_must_arrive_within_the_timeout(web: ImageHost) -> None:
    """Each read is prompt, but together they take too long: the deadline, not the read timeout."""
    ticks = iter(range(1000))
    url = web.script("/trickle", Reply(body=b"z" * 300_000, length=False, pieces=6))
    with (
        Downloader(
            connect_timeout=2.0, allow_private_urls=True, clock=lambda: float(next(ticks))
        ) as d,
        pytest.raises(DownloadError, match="^download took longer than 2.5 s$"),
    ):
        d.download(url, max_bytes=CAP * 10, timeout=2.5)
    assert web.hits("/trickle") == 1  # too slow is not retried


def test_only_http_and_https(downloader: Downloader) -> None:
    with pytest.raises(DownloadError, match="unsupported URL scheme 'ftp'"):
        get(downloader, "ftp://example.com/a.png")


# ------------------------------------------------------------------------------------- the guard


def test_the_guard_refuses_loopback_before_connecting(web: ImageHost) -> None:
    url = web.script("/inside.png", Reply(body=b"ours only"))
    with Downloader(connect_timeout=2.0) as guarded, pytest.raises(PrivateAddressError) as err:
        get(guarded, url)
    assert str(err.value).startswith("refused: 127.0.0.1 is a loopback address; ")
    assert "set upload.allow_private_urls = true" in str(err.value)
    assert isinstance(err.value, ItemError)
    assert web.hits("/inside.png") == 0


def test_from_settings_follows_allow_private_urls(web: ImageHost, tmp_path: Path) -> None:
    url = web.script("/lan.png", Reply(body=b"lan image"))
    guarded = Settings(data_dir=tmp_path)
    opted_in = Settings(data_dir=tmp_path, upload=UploadSettings(allow_private_urls=True))
    with Downloader.from_settings(guarded) as d, pytest.raises(PrivateAddressError):
        get(d, url)
    with Downloader.from_settings(opted_in) as d:
        assert get(d, url).data == b"lan image"
    assert web.hits("/lan.png") == 1


# ----------------------------------------------------------------------------------- no secrets


def test_no_query_string_in_any_message_or_log(
    web: ImageHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    web.script("/secret.png", Reply(503, b"busy"))
    failures: list[str] = []
    attempts: list[Callable[[Downloader], object]] = [
        lambda d: get(d, web.base + f"/secret.png?token={SECRET}"),
        lambda d: get(d, f"http://127.0.0.1:{free_port()}/x.png?token={SECRET}"),
        lambda d: get(d, web.base + f"/missing.png?token={SECRET}"),
    ]
    with Downloader(connect_timeout=2.0, allow_private_urls=True, sleep=lambda s: None) as d:
        for attempt in attempts:
            with pytest.raises(DownloadError) as err:
                attempt(d)
            failures.append(str(err.value))
    with Downloader(connect_timeout=2.0) as guarded, pytest.raises(PrivateAddressError) as err:
        get(guarded, web.base + f"/secret.png?token={SECRET}")
    failures.append(str(err.value))

    records = [r for r in caplog.records if r.name.startswith(("imgsync", "urllib3"))]
    assert any("download" in r.getMessage() for r in records)  # the loop did log its retries
    seen = "\n".join(failures + [logging.Formatter().format(r) for r in records])
    assert SECRET not in seen


# ------------------------------------------------------------------------- not an image, words


@pytest.mark.parametrize(
    ("content_type", "judged"),
    [
        ("text/html; charset=utf-8", "not an image: the link serves text/html"),
        ("video/mp4", "not an image: the link serves video/mp4"),
        ("application/json", "not an image: the link serves application/json"),
        ("image/svg+xml", None),
        ("application/octet-stream", None),  # untyped: the caller sniffs the bytes
        ("", None),
    ],
)
def test_a_content_type_that_is_not_an_image_is_judged_before_reading(
    web: ImageHost, downloader: Downloader, content_type: str, judged: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    # Over the cap and sent without a length: reading it would end in the cap's error instead.
    body = b"x" * (CAP * 2)
    path = f"/typed/{len(content_type)}-{content_type.split('/')[0] or 'none'}"
    url = web.script(path, Reply(body=body, headers=headers, length=False))
    with pytest.raises(DownloadError if judged is None else NotAnImage) as err:
        get(downloader, url)
    assert str(err.value) == (judged or f"download is over the {CAP}-byte cap")
    assert isinstance(err.value, ItemError) and web.hits(path) == 1


def test_a_redirect_loop_is_told_in_words(web: ImageHost, downloader: Downloader) -> None:
    url = web.script("/loop", Reply(302, headers={"Location": "/loop?token=s3cr3t"}))
    with pytest.raises(DownloadError) as err:
        get(downloader, url)
    assert str(err.value) == "download failed: too many redirects"


def test_the_raw_error_is_only_in_the_verbose_log(
    downloader: Downloader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imgsync")
    with pytest.raises(DownloadError) as err:
        get(downloader, f"http://127.0.0.1:{free_port()}/x.png?sig=s3cr3t")
    lines = [r.getMessage() for r in caplog.records]
    assert any("[Errno 111] Connection refused" in line for line in lines), lines
    assert "Errno" not in str(err.value)
    assert not any("s3cr3t" in line for line in lines)
