"""``imgsync sync`` at scale: 10,000 and 100,000 notes.

Two figures per size, on a vault of text-only notes (the case the issue measured: 415 MB peak for
the first sync of 100,000 notes, and a no-op re-sync 2.9 x a bare walk at 100,000 against 2.2 x at
10,000):

- the **peak resident memory** (``ru_maxrss`` of the process, from ``wait4``) of the first sync,
  ``imgsync sync VAULT`` in a fresh process; target <= 120 MB. Every note is read, scanned and
  stamped in the cache; memory must not grow by what each note held until the end;
- the **no-op re-sync** against a bare walk: ``imgsync sync VAULT`` once every note is stamped,
  against ``python -c`` with ``os.walk`` + ``os.stat`` of every note (noop_resync.py's baseline),
  both fresh processes, alternating, ROUNDS times, median wall time; target <= 2 x. Each timed
  re-sync is checked to make no request and change no file.

The emulator runs in-process only to answer nothing: text-only notes need no request, and the
run's request log proves it.

Run: ``.venv/bin/python benchmarks/sync_scale.py [--sizes 10000 100000] [--rounds N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from noop_resync import BASELINE, OLD_S, config, imgsync_command, state, timed

TARGET_PEAK = 120 * 1024 * 1024
TARGET_RATIO = 2.0
DEFAULT_SIZES = (10_000, 100_000)
DEFAULT_ROUNDS = 7
NOTES_PER_FOLDER = 100
# ru_maxrss is in KiB on Linux, in bytes on macOS.
MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
MIB = 1024 * 1024


def make_vault(vault: Path, count: int) -> None:
    """``count`` text-only notes of a few hundred bytes, 100 a folder, mtimes an hour back."""
    then = time.time() - OLD_S
    for n in range(count):
        folder = vault / f"area{n // NOTES_PER_FOLDER:04d}"
        if n % NOTES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        path = folder / f"note-{n:06d}.md"
        path.write_text(
            f"# Note {n}\n\nSome text, a [link](https://example.com/{n}), `code`, **bold**.\n\n"
            "- a list\n- of things\n\n> a quote\n",
            encoding="utf-8",
        )
        os.utime(path, (then, then))


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[int, float]:
    """Run ``cmd``; its own peak RSS in bytes and its wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed: {err[-2000:]}")
    return usage.ru_maxrss * MAXRSS_UNIT, elapsed


def measure(size: int, rounds: int, base_url: str, log_size: object) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vault = root / "vault"
        make_vault(vault, size)
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMGSYNC_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env = {
            **keep,
            "IMGSYNC_CONFIG": str(config(root / "config.toml", base_url)),
            "IMGSYNC_DATA_DIR": str(root / "data"),
        }
        sync = [*imgsync_command(), "sync", str(vault)]
        subprocess.run([*imgsync_command(), "--version"], env=env, check=True, capture_output=True)
        requests_before = log_size()  # type: ignore[operator]
        peak, first_s = peak_rss(sync, env)

        # The notes' mtimes are an hour old: their stamps are trusted by their stat at once.
        baseline = [sys.executable, "-c", BASELINE, str(vault)]
        files_before = state(vault)
        for _ in range(2):  # warm the page cache for both
            timed(baseline, env)
            timed(sync, env)
        times: dict[str, list[float]] = {"walk": [], "sync": []}
        cpu: dict[str, list[float]] = {"walk": [], "sync": []}
        for round_no in range(rounds):
            pair = [("walk", baseline), ("sync", sync)]
            if round_no % 2:
                pair.reverse()
            for name, cmd in pair:
                elapsed, used = timed(cmd, env)
                times[name].append(elapsed)
                cpu[name].append(used)
        assert log_size() == requests_before, "text-only notes made requests"  # type: ignore[operator]
        assert state(vault) == files_before, "a no-op re-sync changed files"
    return {
        "peak": peak,
        "first_s": first_s,
        "walk": statistics.median(times["walk"]),
        "sync": statistics.median(times["sync"]),
        "walk_cpu": statistics.median(cpu["walk"]),
        "sync_cpu": statistics.median(cpu["sync"]),
    }


def main() -> int:
    from imgsync.emulator import Emulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()

    met = True
    with Emulator(port=0) as emu:
        for size in args.sizes:
            figures = measure(size, args.rounds, emu.base_url, lambda: len(emu.app.log.entries()))
            ratio = figures["sync"] / figures["walk"]
            peak_ok = figures["peak"] <= TARGET_PEAK
            ratio_ok = ratio <= TARGET_RATIO
            met = met and peak_ok and ratio_ok
            print(f"{size:,} text-only notes:")
            print(
                f"  first sync: {figures['first_s']:.1f} s, peak RSS "
                f"{figures['peak'] / MIB:.1f} MiB (target <= {TARGET_PEAK / MIB:.0f} MiB: "
                f"{'met' if peak_ok else 'MISSED'})"
            )
            print(
                f"  no-op re-sync {figures['sync'] * 1e3:.1f} ms against a bare walk + stat "
                f"{figures['walk'] * 1e3:.1f} ms (median of {args.rounds}): ratio {ratio:.2f} "
                f"(target <= {TARGET_RATIO:g}: {'met' if ratio_ok else 'MISSED'})"
            )
            print(
                f"  CPU time: {figures['sync_cpu'] * 1e3:.1f} ms against "
                f"{figures['walk_cpu'] * 1e3:.1f} ms, ratio "
                f"{figures['sync_cpu'] / figures['walk_cpu']:.2f} (steadier on a busy machine)"
            )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
