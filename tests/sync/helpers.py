"""Helpers for the sync tests: tiny images, notes, a config file, the emulator's control plane."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

CLIENT_ID = "sync-tests"
CLIENT_SECRET = "sync-secret-3c1d9a-never-print-me"
CREATE_PATH = "/upload/v1/oss/file/create"
COMPLETE_PATH = "/upload/v1/oss/file/upload_complete"
# An mtime this far in the past makes the cache trust stat stamps at once (it distrusts a stamp
# recorded within 2 s of the file's mtime).
OLD_S = 60.0


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(tag: str) -> bytes:
    """A valid 1x1 PNG, distinct per tag (the tag goes into a tEXt chunk)."""
    raw = b"\x00\xff\x00\x00"  # filter byte + one red pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + _chunk(b"tEXt", b"imgsync\x00" + tag.encode())
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def backdate(path: Path, seconds: float = OLD_S, *, follow: bool = True) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=follow)


def write_png(path: Path, tag: str | None = None, *, old: bool = True) -> bytes:
    data = png_bytes(tag or path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        backdate(path)
    return data


def write_note(path: Path, content: str | bytes, *, old: bool = True) -> bytes:
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        backdate(path)
    return data


def write_config(
    path: Path,
    base_url: str,
    *,
    upload: Mapping[str, Any] | None = None,
    network: Mapping[str, Any] | None = None,
) -> Path:
    """A TOML config for the test account: tiny backoff, no client-side rate limits."""
    from imgsync.config import DEFAULT_QPS

    acc = {"base_url": base_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    net = {
        "connect_timeout": 5.0,
        "read_timeout": 30.0,
        "max_attempts": 3,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    net.update(network or {})
    up = {"concurrency": 8, "poll_deadline": 20.0}
    up.update(upload or {})
    lines = ["[account]"] + [f"{k} = {json.dumps(v)}" for k, v in acc.items()]
    lines += ["", "[network]"] + [f"{k} = {json.dumps(v)}" for k, v in net.items()]
    lines += ["", "[network.qps]"] + [f"{k} = 0" for k in DEFAULT_QPS]
    lines += ["", "[upload]"] + [f"{k} = {json.dumps(v)}" for k, v in up.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Control:
    """The emulator's control plane (docs/contract.md, "The emulator")."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False

    def _post(self, what: str, body: Any) -> Any:
        resp = self.http.post(f"{self.base_url}/_emulator/{what}", json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json() if resp.content else None

    def reset(self) -> None:
        self._post("reset", {})

    def faults(self, rules: list[dict[str, Any]]) -> None:
        self._post("faults", {"rules": rules})

    def config(self, **changes: Any) -> None:
        self._post("config", changes)

    def review(self, etag: str, status: int) -> None:
        self._post("review", {"etag": etag, "status": status})

    def requests(self, path_part: str = "") -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.base_url}/_emulator/requests", timeout=30)
        assert resp.status_code == 200
        return [r for r in resp.json()["requests"] if path_part in r["path"]]

    def created_md5s(self) -> list[str]:
        """The etag of every create request, in order."""
        return [r["json"]["etag"] for r in self.requests(CREATE_PATH)]

    def images(self) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.base_url}/_emulator/state", timeout=30)
        assert resp.status_code == 200
        return [f for f in resp.json()["files"] if f.get("type") == 0]

    def fetch(self, url: str) -> bytes:
        resp = self.http.get(url, timeout=30)
        assert resp.status_code == 200, (url, resp.status_code)
        return resp.content


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.01) -> Any:
    """Poll ``condition`` until it is truthy (returned) or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """(bytes, mtime_ns, mode) of every file below ``folder`` (symlinks by their own stat)."""
    result: dict[str, tuple[bytes, int, int]] = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(path).encode()
            elif stat.S_ISREG(st.st_mode):
                data = _read(path)
            else:
                data = b"<not a regular file>"
            result[path.relative_to(folder).as_posix()] = (data, st.st_mtime_ns, st.st_mode)
    return result


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        return f"<unreadable: {exc.errno}>".encode()
