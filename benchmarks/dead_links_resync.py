"""A no-op re-sync of a vault with 50 dead remote image links, against the same vault without them.

Issue 8's target: the re-sync with the dead links costs at most 1.2x the one without, and sends no
request. Before the remote-image policy, each dead link was tried again on every run (seconds
each, and a new offline task on the service each time).

Setup: two copies of one generated vault (``noop_resync.make_vault``: NOTES notes, most with local
images); in the second, DEAD notes spread through the vault each also link one dead remote image,
``https://dead-N.imgsync-bench.invalid/pic-N.png`` (a name that never resolves, RFC 6761: the
service's migration fails, then imgsync's own download). Each copy is synced once against an
in-process emulator (the second copy's first sync makes its offline tasks and remembers the
failures), then once more after the cache's racy window (so the note stamps are trusted). Then
``imgsync sync`` of each copy runs as a fresh process, alternating, ROUNDS times; the figure is the
median wall time (CPU time printed too). Every timed run is checked to send no request and change
no file, and one run of the second copy is checked for the HTTP stack being loaded.

Prints both medians and the ratio (target: <= 1.2).

Run: ``.venv/bin/python benchmarks/dead_links_resync.py [--notes N] [--dead N] [--rounds N]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from noop_resync import RACY_WINDOW_S, config, imgsync_command, make_vault, state

TARGET_RATIO = 1.2
DEFAULT_NOTES = 10_000
DEFAULT_DEAD = 50
DEFAULT_ROUNDS = 11
DEAD_URL = "https://dead-{n}.imgsync-bench.invalid/pic-{n}.png"

# Whether a process running ``imgsync sync`` loaded the HTTP stack (it needs none to answer dead
# links from the index): imgsync's entry point run in-process, then sys.modules looked at.
PROBE = """
import runpy, sys
sys.argv = ["imgsync", "sync", sys.argv[1]]
try:
    runpy.run_module("imgsync", run_name="__main__")
except SystemExit:
    pass
heavy = sorted({"requests", "urllib3", "imgsync.client.api", "mistune"} & set(sys.modules))
print(",".join(heavy) or "none", file=sys.__stderr__)
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall time, CPU time) of a fresh process running ``cmd``; its exit status is not checked
    (``noop_resync.timed`` checks it): a re-sync that reads a note of dead links exits 1, one
    that skips it as stamped until their retry time exits 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def add_dead_links(vault: Path, dead: int) -> list[Path]:
    """Append one dead remote image link to ``dead`` notes spread evenly through the vault."""
    notes = sorted(vault.rglob("*.md"))
    step = max(1, len(notes) // dead)
    chosen = notes[::step][:dead]
    for n, note in enumerate(chosen):
        st = note.stat()
        note.write_text(note.read_text() + f"\n![gone]({DEAD_URL.format(n=n)})\n")
        os.utime(note, ns=(st.st_atime_ns, st.st_mtime_ns))  # as old as the others
    return chosen


def wait_past_racy_window(*vaults: Path) -> None:
    newest = max(mtime for vault in vaults for _size, mtime in state(vault).values()) / 1e9
    while time.time() - newest < RACY_WINDOW_S + 0.1:
        time.sleep(newest + RACY_WINDOW_S + 0.1 - time.time())


def main() -> int:
    from imgsync.emulator import Emulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=DEFAULT_NOTES)
    parser.add_argument("--dead", type=int, default=DEFAULT_DEAD)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()

    with Emulator(port=0) as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clean, dead = root / "clean", root / "dead"
        make_vault(clean, args.notes)
        shutil.copytree(clean, dead, copy_function=shutil.copy2)
        add_dead_links(dead, args.dead)
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMGSYNC_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        cfg = config(root / "config.toml", emu.base_url)
        env = {
            name: {
                **keep,
                "IMGSYNC_CONFIG": str(cfg),
                "IMGSYNC_DATA_DIR": str(root / f"data-{name}"),
            }
            for name in ("clean", "dead")
        }
        sync = {name: [*imgsync_command(), "sync", str(root / name)] for name in env}

        first: dict[str, float] = {}
        failed = 0
        for name in env:
            start = time.perf_counter()
            proc = subprocess.run(
                [*sync[name][:-1], "--json", sync[name][-1]], env=env[name], capture_output=True
            )
            first[name] = time.perf_counter() - start
            totals = json.loads(proc.stdout)["totals"]
            failed = totals["failed"] if name == "dead" else failed
        tasks = len([r for r in emu.app.log.entries() if r["path"].endswith("/offline/download")])
        wait_past_racy_window(clean, dead)
        for name in env:
            subprocess.run(sync[name], env=env[name], capture_output=True)

        requests_before = len(emu.app.log.entries())
        files_before = {name: state(root / name) for name in env}
        for name in env:  # warm the page cache for both
            subprocess.run(sync[name], env=env[name], capture_output=True)
        times: dict[str, list[float]] = {"clean": [], "dead": []}
        cpu: dict[str, list[float]] = {"clean": [], "dead": []}
        for round_no in range(args.rounds):
            order = ["clean", "dead"] if round_no % 2 == 0 else ["dead", "clean"]
            for name in order:
                elapsed, used = timed(sync[name], env[name])
                times[name].append(elapsed)
                cpu[name].append(used)
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, str(dead)],
            env=env["dead"],
            capture_output=True,
            text=True,
        )
        sent = len(emu.app.log.entries()) - requests_before
        assert all(state(root / name) == files_before[name] for name in env), "files changed"

    ratio = statistics.median(times["dead"]) / statistics.median(times["clean"])
    print(
        f"vault: {args.notes} notes; the second copy adds {args.dead} dead remote links "
        f"({failed} failed in its first sync, {tasks} offline tasks made)"
    )
    print(f"first syncs: clean {first['clean']:.1f} s, with dead links {first['dead']:.1f} s")
    print(f"rounds: {args.rounds} (median wall time of fresh processes, alternating)")
    for name, label in (("clean", "without dead links"), ("dead", "with dead links   ")):
        wall_ms = statistics.median(times[name]) * 1e3
        cpu_ms = statistics.median(cpu[name]) * 1e3
        print(f"imgsync sync, {label}: {wall_ms:7.1f} ms   (CPU {cpu_ms:6.1f} ms)")
    print(f"requests sent by the timed re-syncs: {sent}")
    print(
        f"HTTP stack loaded by a re-sync with dead links: {probe.stderr.strip().splitlines()[-1]}"
    )
    verdict = "met" if ratio <= TARGET_RATIO and sent == 0 else "MISSED"
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO} and no request: {verdict})")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
