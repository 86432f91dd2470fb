"""The command line's promise: a documented exit status and one clear line, never a traceback.

These run the installed ``imgsync`` console script in a real subprocess, against the emulator over
loopback, so what is checked is exactly what a user (or an editor scraping stdout) sees.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from imgsync.emulator import Emulator

SECRET = "s3cr3t-value-that-must-never-show"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(client_id="cli-id", client_secret=SECRET) as emu:
        yield emu


def run(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")}
    full_env["IMGSYNC_DATA_DIR"] = str(tmp_path / "data")
    full_env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "imgsync", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def assert_one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[account\n", "invalid TOML"),
        ("[upload]\nconcurrency = 'four'\n", "upload.concurrency must be a whole number"),
        ("[account]\nclientid = 'x'\n", "unknown key account.clientid"),
        ("[account]\nbase_url = 'http://127.0.0.1:9'\n", "account.client_id and"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(tmp_path: Path, text: str, needle: str) -> None:
    path = config(tmp_path, text)
    proc = run(["--config", str(path), "login"], tmp_path)
    assert proc.returncode == 2
    line = assert_one_line(proc)
    assert needle in line
    assert str(path) in line
    assert proc.stdout == ""


def test_missing_config_file_named_explicitly(tmp_path: Path) -> None:
    proc = run(["--config", str(tmp_path / "none.toml"), "login"], tmp_path)
    assert proc.returncode == 2
    assert "config file not found" in assert_one_line(proc)


def test_wrong_credentials_exit_3_with_message_and_trace(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = config(
        tmp_path,
        f'[account]\nbase_url = "{emulator.base_url}"\nclient_id = "cli-id"\n'
        'client_secret = "wrong-secret"\n',
    )
    proc = run(["--config", str(path), "login"], tmp_path)
    assert proc.returncode == 3
    line = assert_one_line(proc)
    assert "401" in line
    assert "x-traceID" in line
    assert "wrong-secret" not in proc.stderr + proc.stdout


def test_login_stores_token_0600_and_never_prints_secrets(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = config(
        tmp_path,
        f'[account]\nbase_url = "{emulator.base_url}"\nclient_id = "cli-id"\n'
        f'client_secret = "{SECRET}"\n',
    )
    proc = run(["-vv", "--config", str(path), "login"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    token_files = list((tmp_path / "data").rglob("token*.json"))
    assert token_files, "login stored no token"
    for token_file in token_files:
        assert token_file.stat().st_mode & 0o777 == 0o600
    stored = json.loads(token_files[0].read_text())["tokens"]
    access_tokens = [entry["accessToken"] for entry in stored.values()]
    log = requests.get(emulator.base_url + "/_emulator/requests", timeout=10).json()["requests"]
    assert any(r["path"] == "/api/v1/access_token" for r in log)
    output = proc.stdout + proc.stderr
    assert SECRET not in output
    assert access_tokens and not any(tok in output for tok in access_tokens)


def test_login_reuses_the_stored_token(tmp_path: Path, emulator: Emulator) -> None:
    """A second login checks the stored token instead of fetching a new one (3-token cap)."""
    path = config(
        tmp_path,
        f'[account]\nbase_url = "{emulator.base_url}"\nclient_id = "cli-id"\n'
        f'client_secret = "{SECRET}"\n',
    )

    def token_requests() -> int:
        log = requests.get(emulator.base_url + "/_emulator/requests", timeout=10).json()
        return sum(r["path"] == "/api/v1/access_token" for r in log["requests"])

    before = token_requests()
    for _ in range(3):
        proc = run(["--config", str(path), "login"], tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert token_requests() == before + 1


@pytest.mark.parametrize("listening", [False, True], ids=["refused", "silent"])
def test_unreachable_service_exits_4_within_timeout(tmp_path: Path, listening: bool) -> None:
    """A refused port fails at once; a host that accepts but never answers, after the timeouts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        if listening:
            sock.listen(16)  # accepts connections into the backlog, never answers
        else:
            sock.close()
        path = config(
            tmp_path,
            f'[account]\nbase_url = "http://127.0.0.1:{port}"\nclient_id = "a"\n'
            'client_secret = "b"\n[network]\nconnect_timeout = 1.0\nread_timeout = 1.0\n'
            "max_attempts = 2\nbackoff_initial = 0.1\nbackoff_max = 0.2\n",
        )
        started = time.monotonic()
        proc = run(["--config", str(path), "login"], tmp_path, timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 4
    line = assert_one_line(proc)
    assert f"127.0.0.1:{port}" in line
    # Two attempts of at most 1 s each and a short backoff: bounded by the configuration, not by
    # requests' defaults (which would wait forever on a silent host). The bound is loose on purpose.
    assert elapsed < 30


def test_usage_error_exit_2(tmp_path: Path) -> None:
    proc = run(["no-such-command"], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_debug_output_of_a_whole_run_holds_no_credential(tmp_path: Path) -> None:
    """`imgsync -vv demo` runs client and emulator in one process, so every log line of both
    reaches stderr: no token, no presigned URL signature may be among them."""
    proc = run(["-vv", "demo", "--dir", str(tmp_path)], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "put_slice" in proc.stderr  # the debug log did cover the uploads
    for credential_marker in ("X-Amz-Signature", "Bearer ", "accessToken", "clientSecret"):
        assert credential_marker not in output
    # A presigned URL is shown by its path at most, never with its query ("?…" marks a cut one).
    assert not re.search(r"/_s3/\S*\?(?!…)", output)
    token_file = tmp_path / "imgsync-demo" / ".imgsync-data" / "token.json"
    stored = json.loads(token_file.read_text())["tokens"]
    for entry in stored.values():
        assert entry["accessToken"] not in output
