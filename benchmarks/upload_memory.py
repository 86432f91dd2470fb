"""Peak memory of ``imgsync upload`` for a 100 MB image (the service's maximum).

A file that large is above the in-memory threshold: it is hashed by streaming and streamed again
slice by slice, so memory should not grow with the file. The figure is the peak resident set size
(``ru_maxrss``) of the ``imgsync upload big.png`` process; the emulator runs in another process.
Baselines from the same run: the same command uploading a 10 KB image, and ``python -c pass``.

Prints the peaks (target: <= 100 MB for the 100 MB image).

Run: ``.venv/bin/python benchmarks/upload_memory.py``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from upload_support import EmulatorProcess, environment, imgsync_command, write_config, write_png

MIB = 1024 * 1024
BIG_BYTES = 100 * MIB
TARGET_PEAK = 100 * MIB
# ru_maxrss is in KiB on Linux, in bytes on macOS.
MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def peak_rss(cmd: list[str], env: dict[str, str], workdir: Path) -> tuple[int, str]:
    """Run ``cmd``; return its own peak RSS in bytes (``wait4`` reports that one child) and its
    stdout."""
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed: {err_path.read_text(errors='replace')}")
    return usage.ru_maxrss * MAXRSS_UNIT, out_path.read_text()


def main() -> int:
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = environment(write_config(root / "config.toml", emu.base_url), root / "data")
        small, big = root / "small.png", root / "big.png"
        write_png(small, "memory-small", 10 * 1024)
        write_png(big, "memory-big", BIG_BYTES)
        # Compile bytecode and store the token first, so no run below pays for that.
        warm = root / "warm.png"
        write_png(warm, "memory-warm", 1024)
        subprocess.run(
            [*imgsync_command(), "upload", str(warm)], env=env, check=True, capture_output=True
        )
        base, _ = peak_rss([sys.executable, "-c", "pass"], env, root)
        small_peak, _ = peak_rss([*imgsync_command(), "upload", str(small)], env, root)
        big_peak, out = peak_rss([*imgsync_command(), "upload", str(big)], env, root)
        assert out.strip().startswith("http"), out
        uploaded = [f for f in emu.control("state")["files"] if f.get("size") == BIG_BYTES]
        assert uploaded, "the big image is not on the image bed"

    print(f"file size:                               {BIG_BYTES / MIB:6.1f} MiB")
    print(f"baseline  python -c pass:                {base / MIB:6.1f} MiB peak RSS")
    print(f"baseline  imgsync upload (10 KB image):  {small_peak / MIB:6.1f} MiB peak RSS")
    print(
        f"measured  imgsync upload (100 MB image): {big_peak / MIB:6.1f} MiB peak RSS "
        f"(target <= {TARGET_PEAK / MIB:.0f} MiB; {big_peak / small_peak:.2f} x the small upload)"
    )
    return 0 if big_peak <= TARGET_PEAK else 1


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.exit(main())
