"""``imgsync serve``'s PicGo protocol, driven by the exact requests editors send: Typora and the
Obsidian "Image auto upload" plugin (JSON path list; an empty POST for the clipboard; its remote
mode's multipart form with field ``list``) and PicGo's own form field ``files``. Real HTTP to the
server, real uploads to the emulator, a real X clipboard (Xvfb) for the clipboard requests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from imgsync.config import Settings
from imgsync.engine.results import UploadResult
from imgsync.jobs.serve import AlreadyServing, PicGoServer, PortBusy, start_server
from imgsync.jobs.upload import upload_items

from ..desktop.xserver import XDisplay, running_xvfb
from ..support import CREATE_PATH, Control, md5, png_bytes, write_image

SECRET = "serve-secret-4b1d"


class Client:
    """Plain HTTP to the server, the way an editor's HTTP stack sends it."""

    def __init__(self, server: PicGoServer) -> None:
        self.host, self.port = "127.0.0.1", server.port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            reply = connection.getresponse()
            data = reply.read()
            return reply.status, dict(reply.getheaders()), json.loads(data) if data else None
        finally:
            connection.close()

    def upload_list(self, items: list[str], **headers: str) -> tuple[int, Any]:
        """Typora's and the Obsidian plugin's request: JSON {"list": [...]}."""
        status, _, document = self.request(
            "POST",
            "/upload",
            json.dumps({"list": items}).encode(),
            {"Content-Type": "application/json", **headers},
        )
        return status, document


def serving(settings: Settings, **options: Any) -> Iterator[PicGoServer]:
    started = start_server(settings, **options)
    assert isinstance(started, PicGoServer)
    thread = threading.Thread(target=started.serve_forever, daemon=True)
    thread.start()
    try:
        yield started
    finally:
        started.shutdown()
        started.close()
        thread.join(10)


@pytest.fixture
def serve_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings for a server on a free port (``serve`` keys given as keyword arguments)."""

    def make(**serve: Any) -> Settings:
        settings = make_settings()
        return replace(settings, serve=replace(settings.serve, **{"port": 0, **serve}))

    return make


@pytest.fixture
def server(serve_settings: Callable[..., Settings]) -> Iterator[PicGoServer]:
    yield from serving(serve_settings())


@pytest.fixture
def client(server: PicGoServer) -> Client:
    return Client(server)


def test_heartbeat(client: Client) -> None:
    for method in ("POST", "GET"):
        status, _, document = client.request(method, "/heartbeat")
        assert status == 200
        assert document == {"success": True, "result": "alive", "server": "imgsync"}


def test_typora_path_list(control: Control, client: Client, tmp_path: Path) -> None:
    a = write_image(tmp_path / "a.png", "png", "serve-a")
    b = write_image(tmp_path / "笔记 图" / "b c.png", "png", "serve-b")
    status, document = client.upload_list(
        [str(tmp_path / "a.png"), str(tmp_path / "笔记 图" / "b c.png")]
    )
    assert status == 200 and document["success"] is True
    urls = document["result"]
    assert [control.fetch(u) for u in urls] == [a, b]
    full = document["fullResult"]
    assert [f["fileName"] for f in full] == ["a.png", "b c.png"]
    assert [f["imgUrl"] for f in full] == urls
    assert [f["md5"] for f in full] == [md5(a), md5(b)]
    assert "message" not in document


def test_percent_encoded_and_file_uri_paths(
    control: Control, client: Client, tmp_path: Path
) -> None:
    """Typora may hand paths percent-encoded (docs/users.md)."""
    data = write_image(tmp_path / "my notes" / "截图 (1).png", "png", "serve-encoded")
    path = str(tmp_path / "my notes" / "截图 (1).png")
    status, document = client.upload_list([quote(path), "file://" + quote(path)])
    assert status == 200 and document["success"] is True
    assert [control.fetch(url) for url in document["result"]] == [data, data]
    assert [f["fileName"] for f in document["fullResult"]] == ["截图 (1).png"] * 2


def test_failed_items_keep_their_place(control: Control, client: Client, tmp_path: Path) -> None:
    good = write_image(tmp_path / "good.png", "png", "serve-good")
    (tmp_path / "notes.txt").write_text("not an image")
    items = [
        str(tmp_path / "missing.png"),
        str(tmp_path / "good.png"),
        str(tmp_path / "notes.txt"),
    ]
    status, document = client.upload_list(items)
    assert status == 200 and document["success"] is True
    assert document["result"][0] == "" and document["result"][2] == ""
    assert control.fetch(document["result"][1]) == good
    missing, ok, text = document["fullResult"]
    assert (missing["ok"], missing["input"]) == (False, items[0])
    assert "no such file" in missing["error"]
    assert ok["ok"] is True and ok["error"] is None
    assert "not an image" in text["error"]
    assert document["message"].startswith(f"2 of 3 failed; {items[0]}: ")


def test_all_failed_is_success_false_with_aligned_result(client: Client, tmp_path: Path) -> None:
    status, document = client.upload_list([str(tmp_path / "x.png"), str(tmp_path / "y.png")])
    assert status == 200
    assert document["success"] is False
    assert document["result"] == ["", ""]
    assert len(document["fullResult"]) == 2 and "no such file" in document["message"]


def test_bad_requests(client: Client) -> None:
    for body, expected in [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"list": [""]}', "list of paths"),
        (b'{"list": "a.png"}', "list of paths"),
    ]:
        status, _, document = client.request(
            "POST", "/upload", body, {"Content-Type": "application/json"}
        )
        assert status == 400, body
        assert document["success"] is False and document["result"] == []
        assert expected in document["message"]
    status, _, document = client.request("POST", "/nothing-here", b"")
    assert status == 404 and document["success"] is False


# ---------------------------------------------------------------------------------- the clipboard


@pytest.fixture
def x11(monkeypatch: pytest.MonkeyPatch) -> Iterator[XDisplay]:
    with running_xvfb() as display:
        monkeypatch.setenv("DISPLAY", display.name)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        yield display


def test_empty_body_uploads_the_clipboard(control: Control, client: Client, x11: XDisplay) -> None:
    # Obsidian's clipboard upload: requestUrl({url, method: "POST"}), no body, no type.
    status, _, document = client.request("POST", "/upload")
    assert status == 200
    assert document == {"success": False, "result": [], "message": "no image on the clipboard"}

    png = png_bytes("serve-clipboard")
    x11.put(png, "image/png")
    status, _, document = client.request("POST", "/upload")
    assert status == 200 and document["success"] is True
    (url,) = document["result"]
    assert control.fetch(url) == png
    assert document["fullResult"][0]["fileName"].startswith("clipboard-")
    # An empty list means the clipboard too (PicGo's reading), and the clipboard is not changed.
    status, document = client.upload_list([])
    assert document["result"] == [url]
    assert x11.targets() == ["TARGETS", "image/png"]


# ------------------------------------------------------------------------------------ multipart


def obsidian_form(files: list[tuple[str, bytes]], boundary: str) -> bytes:
    """The Obsidian plugin's remote-mode body: each file under the field "list"."""
    body = b""
    for name, data in files:
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: form-data; name="list"; filename="{name}"\r\n'.encode()
        body += b"Content-Type: image/png\r\n\r\n" + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def test_obsidian_remote_mode_form(
    control: Control,
    serve_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    seen: list[tuple[str, int, int]] = []

    def upload(items: Sequence[str]) -> list[UploadResult]:
        for item in items:  # while the request runs: private folder, private file
            seen.append(
                (
                    Path(item).name,
                    stat.S_IMODE(os.stat(Path(item).parent.parent).st_mode),
                    stat.S_IMODE(os.stat(item).st_mode),
                )
            )
        return upload_items(settings, items)

    settings = serve_settings()
    a, b = png_bytes("form-a"), png_bytes("form-b")
    boundary = "----1a2b3c4d5e6f"  # the plugin prefixes its boundary with ----
    # Two files of one name (a path, as the plugin sends for vault files) never collide.
    body = obsidian_form(
        [("/vault/img/shot.png", a), ("1700000000000.png", b), ("shot.png", b)], boundary
    )
    for server in serving(settings, upload=upload):
        status, _, document = Client(server).request(
            "POST", "/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
    assert status == 200 and document["success"] is True, document
    first, second, third = document["result"]
    assert control.fetch(first) == a and control.fetch(second) == b and third == second
    assert [f["input"] for f in document["fullResult"]] == [
        "shot.png",
        "1700000000000.png",
        "shot.png",
    ]
    assert seen == [
        ("shot.png", 0o700, 0o600),
        ("1700000000000.png", 0o700, 0o600),
        ("shot.png", 0o700, 0o600),
    ]
    assert list(temp.iterdir()) == []  # removed afterwards


def test_picgo_files_field_with_requests(control: Control, client: Client) -> None:
    import requests

    data = png_bytes("form-files")
    reply = requests.post(
        f"http://127.0.0.1:{client.port}/upload",
        files=[("files", ("截图 1.png", data, "image/png")), ("note", (None, "a plain field"))],
        timeout=60,
    )
    document = reply.json()
    assert document["success"] is True
    assert control.fetch(document["result"][0]) == data
    assert document["fullResult"][0]["fileName"] == "截图 1.png"
    status, _, document = client.request(
        "POST", "/upload", b"--x--\r\n", {"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert status == 400 and "no file" in document["message"]


# ---------------------------------------------------------------------------- who may upload


def test_secret_is_enforced(
    control: Control, serve_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    write_image(tmp_path / "s.png", "png", "serve-secret")
    item = [str(tmp_path / "s.png")]
    for server in serving(serve_settings(secret=SECRET)):
        client = Client(server)
        assert client.request("POST", "/heartbeat")[0] == 200  # the heartbeat stays open
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-PicGo-Secret": "wrong"}):
            status, document = client.upload_list(item, **headers)
            assert status == 401 and document["success"] is False, headers
        assert control.created_md5s() == []
        for headers in ({"Authorization": f"Bearer {SECRET}"}, {"X-PicGo-Secret": SECRET}):
            status, document = client.upload_list(item, **headers)
            assert status == 200 and document["success"] is True, headers
        for query in (f"?key={SECRET}", f"?secret={SECRET}"):
            status, _, document = client.request(
                "POST", "/upload" + query, json.dumps({"list": item}).encode()
            )
            assert status == 200 and document["success"] is True, query


def test_web_pages_and_rebinding_are_refused(
    control: Control, client: Client, tmp_path: Path
) -> None:
    write_image(tmp_path / "p.png", "png", "serve-origin")
    item = [str(tmp_path / "p.png")]
    for origin in ("https://evil.example", "null", "http://192.168.1.5:8080"):
        status, document = client.upload_list(item, Origin=origin)
        assert status == 403, origin
    status, document = client.upload_list(item, Host="evil.example:36677")
    assert status == 403 and "not this machine" in document["message"]
    assert control.created_md5s() == []

    status, headers, _ = client.request(
        "OPTIONS", "/upload", headers={"Origin": "app://obsidian.md"}
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "app://obsidian.md"
    assert "X-PicGo-Secret" in headers["Access-Control-Allow-Headers"]
    status, document = client.upload_list(item, Origin="app://obsidian.md")
    assert status == 200 and document["success"] is True


def test_a_slow_upload_does_not_hold_up_the_heartbeat(
    serve_settings: Callable[..., Settings],
) -> None:
    release = threading.Event()

    def slow(items: Sequence[str]) -> list[UploadResult]:
        release.wait(20)
        return [UploadResult(i, "local", "failed", error="stopped") for i in items]

    for server in serving(serve_settings(), upload=slow):
        client = Client(server)
        uploading = threading.Thread(target=client.upload_list, args=(["/x.png"],))
        uploading.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert client.request("POST", "/heartbeat")[0] == 200
        assert time.monotonic() - started < 5
        release.set()
        uploading.join(20)


# ---------------------------------------------------------------------------------- busy ports


def test_a_port_imgsync_already_serves(
    server: PicGoServer, serve_settings: Callable[..., Settings]
) -> None:
    again = start_server(serve_settings(port=server.port))
    assert again == AlreadyServing(f"http://127.0.0.1:{server.port}")


def test_a_port_another_program_holds(serve_settings: Callable[..., Settings]) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(
            PortBusy, match=f"port {port} on 127.0.0.1 is in use by another program"
        ) as caught:
            start_server(serve_settings(port=port), probe=lambda host, port: None)
        assert caught.value.exit_code == 2
        with pytest.raises(PortBusy, match="another PicGo-compatible server"):
            start_server(
                serve_settings(port=port),
                probe=lambda host, port: {"success": True, "result": "alive"},
            )


def test_an_outage_in_one_request_does_not_fail_the_next(
    control: Control, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The server keeps one upload session for its life; an outage one request met is forgotten
    by the next, which uploads normally once the service answers again."""
    settings = make_settings(network={"max_attempts": 1}, upload={"concurrency": 1})
    settings = replace(settings, serve=replace(settings.serve, port=0))
    a = write_image(tmp_path / "a.png", "png", "outage-a")
    b = write_image(tmp_path / "b.png", "png", "outage-b")
    control.faults([{"match": CREATE_PATH, "times": -1, "action": "reset"}])
    with contextlib.contextmanager(serving)(settings) as server:
        client = Client(server)
        _, down = client.upload_list([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
        assert down["success"] is False and down["result"] == ["", ""]
        errors = [item["error"] for item in down["fullResult"]]
        assert errors[1].startswith("not tried: "), errors

        control.faults([])
        _, up = client.upload_list([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
        assert up["success"] is True
        assert [control.fetch(url) for url in up["result"]] == [a, b]
        # And the next paste of them is answered from the index the session keeps open.
        control.clear_requests()
        _, again = client.upload_list([str(tmp_path / "b.png")])
        assert again["result"] == up["result"][1:]
        assert control.requests(CREATE_PATH) == []


def test_a_link_left_alone_is_a_failed_item_with_its_reason(
    control: Control, client: Client, tmp_path: Path
) -> None:
    """A page or video link is no image: the editor gets no link for it (not an empty success),
    and its reason; the other items are unaffected."""
    a = write_image(tmp_path / "a.png", "png", "serve-left-alone")
    page = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    _, document = client.upload_list([page, str(tmp_path / "a.png")])
    assert document["success"] is True
    assert document["result"][0] == "" and control.fetch(document["result"][1]) == a
    left = document["fullResult"][0]
    assert left["ok"] is False and left["status"] == "skipped"
    assert left["error"].startswith("not uploaded: not an image: youtube.com")
    assert document["message"].startswith("1 of 2 failed; " + page)

    _, alone = client.upload_list([page])
    assert alone["success"] is False and alone["result"] == [""]
