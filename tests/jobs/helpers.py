"""What only the sync tests need: their config defaults, and a snapshot of a folder's files."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import support

# The sync tests' configs start from these: few attempts, so that a failure shows at once, and a
# fixed worker pool and poll deadline.
NETWORK = {"max_attempts": 3}
UPLOAD = {"concurrency": 8, "poll_deadline": 20.0}


def write_config(
    path: Path,
    base_url: str,
    *,
    upload: Mapping[str, Any] | None = None,
    network: Mapping[str, Any] | None = None,
    qps: Mapping[str, float] | None = None,
    cache: Mapping[str, Any] | None = None,
) -> Path:
    """``support.write_config`` with the sync tests' defaults under what is given."""
    return support.write_config(
        path,
        base_url,
        upload={**UPLOAD, **(upload or {})},
        network={**NETWORK, **(network or {})},
        qps=qps,
        cache=cache,
    )


def subprocess_env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """The environment of an ``imgsync`` subprocess: none of the caller's IMGSYNC_* or XDG_*, a
    home of its own (so no real config or data is touched), the test's data folder."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("IMGSYNC_", "XDG_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**keep, "HOME": str(home), "IMGSYNC_DATA_DIR": str(data_dir)}


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
