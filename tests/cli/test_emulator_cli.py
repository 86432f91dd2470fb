"""`imgsync emulator` as users start it: the console command, its one line, its state folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

LINE_PREFIX = "imgsync emulator listening on http://127.0.0.1:"
START_DEADLINE_S = 30


def start(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")}
    return subprocess.Popen(
        [sys.executable, "-m", "imgsync", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the emulator flushes it once it accepts connections
    assert line.startswith(LINE_PREFIX), (line, proc.stderr.read() if proc.stderr else "")
    return line.strip().removeprefix("imgsync emulator listening on ")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=START_DEADLINE_S)
    return proc.returncode, out, err


def token(base_url: str, secret: str = "sesame") -> requests.Response:
    return requests.post(
        base_url + "/api/v1/access_token",
        json={"clientID": "me", "clientSecret": secret},
        headers={"Platform": "open_platform"},
        timeout=10,
    )


def test_emulator_command_serves_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "state"
    proc = start(
        "--port", "0", "--data-dir", str(data), "--client-id", "me", "--client-secret", "sesame"
    )
    try:
        base_url = first_line(proc)
        assert token(base_url).json()["code"] == 0
        assert token(base_url, "wrong").json()["code"] == 401
        headers = {
            "Platform": "open_platform",
            "Authorization": "Bearer " + token(base_url).json()["data"]["accessToken"],
        }
        made = requests.post(
            base_url + "/upload/v1/oss/file/mkdir",
            json={"name": "kept", "parentID": "", "type": 1},
            headers=headers,
            timeout=10,
        ).json()
        assert made["code"] == 0
    finally:
        code, out, err = stop(proc)
    assert code == 0 and "Traceback" not in err
    assert out == ""  # exactly one line, already read

    again = start(
        "--port", "0", "--data-dir", str(data), "--client-id", "me", "--client-secret", "sesame"
    )
    try:
        base_url = first_line(again)
        state = requests.get(base_url + "/_emulator/state", timeout=10).json()
        assert "kept" in [f["filename"] for f in state["files"]]
    finally:
        stop(again)


def test_emulator_on_a_busy_port_exits_2_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = start("--port", str(port))
        deadline = time.monotonic() + START_DEADLINE_S
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert proc.returncode == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in err
