"""Shared pieces of the ``upload_*`` benchmarks: an emulator in its own process, its control plane,
a config file for it, and image files.

The emulator runs as a separate process (``imgsync emulator --port 0``) so that the client being
measured does not share a GIL, or a memory figure, with the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CLIENT_ID = "bench"
CLIENT_SECRET = "bench"
VENV_BIN = Path(sys.executable).parent
READY_PREFIX = "imgsync emulator listening on "
ENDPOINTS = (
    "access_token",
    "create",
    "mkdir",
    "list",
    "detail",
    "delete",
    "move",
    "get_upload_url",
    "upload_complete",
    "upload_async_result",
    "offline",
    "copy",
)


def imgsync_command() -> list[str]:
    """The installed console script (what Typora runs), else ``python -m imgsync``."""
    script = VENV_BIN / "imgsync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "imgsync"]


class EmulatorProcess:
    """``imgsync emulator`` in a child process, with its control plane."""

    def __init__(self) -> None:
        cmd = [*imgsync_command(), "emulator", "--port", "0"]
        cmd += ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(READY_PREFIX):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.base_url = line[len(READY_PREFIX) :]

    def control(self, what: str, body: Any = None) -> Any:
        url = f"{self.base_url}/_emulator/{what}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def requests(self) -> list[dict[str, Any]]:
        return self.control("requests")["requests"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_config(
    path: Path,
    base_url: str,
    *,
    qps: float = 0,
    upload: Mapping[str, Any] | None = None,
) -> Path:
    """A config for the benchmark account; ``qps`` applies to every endpoint (0 = unlimited)."""
    lines = [
        "[account]",
        f"base_url = {json.dumps(base_url)}",
        f"client_id = {json.dumps(CLIENT_ID)}",
        f"client_secret = {json.dumps(CLIENT_SECRET)}",
        "",
        "[network]",
        "backoff_initial = 0.05",
        "",
        "[network.qps]",
        *(f"{key} = {qps}" for key in ENDPOINTS),
        "",
        "[upload]",
        *(f"{k} = {json.dumps(v)}" for k, v in (upload or {}).items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)  # it holds the client secret; imgsync warns about a config others can read
    return path


def environment(config: Path, data_dir: Path) -> dict[str, str]:
    """The child processes' environment: the benchmark's config and data folder, and bytecode
    caching on (as on a user's machine; a PYTHONDONTWRITEBYTECODE development shell would time
    the compiler instead), kept beside the data folder so the work tree stays clean."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        IMGSYNC_CONFIG=str(config),
        IMGSYNC_DATA_DIR=str(data_dir),
        PYTHONPYCACHEPREFIX=str(data_dir.parent / "pycache"),
    )
    return env


def write_png(path: Path, tag: str, size: int) -> None:
    """A file with PNG leading bytes and ``size`` bytes in all, unique per tag; mtime backdated so
    the cache trusts its stat stamp at once (a just-written file is re-hashed: 'racy')."""
    head = b"\x89PNG\r\n\x1a\n" + hashlib.sha256(tag.encode()).digest()
    block = hashlib.sha512(tag.encode()).digest() * 2048  # 128 KiB
    with open(path, "wb") as handle:
        handle.write(head)
        left = size - len(head)
        while left > 0:
            chunk = block[:left]
            handle.write(chunk)
            left -= len(chunk)
    then = time.time() - 60
    os.utime(path, (then, then))
