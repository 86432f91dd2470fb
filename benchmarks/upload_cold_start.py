"""Cold start of a cache hit: ``imgsync upload x.png`` with everything cached, against
``python -c pass`` on the same machine in the same run.

Typora runs the command on every paste, so this is the latency a user feels. Both commands run as
fresh processes, alternating, ROUNDS times; the figure is the median wall time. The check also
lists which heavy modules a cache hit imported (``python -X importtime``): there must be none.

Prints both medians and the ratio (target: <= 5).

Run: ``.venv/bin/python benchmarks/upload_cold_start.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from upload_support import EmulatorProcess, environment, imgsync_command, write_config, write_png

TARGET_RATIO = 5.0
DEFAULT_ROUNDS = 30
HEAVY_MODULES = (
    "requests",
    "urllib3",
    "mistune",
    "watchdog",
    "imgsync.emulator",
    "imgsync.client.api",
)


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = environment(write_config(root / "config.toml", emu.base_url), root / "data")
        image = root / "x.png"
        write_png(image, "cold-start", 50_000)
        upload = [*imgsync_command(), "upload", str(image)]
        first = subprocess.run(upload, env=env, capture_output=True, text=True, check=True)
        url = first.stdout.strip()
        requests_before = len(emu.requests())

        baseline = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {"python -c pass": [], "imgsync upload (cached)": []}
        for _ in range(3):  # warm the page cache for both
            wall(baseline, env)
            wall(upload, env)
        for round_no in range(args.rounds):
            pair = [("python -c pass", baseline), ("imgsync upload (cached)", upload)]
            if round_no % 2:
                pair.reverse()
            for name, cmd in pair:
                times[name].append(wall(cmd, env))

        again = subprocess.run(upload, env=env, capture_output=True, text=True, check=True)
        assert again.stdout.strip() == url, (again.stdout, url)
        assert len(emu.requests()) == requests_before, "a cache hit made requests"

        cmd = [sys.executable, "-X", "importtime", "-m", "imgsync", "upload", str(image)]
        trace = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stderr
        imported = {
            line.rsplit("|", 1)[-1].strip()
            for line in trace.splitlines()
            if line.startswith("import time:")
        }
        heavy = sorted(
            m for m in imported if m.split(".")[0] in HEAVY_MODULES or m in HEAVY_MODULES
        )

    base = statistics.median(times["python -c pass"])
    ours = statistics.median(times["imgsync upload (cached)"])
    ratio = ours / base
    print(f"rounds: {args.rounds} (median wall time of fresh processes)")
    print(f"baseline  python -c pass:            {base * 1000:7.1f} ms")
    print(f"measured  imgsync upload x.png (hit): {ours * 1000:7.1f} ms")
    print(f"ratio: {ratio:.2f} (target <= {TARGET_RATIO:g})")
    print(f"modules imported on a cache hit: {len(imported)}; heavy ones: {heavy or 'none'}")
    print(f"requests sent by cache hits: 0 (log unchanged at {requests_before})")
    return 0 if ratio <= TARGET_RATIO and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
