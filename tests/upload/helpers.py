"""Helpers for the upload tests: image bytes of each kind, a config file, the control plane."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

CLIENT_ID = "upload-tests"
CLIENT_SECRET = "upload-secret-5f0b2e7a-never-print-me"
KINDS = ("png", "jpeg", "gif", "webp", "svg")
EXT = {"png": ".png", "jpeg": ".jpg", "gif": ".gif", "webp": ".webp", "svg": ".svg"}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def filler(tag: str, size: int) -> bytes:
    """``size`` bytes, distinct per tag, cheap to make even for megabytes."""
    seed = hashlib.sha256(tag.encode()).digest() * 32  # 1 KiB block
    block = (seed * (1 + (1 << 20) // len(seed)))[: 1 << 20]
    head = tag.encode()[:64].ljust(64, b".")
    body = head + block * (size // len(block) + 1)
    return body[:size]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_bytes(kind: str, tag: str, size: int = 2048) -> bytes:
    """An image of ``kind`` (right leading bytes), padded with tag-unique bytes to ``size``."""
    if kind == "png":
        head = b"\x89PNG\r\n\x1a\n" + _png_chunk(
            b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
        )
    elif kind == "jpeg":
        head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    elif kind == "gif":
        head = b"GIF89a\x01\x00\x01\x00\x00\x00\x00"
    elif kind == "webp":
        head = b"RIFF" + struct.pack("<I", max(size - 8, 4)) + b"WEBPVP8 "
    elif kind == "svg":
        head = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><!-- '
        tail = b" --></svg>\n"
        pad = filler(tag, max(0, size - len(head) - len(tail))).hex().encode()
        return (head + pad[: max(0, size - len(head) - len(tail))] + tail)[: max(size, len(head))]
    else:
        raise ValueError(kind)
    return head + filler(tag, max(0, size - len(head)))


def write_image(path: Path, kind: str, tag: str, size: int = 2048, *, old: bool = True) -> bytes:
    """Write an image; ``old`` backdates its mtime so the cache trusts its stat stamp at once
    (a stamp recorded within 2 s of the mtime is 'racy' and re-hashed)."""
    data = image_bytes(kind, tag, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        backdate(path)
    return data


def backdate(path: Path, seconds: float = 60.0) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def write_config(
    path: Path,
    base_url: str,
    *,
    upload: Mapping[str, Any] | None = None,
    network: Mapping[str, Any] | None = None,
    qps: Mapping[str, float] | None = None,
    account: Mapping[str, Any] | None = None,
) -> Path:
    """A TOML config: the test account, tiny backoff, no client-side rate limit unless given."""
    acc = {"base_url": base_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    acc.update(account or {})
    net = {
        "connect_timeout": 5.0,
        "read_timeout": 30.0,
        "max_attempts": 8,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    net.update(network or {})
    from imgsync.config import DEFAULT_QPS

    rates = {key: 0 for key in DEFAULT_QPS}
    rates.update(qps or {})
    lines = ["[account]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in acc.items()]
    lines += ["", "[network]"] + [f"{k} = {json.dumps(v)}" for k, v in net.items()]
    lines += ["", "[network.qps]"] + [f"{k} = {json.dumps(v)}" for k, v in rates.items()]
    lines += ["", "[upload]"] + [f"{k} = {json.dumps(v)}" for k, v in (upload or {}).items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Control:
    """The emulator's control plane (docs/contract.md)."""

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

    def faults(self, rules: list[dict[str, Any]] | None = None, random: Any = None) -> None:
        body: dict[str, Any] = {"rules": rules or []}
        if random is not None:
            body["random"] = random
        self._post("faults", body)

    def config(self, **changes: Any) -> None:
        self._post("config", changes)

    def review(self, etag: str, status: int) -> None:
        self._post("review", {"etag": etag, "status": status})

    def requests(self, path_part: str = "", method: str | None = None) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.base_url}/_emulator/requests", timeout=30)
        assert resp.status_code == 200
        return [
            r
            for r in resp.json()["requests"]
            if path_part in r["path"] and (method is None or r["method"] == method)
        ]

    def puts(self) -> list[dict[str, Any]]:
        return self.requests(method="PUT")

    def state(self) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.base_url}/_emulator/state", timeout=30)
        assert resp.status_code == 200
        return resp.json()["files"]

    def images(self) -> list[dict[str, Any]]:
        """Every file (not folder) on the image bed."""
        return [f for f in self.state() if f.get("type") == 0]

    def fetch(self, url: str) -> bytes:
        resp = self.http.get(url, timeout=60)
        assert resp.status_code == 200, (url, resp.status_code)
        return resp.content


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it is truthy (returned) or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
