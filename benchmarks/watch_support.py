"""What the watcher benchmarks share: a config for the in-process emulator, a PNG, and
``imgsync watch --json`` in a subprocess whose JSON events are read as they come."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEADLINE_S = 600.0


def png(tag: str) -> bytes:
    """A valid 1x1 PNG, distinct per tag."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"tEXt", b"imgsync\x00" + tag.encode())
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def write_config(path: Path, base_url: str) -> Path:
    """The emulator's demo account, no client-side rate limit (the emulator's own applies)."""
    from imgsync.config import DEFAULT_QPS

    lines = ["[account]", f'base_url = "{base_url}"', 'client_id = "demo"']
    lines += ['client_secret = "demo"', "", "[network.qps]"]
    lines += [f"{key} = 0" for key in DEFAULT_QPS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def environment(root: Path, config: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("IMGSYNC_", "XDG_"))}
    home = root / "home"
    home.mkdir(exist_ok=True)
    return {
        **keep,
        "HOME": str(home),
        "IMGSYNC_CONFIG": str(config),
        "IMGSYNC_DATA_DIR": str(root / "data"),
    }


class WatchProcess:
    """``imgsync watch --json ARGS`` in a subprocess; ``events`` are (arrival time, event)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "imgsync", "watch", "--json", *args]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append((time.monotonic(), json.loads(line)))

    def wait(self, found: Callable[[dict[str, Any]], bool]) -> float:
        """Wait for an event ``found`` accepts; return when it arrived."""
        deadline = time.monotonic() + DEADLINE_S
        seen = 0
        while time.monotonic() < deadline:
            for at, event in self.events[seen:]:
                if found(event):
                    return at
            seen = len(self.events)
            if self.process.poll() is not None:
                raise SystemExit(f"imgsync watch ended early (status {self.process.returncode})")
            time.sleep(0.005)
        raise SystemExit("imgsync watch did not answer in time")

    def cpu_seconds(self) -> float:
        """User + system CPU time the watcher has used so far (Linux: /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)
