"""``imgsync serve`` as a process: the listening line, a clean stop on SIGTERM, an address it
already serves (exit 0) and one another program holds (exit 2 naming the port)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import CLIENT_SECRET, Control, write_image

LISTENING = "imgsync serve listening on http://127.0.0.1:"


@pytest.fixture
def env(config_path: Path, data_dir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")}
    return {**keep, "IMGSYNC_CONFIG": str(config_path), "IMGSYNC_DATA_DIR": str(data_dir)}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imgsync", "serve", *args]


@pytest.fixture
def running(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        command("--port", "0", "--secret", "cli-secret"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with proc:  # its pipes closed at the end
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.startswith(LISTENING), (line, proc.stderr.read() if proc.stderr else "")
            yield proc, int(line.strip().rsplit(":", 1)[1])
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def post(port: int, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback only
        return json.loads(reply.read())


def test_serves_until_sigterm(
    control: Control, running: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = running
    assert post(port, "/heartbeat")["result"] == "alive"
    data = write_image(tmp_path / "a.png", "png", "serve-cli")
    answer = post(
        port,
        "/upload",
        json.dumps({"list": [str(tmp_path / "a.png")]}).encode(),
        {"Content-Type": "application/json", "X-PicGo-Secret": "cli-secret"},
    )
    assert control.fetch(answer["result"][0]) == data
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == ""
    assert "Traceback" not in err and "serve stopped" in err
    assert "cli-secret" not in err and CLIENT_SECRET not in err


def test_an_address_imgsync_already_serves(
    running: tuple[subprocess.Popen[str], int], env: dict[str, str]
) -> None:
    _, port = running
    second = subprocess.run(
        command("--port", str(port)), env=env, capture_output=True, text=True, timeout=30
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"imgsync serve is already running at http://127.0.0.1:{port}\n"


def test_a_port_another_program_holds_is_exit_2(env: dict[str, str]) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        proc = subprocess.run(
            command("--port", str(port)), env=env, capture_output=True, text=True, timeout=30
        )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"imgsync: port {port} on 127.0.0.1 is in use by another program; stop it or choose "
        "another with --port\n"
    )
    assert proc.stdout == ""
