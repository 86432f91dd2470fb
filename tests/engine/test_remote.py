"""Remote images: offline migration, the download-and-upload fallback, hosted and cached URLs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from imgsync.client.api import Api
from imgsync.engine.folders import ImageBedFolders
from imgsync.engine.remote import RemoteFetcher
from imgsync.engine.transfer import Transfer
from imgsync.engine.uploader import Uploader
from imgsync.store.cache import Cache

from ..loopback import LoopbackServer
from ..support import Control, age_index, image_bytes, md5

REFERER = "https://notes.example/"


class ImageServer:
    """A local HTTP server with a few images; ``/guarded/...`` needs the Referer (hotlinking)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.release = threading.Event()
        self.hits: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                referer = self.headers.get("Referer")
                server.hits.append((self.path, referer))
                entry = server.files.get(self.path.split("?")[0])
                if entry is None or (self.path.startswith("/guarded/") and referer != REFERER):
                    self.send_response(404 if entry is None else 403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, mime = entry
                if self.path.startswith("/slow/"):
                    server.release.wait(10)  # longer than the test's download timeout
                self.send_response(200)
                self.send_header("Content-Type", mime)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LoopbackServer(Handler).start()
        self.base = self.server.url

    def add(self, path: str, data: bytes, mime: str = "image/png") -> str:
        self.files[path] = (data, mime)
        return self.base + path

    def close(self) -> None:
        self.release.set()
        self.server.stop()


@pytest.fixture
def web() -> Iterator[ImageServer]:
    server = ImageServer()
    yield server
    server.close()


# The "remote" images are served from loopback: the tests that reach imgsync's own download opt in
# to it (upload.allow_private_urls); tests/upload/test_private_urls.py covers the refusal.
LOOPBACK_OK = {"allow_private_urls": True}


@pytest.fixture
def remote_settings(make_settings: Any) -> Any:
    return make_settings(upload={"referer": REFERER, "download_timeout": 10.0, **LOOPBACK_OK})


@pytest.mark.real_poll_spacing  # asserts the 1 s between polls
def test_remote_image_is_migrated_by_an_offline_task(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    data = image_bytes("png", "migrated", 30_000)
    url = web.add("/pics/cat.png", data)
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url)
    assert result.status == "migrated", result.error
    assert result.kind == "remote"
    assert result.md5 == md5(data)
    assert control.fetch(result.url) == data
    assert len(control.requests("/offline/download", method="POST")) == 1
    assert control.puts() == []  # the service fetched it, not us
    # Into the dedicated folder, under a name that keeps the extension.
    entry = next(f for f in control.images() if f["etag"] == md5(data))
    assert entry["filename"].endswith(".png")
    assert entry["parentFilename"] == "remote"
    # Polls at least 1 s apart (and the first 1 s after the task started).
    times = [r["time"] for r in control.requests("/offline/download")]
    assert all(b - a >= 1.0 for a, b in zip(times, times[1:], strict=False)), times


def test_migrated_url_is_cached(control: Control, remote_settings: Any, web: ImageServer) -> None:
    url = web.add("/a.gif", image_bytes("gif", "cached-url"), "image/gif")
    with Uploader.from_settings(remote_settings) as up:
        first = up.upload_url(url)
    before = len(control.requests())
    with Uploader.from_settings(remote_settings) as up:
        second = up.upload_url(url)
    assert second.status == "cached"
    assert second.url == first.url
    assert len(control.requests()) == before


def test_url_the_service_cannot_fetch_is_downloaded_and_uploaded(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    data = image_bytes("jpeg", "hotlink", 50_000)
    url = web.add("/guarded/photo.jpg", data, "image/jpeg")
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url)
    assert result.status == "uploaded", result.error
    assert control.fetch(result.url) == data
    assert len(control.requests("/offline/download", method="POST")) == 1
    assert (("/guarded/photo.jpg", REFERER)) in web.hits
    assert [f["etag"] for f in control.images()] == [md5(data)]


def test_missing_remote_image_fails_clearly(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(web.base + "/nope.png")
    assert result.status == "failed"
    assert "HTTP 404" in result.error
    assert control.images() == []


def test_url_without_image_extension_is_downloaded_directly(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    data = image_bytes("webp", "no-extension", 9000)
    url = web.add("/render", data, "image/webp")
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url + "?id=7")
    assert result.status == "uploaded", result.error
    assert control.requests("/offline/download") == []
    entry = next(f for f in control.images() if f["etag"] == md5(data))
    assert entry["filename"].endswith(".webp")


def test_a_link_serving_a_page_is_skipped_with_the_reason(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    url = web.add("/page", b"<!doctype html><html><body>login</body></html>", "text/html")
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url)
    assert (result.status, result.error) == ("skipped", "not an image: the link serves text/html")
    assert control.images() == [] and control.puts() == []


def test_untyped_bytes_that_are_not_an_image_fail(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    page = b"<!doctype html><html><body>login</body></html>"
    url = web.add("/blob", page, "application/octet-stream")  # untyped: judged by its bytes
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url)
    assert result.status == "failed"
    assert "not an image" in result.error and "HTML page" in result.error


def test_download_over_the_cap_fails(make_settings: Any, web: ImageServer) -> None:
    url = web.add("/big", image_bytes("png", "too-big", 50_000))
    settings = make_settings(upload={"max_download_bytes": 10_000, **LOOPBACK_OK})
    with Uploader.from_settings(settings) as up:
        result = up.upload_url(url)
    assert result.status == "failed"
    assert "10000-byte cap" in result.error


def test_hosted_urls_are_left_alone(control: Control, make_settings: Any) -> None:
    settings = make_settings(upload={"hosted_prefixes": ["https://vip.123pan.cn/"]})
    with Uploader.from_settings(settings) as up:
        result = up.upload_url("https://vip.123pan.cn/1/abc.png")
    assert (result.status, result.kind, result.url) == (
        "skipped",
        "hosted",
        "https://vip.123pan.cn/1/abc.png",
    )
    assert control.requests() == []


def test_unsupported_scheme_fails(settings: Any) -> None:
    with Uploader.from_settings(settings) as up:
        result = up.upload_item("ftp://example.org/a.png")
    assert result.status == "failed"


def test_file_uri_is_a_local_file(control: Control, settings: Any, tmp_path: Path) -> None:
    path = tmp_path / "dir with space" / "图.png"
    path.parent.mkdir()
    data = image_bytes("png", "file-uri")
    path.write_bytes(data)
    from urllib.parse import quote

    uri = "file://" + quote(str(path))
    with Uploader.from_settings(settings) as up:
        result = up.upload_item(uri)
    assert result.ok, result.error
    assert result.kind == "local"
    assert result.input == uri
    assert control.fetch(result.url) == data


def test_rerun_after_interrupted_migration_finds_the_file(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    """A run killed while the task ran: next time the file is found by name, no second task."""
    from imgsync.client.api import Api
    from imgsync.engine.remote import migration_name

    data = image_bytes("png", "interrupted", 12_000)
    url = web.add("/late.png", data)
    with Uploader.from_settings(remote_settings) as up:
        folder_id = up.folders.ensure(remote_settings.upload.remote_folder)
    with Api.from_settings(remote_settings) as api:
        task = api.offline_download(url, migration_name(url, ".png"), folder_id)
        from ..support import wait_for

        wait_for(lambda: api.offline_process(task.task_id).status == 2)
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url)
    assert result.status == "migrated", result.error
    assert len(control.requests("/offline/download", method="POST")) == 1
    assert len(control.images()) == 1


def test_migrated_image_rejected_by_review_fails(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    data = image_bytes("png", "remote-review", 4000)
    control.review(md5(data), 120)
    url = web.add("/bad.png", data)
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url)
        assert result.status == "failed"
        assert "rejected by content review" in result.error
        assert up.cache.get_url(url) is None


def test_offline_refusal_falls_back_to_download(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    data = image_bytes("gif", "refused-offline", 4000)
    url = web.add("/refused.gif", data, "image/gif")
    control.faults([{"match": "/offline/download", "nth": 1, "times": 1, "action": "code:1"}])
    with Uploader.from_settings(remote_settings) as up:
        result = up.upload_url(url)
    assert result.status == "uploaded", result.error
    assert control.fetch(result.url) == data


def test_download_timeout_fails_clearly(make_settings: Any, web: ImageServer) -> None:
    url = web.add("/slow/render", image_bytes("png", "slow", 2000))  # no extension: we download
    settings = make_settings(upload={"download_timeout": 0.3, **LOOPBACK_OK})
    with Uploader.from_settings(settings) as up:
        result = up.upload_url(url)
    assert result.status == "failed"
    assert result.error.startswith("download failed:"), result.error
    assert result.error == "download failed: 127.0.0.1 did not answer within 0.3 s"


def test_links_already_on_the_image_bed_are_left_alone(
    control: Control, settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "here.png"
    path.write_bytes(image_bytes("png", "already-hosted"))
    with Uploader.from_settings(settings) as up:
        link = up.upload_path(path).url
    before = len(control.requests())
    with Uploader.from_settings(settings) as up:
        result = up.upload_url(link)
        other = up.upload_url(link.rsplit("/", 1)[0] + "/another-file.png")
    assert (result.kind, result.status, result.url) == ("hosted", "skipped", link)
    assert other.status == "skipped"
    assert len(control.requests()) == before


@pytest.mark.real_poll_spacing  # asserts the 1 s between polls
def test_the_fetcher_works_from_the_collaborators_it_is_given(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    """No uploader: the fetcher migrates and downloads with exactly the parts passed in."""
    migrated = image_bytes("png", "explicit-migrated", 3000)
    downloaded = image_bytes("png", "explicit-downloaded", 3000)
    url = web.add("/pics/explicit.png", migrated)
    plain = web.add("/render/explicit", downloaded)  # no extension: downloaded here
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(0.05)

    settings = remote_settings
    with (
        Api.from_settings(settings) as api,
        Cache.open(settings.data_dir, namespace=settings.account.key) as cache,
    ):
        folders = ImageBedFolders(api=api, cache=cache, now=datetime.now)
        transfer = Transfer(
            settings,
            api=api,
            cache=cache,
            folders=folders,
            now=datetime.now,
            sleep=time.sleep,
            clock=time.monotonic,
        )
        fetcher = RemoteFetcher(
            settings,
            api=api,
            cache=cache,
            folders=folders,
            transfer=transfer,
            clock=time.monotonic,
            sleep=sleep,
        )
        try:
            obj, status = fetcher.fetch(url)
            plain_obj, plain_status = fetcher.fetch(plain)
        finally:
            fetcher.close()
        assert cache.get_url(url) == obj and cache.get_url(plain) == plain_obj
    assert status == "migrated" and control.fetch(obj.download_url) == migrated
    assert plain_status == "uploaded" and control.fetch(plain_obj.download_url) == downloaded
    assert sleeps and all(s == 1.0 for s in sleeps)  # the polls slept through the given sleep
    assert [p for p, _ in web.hits] == ["/pics/explicit.png", "/render/explicit"]


def test_a_migrated_url_whose_image_was_deleted_is_migrated_again_once_its_entry_is_old(
    control: Control, remote_settings: Any, web: ImageServer
) -> None:
    """The index stays true for remote URLs too (issue 11, item 8): an old entry is checked with
    one detail; the image deleted in the console, and its folder with it, is migrated afresh."""
    data = image_bytes("png", "migrated-then-deleted", 20_000)
    url = web.add("/pics/gone.png", data)
    with Uploader.from_settings(remote_settings) as up:
        first = up.upload_url(url)
    assert first.status == "migrated", first.error
    (remote_folder,) = [f for f in control.state() if f["type"] == 1 and f["filename"] == "remote"]
    with Api.from_settings(remote_settings) as api:
        api.delete([remote_folder["fileId"]])  # the folder, and the image in it
    age_index(remote_settings.data_dir, 8 * 24 * 3600)

    with Uploader.from_settings(remote_settings) as up:
        again = up.upload_url(url)

    assert again.status == "migrated", again.error
    assert again.url != first.url
    assert control.fetch(again.url) == data
    assert len(control.requests("/offline/download", method="POST")) == 2
