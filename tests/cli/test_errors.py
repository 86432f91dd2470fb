"""The command line's promise: a documented exit status and one clear line, never a traceback.

Each runs the command line against the emulator over loopback and checks what a user (or an
editor scraping stdout) sees: its exit status, stdout and stderr. Those that are about the process
(a usage error and the whole debug output of a real process) start the interpreter; the others
run the same console-script group in this process (:func:`tests.support.imgsync_in_process`),
which saves the tenth of a second of CPU each start costs.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from imgsync.emulator import Emulator

from ..support import imgsync_in_process, png_bytes

SECRET = "s3cr3t-value-that-must-never-show"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(client_id="cli-id", client_secret=SECRET) as emu:
        yield emu


def environment(tmp_path: Path) -> dict[str, str]:
    """A command's environment: none of the caller's IMGSYNC_*, data and config of its own."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")}
    full_env["IMGSYNC_DATA_DIR"] = str(tmp_path / "data")
    full_env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return full_env


def run(args: list[str], tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``imgsync ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "imgsync", *args],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=timeout,
    )


def cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``imgsync ARGS`` in this process, with the environment :func:`run` gives a subprocess."""
    return imgsync_in_process(args, environment(tmp_path))


def assert_one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def emulator_config(tmp_path: Path, emulator: Emulator) -> Path:
    """A config with the emulator's account."""
    return config(
        tmp_path,
        f'[account]\nbase_url = "{emulator.base_url}"\nclient_id = "cli-id"\n'
        f'client_secret = "{SECRET}"\n',
    )


def config(tmp_path: Path, text: str) -> Path:
    """The config file, readable by its owner only, as users are told to keep it."""
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
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
    proc = cli(["--config", str(path), "login"], tmp_path)
    assert proc.returncode == 2
    line = assert_one_line(proc)
    assert needle in line
    assert str(path) in line
    assert proc.stdout == ""


def test_a_misspelt_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = config(tmp_path, "[upload]\nconcurency = 8\n")
    proc = cli(["--config", str(path), "login"], tmp_path)
    assert proc.returncode == 2
    assert assert_one_line(proc) == (
        f"imgsync: {path}: unknown key upload.concurency; did you mean upload.concurrency?"
    )


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_config_file_everyone_can_read_is_used_with_one_warning(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = emulator_config(tmp_path, emulator)
    path.chmod(0o644)
    proc = cli(["--config", str(path), "login"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    warning, done = proc.stderr.strip().splitlines()
    assert warning == (
        f"imgsync: warning: {path} holds account.client_secret and other users of this machine "
        f"can read it: run chmod 600 {path}"
    )
    assert done.startswith("logged in to ")
    assert SECRET not in proc.stderr


def test_missing_config_file_named_explicitly(tmp_path: Path) -> None:
    proc = cli(["--config", str(tmp_path / "none.toml"), "login"], tmp_path)
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
    proc = cli(["--config", str(path), "login"], tmp_path)
    assert proc.returncode == 3
    line = assert_one_line(proc)
    assert "401" in line
    assert "x-traceID" in line
    assert "wrong-secret" not in proc.stderr + proc.stdout


def test_login_stores_token_0600_and_never_prints_secrets(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = emulator_config(tmp_path, emulator)
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
    path = emulator_config(tmp_path, emulator)

    def token_requests() -> int:
        log = requests.get(emulator.base_url + "/_emulator/requests", timeout=10).json()
        return sum(r["path"] == "/api/v1/access_token" for r in log["requests"])

    before = token_requests()
    for _ in range(3):
        proc = cli(["--config", str(path), "login"], tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert token_requests() == before + 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", ["login", "sync", "upload"])
def test_a_refused_port_fails_within_seconds_naming_the_host(tmp_path: Path, command: str) -> None:
    """With the default network settings (six attempts, backoff up to 30 s), a refused connection
    is tried twice: the run ends in a few seconds, not after 15 s of silence."""
    port = closed_port()
    path = config(
        tmp_path,
        f'[account]\nbase_url = "http://127.0.0.1:{port}"\nclient_id = "a"\nclient_secret = "b"\n',
    )
    image = tmp_path / "notes" / "img.png"
    image.parent.mkdir()
    image.write_bytes(png_bytes("refused"))
    (tmp_path / "notes" / "a.md").write_text("![x](img.png)\n", encoding="utf-8")
    target = {"login": [], "sync": [str(tmp_path / "notes")], "upload": [str(image)]}[command]
    started = time.monotonic()
    proc = cli(["--config", str(path), command, *target], tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 4, proc.stderr
    output = proc.stderr + proc.stdout
    assert f"127.0.0.1:{port} refused the connection" in output
    assert "tried 2 times): check account.base_url" in output
    assert "Errno" not in output and "Traceback" not in output
    assert elapsed <= 5, f"{command} took {elapsed:.1f} s"  # the acceptance bound of issue 8


def test_a_silent_service_is_announced_while_waiting_and_exits_4(tmp_path: Path) -> None:
    """A host that accepts but never answers: each wait is announced, then one line says why."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # accepts connections into the backlog, never answers
        port = sock.getsockname()[1]
        path = config(
            tmp_path,
            f'[account]\nbase_url = "http://127.0.0.1:{port}"\nclient_id = "a"\n'
            'client_secret = "b"\n[network]\nconnect_timeout = 1.0\nread_timeout = 1.0\n'
            "max_attempts = 2\nbackoff_initial = 0.1\nbackoff_max = 0.2\n",
        )
        started = time.monotonic()
        proc = cli(["--config", str(path), "login"], tmp_path)
        elapsed = time.monotonic() - started
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    notice, line = proc.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"imgsync: warning: 127\.0\.0\.1:{port} did not answer within 1 s \(access_token\); "
        r"retrying in 0\.\d s \(attempt 2 of 2\)",
        notice,
    ), notice
    assert line == (
        f"imgsync: 127.0.0.1:{port} did not answer within 1 s (access_token; tried 2 times): "
        f"check account.base_url (http://127.0.0.1:{port}), your network and any proxy"
    )
    # Two attempts of at most 1 s each and a short backoff: bounded by the configuration, not by
    # requests' defaults (which would wait forever on a silent host). The bound is loose on purpose.
    assert elapsed < 30


def test_a_trailing_api_in_base_url_exits_2_naming_it(tmp_path: Path, emulator: Emulator) -> None:
    base_url = emulator.base_url + "/api"
    path = config(
        tmp_path,
        f'[account]\nbase_url = "{base_url}"\nclient_id = "cli-id"\nclient_secret = "{SECRET}"\n',
    )
    proc = cli(["--config", str(path), "login"], tmp_path)
    assert proc.returncode == 2
    assert assert_one_line(proc) == (
        f"imgsync: account.base_url is {base_url!r}, but /api/api/v1/access_token is not there "
        "(HTTP 404): leave /api off its end"
    )


def test_a_plain_web_server_is_named_as_not_the_123pan_api(tmp_path: Path) -> None:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        path = config(
            tmp_path,
            f'[account]\nbase_url = "http://127.0.0.1:{port}"\nclient_id = "a"\n'
            'client_secret = "b"\n',
        )
        proc = cli(["--config", str(path), "login"], tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 4
    line = assert_one_line(proc)
    assert line.startswith(
        f"imgsync: 127.0.0.1:{port} is not the 123pan open API (it answered HTTP 501 "
        "Unsupported method ('POST') with an HTML page: "
    ), line
    assert line.endswith(
        f"check account.base_url (http://127.0.0.1:{port}) and any proxy in between"
    )


def test_log_lines_reach_the_stderr_of_the_run_that_logs_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The group may run more than once in one process (these tests run it so): a retry's notice
    of a later run goes to that run's stderr, not to the first run's, which is gone."""
    import logging

    from click.testing import CliRunner

    from imgsync.cli.app import _setup_logging

    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)
    for run_no in (1, 2):
        with CliRunner().isolation() as (_out, err, _both):
            _setup_logging(0)
            logging.getLogger("imgsync.client").warning("retrying, run %d", run_no)
            assert err.getvalue() == f"imgsync: warning: retrying, run {run_no}\n".encode()


def test_usage_error_exit_2(tmp_path: Path) -> None:
    proc = run(["no-such-command"], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.slow(4)
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
