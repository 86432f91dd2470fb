"""``imgsync ls / info / mkdir / mv / rm / copy / migrate / orphans / cache``: what a user and a
script see: stdout reports and --json documents, confirmation, and the exit statuses."""

from __future__ import annotations

import base64
import json
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imgsync.cli import main
from imgsync.store.cache import cache_path

from ..support import Control, png_bytes, write_config, write_note, write_png


@pytest.fixture
def env(config_path: Path, data_dir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")}
    return {**keep, "IMGSYNC_CONFIG": str(config_path), "IMGSYNC_DATA_DIR": str(data_dir)}


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    """One command through click's runner (stdin is not a terminal there)."""
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def upload(env: dict[str, str], images: Path, *names: str) -> list[dict[str, Any]]:
    for name in names:
        write_png(images / name)
    result = cli(env, "upload", "--json", *(str(images / n) for n in names))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_ls_info_mkdir_mv_and_their_json(
    control: Control, env: dict[str, str], images: Path
) -> None:
    up = upload(env, images, "a.png", "b.png")
    control.review(up[1]["md5"], 150)

    result = cli(env, "ls", "--recursive", "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert isinstance(listed, list) and all(isinstance(e, dict) for e in listed)
    files = {e["fileID"]: e for e in listed if e["type"] == "file"}
    assert files[up[0]["fileID"]]["url"] == up[0]["url"]
    assert files[up[1]["fileID"]]["rejected"] is True

    text = cli(env, "ls", "-R")
    lines = text.stdout.splitlines()
    (rejected_line,) = [line for line in lines if up[1]["fileID"] in line]
    assert "REJECTED" in rejected_line
    assert any(line.endswith("imgsync/") for line in lines)
    assert "2 files (1 rejected), 3 folders in /" in text.stderr

    result = cli(env, "mkdir", "--json", "archive/old")
    assert result.exit_code == 0
    (made,) = json.loads(result.stdout)
    assert made["ok"] and made["status"] == "created" and made["fileID"]

    result = cli(env, "mv", up[0]["fileID"], "nope-id", "--to", "archive/old")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"moved  {up[0]['fileID']}"]
    assert "imgsync: nope-id: no file or folder on the image bed has this ID (code 5066)" in (
        result.stderr
    )
    result = cli(env, "ls", "archive/old", "--json")
    assert [e["fileID"] for e in json.loads(result.stdout)] == [up[0]["fileID"]]

    result = cli(env, "info", up[0]["fileID"])
    assert result.exit_code == 0 and f"link:        {up[0]['url']}" in result.stdout
    result = cli(env, "info", "--json", up[0]["fileID"], "missing")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [d["ok"] for d in doc] == [True, False]
    assert doc[0]["name"] == f"{up[0]['md5']}.png" and doc[0]["size"] > 0
    assert doc[1]["error"].endswith("(code 5066)")

    result = cli(env, "ls", "archive/nothing")
    assert result.exit_code == 1
    assert result.stderr.strip() == "imgsync: no folder 'nothing' in 'archive' of the image bed"


def test_rm_asks_on_a_terminal_and_refuses_without_one(
    control: Control, env: dict[str, str], images: Path
) -> None:
    up = upload(env, images, "x.png", "y.png", "z.png")
    ids = [u["fileID"] for u in up]

    result = cli(env, "rm", ids[0])
    assert result.exit_code == 2
    assert "stdin is not a terminal: add --yes" in result.stderr
    assert len(control.images()) == 3

    # A real terminal: "n" keeps everything (exit 1), "y" deletes.
    assert terminal_rm(env, ids[0], answer="n").returncode == 1
    assert len(control.images()) == 3
    proc = terminal_rm(env, ids[0], answer="y")
    assert proc.returncode == 0, proc.stderr
    assert "Delete 1 item from the image bed?" in proc.stderr
    assert proc.stdout.splitlines() == [f"deleted  {ids[0]}  {up[0]['md5']}.png"]

    result = cli(env, "rm", "--yes", "--json", ids[1], ids[2], "unknown")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [(d["input"], d["ok"]) for d in doc] == [
        (ids[1], True),
        (ids[2], True),
        ("unknown", False),
    ]
    assert control.images() == []
    # The index forgot them: uploading one again is a fresh upload.
    result = cli(env, "upload", "--json", str(images / "y.png"))
    assert json.loads(result.stdout)[0]["status"] == "uploaded"


def terminal_rm(env: dict[str, str], file_id: str, *, answer: str) -> subprocess.CompletedProcess:
    """``imgsync rm ID`` with a pseudo-terminal as stdin, answering the question."""
    main_fd, child_fd = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgsync", "rm", file_id],
            stdin=child_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        os.write(main_fd, f"{answer}\n".encode())
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(main_fd)
        os.close(child_fd)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.slow(3)
def test_copy_and_migrate_reports(control: Control, env: dict[str, str], images: Path) -> None:
    control.drive(
        [
            {"fileID": "501", "filename": "d.png", "content_b64": b64(png_bytes("drive"))},
            {"fileID": "502", "filename": "e.png", "content_b64": b64(b"not an image")},
            {"fileID": "503", "filename": "notes.txt", "content_b64": b64(b"wrong format")},
            {"fileID": "504", "filename": "huge.png", "size": 100 * 1024 * 1024 + 1},
        ]
    )
    assert cli(env, "mkdir", "in").exit_code == 0
    result = cli(env, "copy", "501", "502", "503", "504", "--to", "in", "--wait")
    assert result.exit_code == 1
    # It ends with the failures listed; the service passes the wrong format and the too large
    # over without a failure entry (the reference), which the user is told.
    lines = result.stdout.splitlines()
    assert lines[-1] == "  not copied: 502  e.png" and ": done" in lines[-2]
    assert "1 files not copied" in result.stderr
    assert "passed over by the service without being listed" in result.stderr
    listed = cli(env, "ls", "in", "--json")
    assert [e["name"] for e in json.loads(listed.stdout)] == ["d.png"]
    result = cli(env, "copy", "501", "--to", "in", "--wait", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["tasks"][0]["status"] == "done"

    result = cli(env, "migrate", "--wait", "http://127.0.0.1:1/x.png", "file:///etc/passwd")
    assert result.exit_code == 1
    assert "imgsync: http://127.0.0.1:1/x.png: the service could not fetch it" in result.stderr
    assert "imgsync: file:///etc/passwd: not an http(s) URL" in result.stderr
    result = cli(env, "migrate", "--json", "--to", "/", "http://127.0.0.1:1/x.png")
    assert result.exit_code == 2 and "root" in result.stderr


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_orphans_lists_then_deletes_after_confirmation(
    control: Control, env: dict[str, str], images: Path, vault: Path
) -> None:
    up = upload(env, images, "kept.png", "lost.png")
    write_note(vault / "n.md", f"![k]({up[0]['url']})\n")

    result = cli(env, "orphans", str(vault))
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == [up[1]["fileID"]]
    assert "1 of 2 images in 1 folders are linked by none of 1 notes" in result.stderr

    result = cli(env, "orphans", "--delete", str(vault))
    assert result.exit_code == 2 and len(control.images()) == 2

    result = cli(env, "orphans", "--delete", "--yes", "--json", str(vault))
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [o["fileID"] for o in doc["orphans"]] == [up[1]["fileID"]]
    assert [d["status"] for d in doc["deleted"]] == ["deleted"]
    assert [f["fileId"] for f in control.images()] == [up[0]["fileID"]]


def test_cache_commands(
    control: Control, env: dict[str, str], images: Path, data_dir: Path
) -> None:
    up = upload(env, images, "c1.png", "c2.png")
    result = cli(env, "cache", "stats", "--json")
    assert json.loads(result.stdout)["objects"] == 2

    cli(env, "rm", "--yes", up[0]["fileID"])
    (c3,) = upload(env, images, "c3.png")
    control.review(c3["md5"], 150)
    result = cli(env, "cache", "verify")
    assert result.exit_code == 0, result.stderr
    assert "1 dropped" in result.stderr and "rejected by content review" in result.stderr

    result = cli(env, "cache", "clear")
    assert result.exit_code == 2
    assert cli(env, "cache", "clear", "--yes").exit_code == 0
    assert json.loads(cli(env, "cache", "stats", "--json").stdout)["objects"] == 0
    result = cli(env, "cache", "rebuild")
    assert result.exit_code == 0 and "1 recorded" in result.stdout
    result = cli(env, "upload", "--json", str(images / "c2.png"))
    assert json.loads(result.stdout)[0]["status"] == "cached"

    # A damaged index: every command names the way out, and that way out works.
    path = cache_path(data_dir)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"garbage " * 1000)
    result = cli(env, "cache", "stats")
    assert result.exit_code == 2 and "run `imgsync cache clear`" in result.stderr
    result = cli(env, "cache", "clear", "--yes")
    assert result.exit_code == 0 and "removed the damaged index" in result.stdout
    assert cli(env, "cache", "stats").exit_code == 0


def test_unreachable_and_refused_credentials(
    control: Control, env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = write_config(
        tmp_path / "down.toml",
        f"http://127.0.0.1:{port}",
        account={"access_token": "pasted-token"},
        network={"max_attempts": 2, "connect_timeout": 1.0},
    )
    result = cli({**env, "IMGSYNC_CONFIG": str(down)}, "ls")
    assert result.exit_code == 4 and "Traceback" not in result.stderr
    wrong = write_config(
        tmp_path / "wrong.toml", control.base_url, account={"client_secret": "wrong"}
    )
    result = cli({**env, "IMGSYNC_CONFIG": str(wrong)}, "rm", "--yes", "some-id")
    assert result.exit_code == 3
