"""Bytes read from disk per uploaded byte, for new images below the in-memory threshold.

An image that fits in memory should be read once: its kind sniffed, its md5 computed and its
bytes uploaded from that one read. The figure is the process's ``rchar`` (bytes passed to read()
and pread(): files, the cache database; sockets are not counted) while uploading fresh images,
divided by the bytes uploaded. The baseline, measured the same way in the same run, is reading
the same files once with ``open(path, "rb").read()`` (ratio 1.00 by construction, plus whatever
the measurement itself costs).

Linux only (``/proc/self/io``). Prints per size class and overall (target: <= 1.05).

Run: ``.venv/bin/python benchmarks/upload_read_ratio.py``
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from upload_support import EmulatorProcess, write_config, write_png

TARGET_RATIO = 1.05
KIB = 1024
# Typical screenshot and photo sizes, all below the default 32 MiB in-memory threshold.
SIZE_CLASSES = (4 * KIB, 20 * KIB, 100 * KIB, 500 * KIB, 2048 * KIB, 8192 * KIB, 24576 * KIB)
IMAGES_PER_CLASS = 5


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def main() -> int:
    if not Path("/proc/self/io").exists():
        print("needs Linux /proc/self/io")
        return 2
    logging.disable(logging.CRITICAL)
    from imgsync.config import load_settings
    from imgsync.engine.uploader import Uploader

    rows = []
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = write_config(root / "config.toml", emu.base_url)
        settings = load_settings(config, environ={"IMGSYNC_DATA_DIR": str(root / "data")})
        with Uploader.from_settings(settings) as up:
            warm = root / "warm.png"
            write_png(warm, "warm", 10 * KIB)
            assert up.upload_path(warm).ok  # imports, token, folders: out of the measurement
            for size in SIZE_CLASSES:
                ours_paths = [root / f"u-{size}-{i}.png" for i in range(IMAGES_PER_CLASS)]
                base_paths = [root / f"b-{size}-{i}.png" for i in range(IMAGES_PER_CLASS)]
                for i, (a, b) in enumerate(zip(ours_paths, base_paths, strict=True)):
                    write_png(a, f"ours-{size}-{i}", size)
                    write_png(b, f"base-{size}-{i}", size)
                before = rchar()
                for path in base_paths:
                    with open(path, "rb") as handle:
                        handle.read()
                base_read = rchar() - before
                before = rchar()
                for path in ours_paths:
                    result = up.upload_path(path)
                    assert result.status == "uploaded", result.error
                ours_read = rchar() - before
                rows.append((size, size * IMAGES_PER_CLASS, base_read, ours_read))

    print(
        f"{'image size':>12} {'uploaded':>12} {'baseline read':>14} {'imgsync read':>13}"
        f" {'base/byte':>10} {'ours/byte':>10} {'ours/base':>10}"
    )
    worst = 0.0
    for size, uploaded, base_read, ours_read in rows:
        per_byte = ours_read / uploaded
        worst = max(worst, per_byte)
        print(
            f"{size:>12} {uploaded:>12} {base_read:>14} {ours_read:>13}"
            f" {base_read / uploaded:>10.3f} {per_byte:>10.3f} {ours_read / base_read:>10.3f}"
        )
    total_up = sum(r[1] for r in rows)
    total_ours = sum(r[3] for r in rows)
    total_base = sum(r[2] for r in rows)
    print(
        f"overall: imgsync read {total_ours / total_up:.4f} bytes per uploaded byte "
        f"(baseline {total_base / total_up:.4f}); worst size class {worst:.3f} "
        f"(target <= {TARGET_RATIO})"
    )
    return 0 if worst <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
