"""run_cli in a real subprocess: exactly one flushed line once listening, clean exit on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

LINE_PREFIX = "imgsync emulator listening on http://127.0.0.1:"


def _start(data_dir: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    folder = repr(str(data_dir)) if data_dir else "None"
    code = (
        f"from imgsync.emulator import run_cli; run_cli('127.0.0.1', 0, {folder}, 'demo', 'demo')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the line is flushed: no sleeping
    return process, line


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_cli_prints_one_line_and_stops_cleanly(signum: int, tmp_path: Path) -> None:
    process, line = _start(tmp_path)
    try:
        assert line.startswith(LINE_PREFIX) and line.endswith("\n")
        base_url = line.split(" on ", 1)[1].strip()
        port = int(base_url.rsplit(":", 1)[1])
        assert port > 0
        session = requests.Session()
        session.trust_env = False
        answer = session.post(
            base_url + "/api/v1/access_token",
            json={"clientID": "demo", "clientSecret": "demo"},
            headers={"Platform": "open_platform"},
            timeout=10,
        ).json()
        assert answer["code"] == 0
        session.close()
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert stdout == ""  # nothing after the one line
    assert "Traceback" not in stderr
    assert (tmp_path / "state.json").exists()  # state written on the way out
