"""``imgsync upload``: the Typora custom-command protocol, --json, exit statuses, cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from imgsync.cli import main
from imgsync.cli.results import InOrder, exit_status, result_json
from imgsync.engine.remote_policy import KEPT
from imgsync.engine.results import UploadResult

from ..support import Control, image_bytes, md5, write_config, write_image

MD5 = "0123456789abcdef0123456789abcdef"


def imgsync_command() -> list[str]:
    script = Path(sys.executable).parent / "imgsync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "imgsync"]


@pytest.fixture
def env(config_path: Path, data_dir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")}
    return {**keep, "IMGSYNC_CONFIG": str(config_path), "IMGSYNC_DATA_DIR": str(data_dir)}


def run_cli(env: dict[str, str], *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(main, ["upload", *args], env=env, catch_exceptions=False)


def test_one_line_per_item_in_order_and_partial_failure(
    control: Control, env: dict[str, str], images: Path
) -> None:
    good = [images / f"g{i}.png" for i in range(3)]
    blobs = [write_image(p, "png", f"cli-{i}") for i, p in enumerate(good)]
    missing = images / "missing.png"
    args = [str(good[0]), str(missing), str(good[1]), str(good[2])]
    result = run_cli(env, *args)
    assert result.exit_code == 1
    lines = result.stdout.split("\n")
    assert lines[-1] == ""  # the output ends with a newline
    lines = lines[:-1]
    assert len(lines) == 4
    assert lines[1] == ""
    for line, data in zip([lines[0], lines[2], lines[3]], blobs, strict=True):
        assert line.startswith("http://")
        assert control.fetch(line) == data
    assert f"imgsync: {missing}: no such file" in result.stderr


def test_percent_encoded_paths_and_file_uris(
    control: Control, env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "my notes" / "图片"
    a = folder / "a b.png"
    b = folder / "截图 (1).png"
    data_a = write_image(a, "png", "encoded-a")
    data_b = write_image(b, "png", "encoded-b")
    result = run_cli(env, quote(str(a)), "file://" + quote(str(b)))
    assert result.exit_code == 0, result.stderr
    urls = result.stdout.splitlines()
    assert [control.fetch(u) for u in urls] == [data_a, data_b]


def test_json_output(control: Control, env: dict[str, str], images: Path) -> None:
    path = images / "j.gif"
    data = write_image(path, "gif", "json")
    folder = images / "sub"
    folder.mkdir()
    result = run_cli(env, "--json", str(path), str(folder))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [set(item) >= {"input", "ok", "url", "md5", "fileID", "error"} for item in doc] == [
        True,
        True,
    ]
    ok, bad = doc
    assert (ok["input"], ok["ok"], ok["md5"], ok["error"]) == (str(path), True, md5(data), None)
    assert ok["fileID"]
    assert control.fetch(ok["url"]) == data
    assert (bad["ok"], bad["url"]) == (False, None)
    assert "is a folder" in bad["error"]


def test_bad_credentials_exit_3_with_a_line_per_item(
    control: Control, tmp_path: Path, data_dir: Path, images: Path
) -> None:
    config = write_config(
        tmp_path / "bad.toml", control.base_url, account={"client_secret": "wrong"}
    )
    env = {"IMGSYNC_CONFIG": str(config), "IMGSYNC_DATA_DIR": str(data_dir)}
    paths = [images / "1.png", images / "2.png"]
    for i, p in enumerate(paths):
        write_image(p, "png", f"auth-{i}")
    result = run_cli(env, *map(str, paths))
    assert result.exit_code == 3
    assert result.stdout == "\n\n"
    assert "wrong" not in result.stderr


def test_unreachable_service_exits_4(tmp_path: Path, data_dir: Path, images: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_config(
        tmp_path / "down.toml",
        f"http://127.0.0.1:{port}",
        account={"access_token": "pasted-token"},
        network={"max_attempts": 2, "connect_timeout": 1.0},
    )
    env = {"IMGSYNC_CONFIG": str(config), "IMGSYNC_DATA_DIR": str(data_dir)}
    write_image(images / "x.png", "png", "unreachable")
    result = run_cli(env, str(images / "x.png"))
    assert result.exit_code == 4, result.stderr
    assert result.stdout == "\n"

    # After one item found the service unreachable, the others do not wait as long again.
    paths = [images / f"{i}.png" for i in range(3)]
    for i, p in enumerate(paths):
        write_image(p, "png", f"unreachable-{i}")
    config.write_text(config.read_text() + "concurrency = 1\n")
    result = run_cli(env, "--json", *map(str, paths))
    assert result.exit_code == 4
    errors = [item["error"] for item in json.loads(result.stdout)]
    assert "not tried" not in errors[0]
    assert all(e.startswith("not tried: ") for e in errors[1:]), errors


def test_usage_error_without_items(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["upload"], env=env)
    assert result.exit_code == 2


def test_real_process_prints_exactly_the_links(
    control: Control, env: dict[str, str], images: Path
) -> None:
    """As Typora runs it: a real process, stdout holding nothing but one line per item."""
    a, b = images / "typora a.png", images / "typora-b.svg"
    data_a = write_image(a, "png", "typora-a")
    data_b = write_image(b, "svg", "typora-b", 3000)
    bad = images / "fake.png"
    bad.write_text("this is not a png")
    cmd = [*imgsync_command(), "upload", str(a), str(bad), str(b)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.split("\n")
    assert len(lines) == 4 and lines[3] == "" and lines[1] == ""
    assert control.fetch(lines[0]) == data_a
    assert control.fetch(lines[2]) == data_b
    assert "fake.png: is not an image the image bed takes (it looks like text)" in proc.stderr

    # Everything cached now: same links, no request, and none of the heavy modules imported.
    before = len(control.requests())
    cmd = [sys.executable, "-X", "importtime", "-m", "imgsync", "upload", str(a), str(b)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n") == [lines[0], lines[2], ""]
    assert len(control.requests()) == before
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {"requests", "urllib3", "mistune", "watchdog", "imgsync.emulator", "imgsync.client.api"}
    assert not (heavy & imported), heavy & imported


def test_reviewed_image_fails_with_exit_1(
    control: Control, env: dict[str, str], images: Path
) -> None:
    path = images / "nsfw.png"
    data = image_bytes("png", "cli-review")
    path.write_bytes(data)
    control.review(md5(data), 200)
    result = run_cli(env, str(path))
    assert result.exit_code == 1
    assert result.stdout == "\n"
    assert "rejected by content review" in result.stderr


def test_configuration_error_exit_2_with_a_line_per_item(tmp_path: Path, images: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[upload]\nlink = 'nope'\n")
    env = {"IMGSYNC_CONFIG": str(config), "IMGSYNC_DATA_DIR": str(tmp_path / "data")}
    result = run_cli(env, str(images / "a.png"), str(images / "b.png"))
    assert result.exit_code == 2
    assert result.stdout == "\n\n"
    assert result.stderr.count("upload.link") == 1


def test_json_reaches_a_console_that_is_not_utf8(
    control: Control, env: dict[str, str], images: Path
) -> None:
    """A console in a legacy code page (Windows pipes, old locales) still gets the JSON document,
    with the names that code page cannot hold as \\u escapes."""
    path = images / "截图.png"
    data = write_image(path, "png", "cp1252")
    cmd = [*imgsync_command(), "upload", "--json", str(path), str(images / "缺.png")]
    proc = subprocess.run(
        cmd, env={**env, "PYTHONIOENCODING": "cp1252"}, capture_output=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr
    assert b"Traceback" not in proc.stderr
    first, second = json.loads(proc.stdout)
    assert first["input"] == str(path) and first["ok"]
    assert control.fetch(first["url"]) == data
    assert second["input"].endswith("缺.png") and not second["ok"]


def result(index: int, ok: bool = True, unreachable: bool = False) -> UploadResult:
    if ok:
        return UploadResult(f"i{index}", "local", "uploaded", url=f"http://u/{index}")
    return UploadResult(f"i{index}", "local", "failed", error="no", unreachable=unreachable)


# -- output and exit status (the front end's, from the engine's results)


def test_in_order_emits_each_result_once_in_input_order() -> None:
    seen: list[str] = []
    in_order = InOrder(4, lambda r: seen.append(r.input))
    in_order(2, result(2))
    assert seen == []
    in_order(0, result(0))
    assert seen == ["i0"]
    in_order(1, result(1))
    assert seen == ["i0", "i1", "i2"]
    in_order(3, result(3))
    assert seen == ["i0", "i1", "i2", "i3"]


def test_in_order_fail_rest_keeps_known_results() -> None:
    seen: list[UploadResult] = []
    in_order = InOrder(3, seen.append)
    in_order(1, result(1))
    in_order.fail_rest(["a.png", "b.png", "https://c/x.png"], "auth failed", unreachable=False)
    assert [r.status for r in seen] == ["failed", "uploaded", "failed"]
    assert (seen[2].kind, seen[2].error, seen[2].unreachable) == ("remote", "auth failed", False)


def test_exit_status() -> None:
    assert exit_status([result(0), result(1)]) == 0
    assert exit_status([result(0), result(1, ok=False)]) == 1
    down = [result(0, ok=False, unreachable=True), result(1, ok=False, unreachable=True)]
    assert exit_status(down) == 4
    assert exit_status([down[0], result(1, ok=False)]) == 1
    assert exit_status([result(0), down[1]]) == 1


def test_result_json_shape() -> None:
    doc = result_json(UploadResult("x.png", "local", "reused", "http://u", MD5, "f1"))
    assert doc == {
        "input": "x.png",
        "ok": True,
        "url": "http://u",
        "md5": MD5,
        "fileID": "f1",
        "error": None,
        "kind": "local",
        "status": "reused",
    }


def test_a_link_the_remote_policy_leaves_alone_gets_an_empty_line_a_reason_and_status_1(
    control: Control, env: dict[str, str], images: Path
) -> None:
    good = images / "good.png"
    data = write_image(good, "png", "next to a video")
    video = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    log = control.requests()

    result = run_cli(env, video, str(good))

    assert result.exit_code == 1
    first, second = result.stdout.split("\n")[:-1]  # one line per item, in order
    assert first == ""
    assert control.fetch(second) == data
    reason = "not an image: youtube.com serves pages and videos, not images"
    assert f"imgsync: {video}: not uploaded: {reason}\n" in result.stderr
    assert not [r for r in control.requests()[len(log) :] if "offline" in r["path"]]

    as_json = json.loads(run_cli(env, "--json", video).stdout)
    assert [(i["ok"], i["url"], i["status"], i["error"]) for i in as_json] == [
        (False, None, "skipped", reason)
    ]


def test_remote_keep_gives_an_empty_line_and_says_why(
    control: Control, env: dict[str, str], config_path: Path
) -> None:
    with open(config_path, "a", encoding="utf-8") as config:
        config.write('\n[sync]\nremote = "keep"\n')
    url = "https://example.com/cat.png"

    result = run_cli(env, url, url)

    assert result.exit_code == 1
    assert result.stdout == "\n\n"
    assert result.stderr.count(f"imgsync: {url}: not uploaded: {KEPT}\n") == 2
    assert control.requests("offline") == []
