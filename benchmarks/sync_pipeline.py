"""First sync of a vault under the service's limits: is the total time the limits' bound, and is the
first note written at once rather than at the end?

Vault: NOTES notes, each with two image links, IMAGES distinct new images in all (every image is
shown by several notes). The emulator runs in its own process with LATENCY per API request and
the service's default rate limits (the ones imgsync assumes by default, ``config.DEFAULT_QPS``:
``create`` 2 a second, the binding one); imgsync runs as ``imgsync sync VAULT`` in a fresh process
with its default configuration (concurrency, client-side limits).

Figures, from the same run:

- the **bound** the limits imply: every distinct image needs one ``create``, so no client is done
  before the (IMAGES-1)/QPS seconds that IMAGES creates take; before the first create comes the
  token and the folders of ``imgsync/{year}/{month}``, one ``mkdir`` per level, each needing its
  parent's ID and ``mkdir`` limited too; after the last create, the rest of that image's chain.
  Each of those calls costs LATENCY;
- the **total** wall time of ``imgsync sync`` (process start to exit);
- the **time to the first note written**: from process start to the earliest mtime of a
  rewritten note.

Targets: total <= 1.1 x the bound; first note <= 5 % of the total.

Run: ``.venv/bin/python benchmarks/sync_pipeline.py [--notes N] [--images N] [--latency-ms L]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from upload_support import CLIENT_ID, CLIENT_SECRET, EmulatorProcess, environment, imgsync_command
from upload_support import write_png as write_image

from imgsync.config import DEFAULT_QPS

TARGET_OF_BOUND = 1.1
TARGET_FIRST_SHARE = 0.05
# The levels of the default folder imgsync/{year}/{month}: one mkdir each, in a row, on a new bed.
FOLDER_LEVELS = 3
# API calls before the first create (the token, then one mkdir per level) and after the last one
# (get_upload_url, upload_complete, detail).
CALLS_BEFORE_FIRST_CREATE = 1 + FOLDER_LEVELS
CALLS_AFTER_CREATE = 3
IMAGE_BYTES = 2048
OLD_S = 3600.0
# The emulator's limits, by path: the service's, as imgsync assumes them by default.
SERVICE_QPS = {
    "/api/v1/access_token": DEFAULT_QPS["access_token"],
    "/upload/v1/oss/file/create": DEFAULT_QPS["create"],
    "/upload/v1/oss/file/mkdir": DEFAULT_QPS["mkdir"],
    "/api/v1/oss/file/list": DEFAULT_QPS["list"],
    "/api/v1/oss/file/detail": DEFAULT_QPS["detail"],
    "/upload/v1/oss/file/get_upload_url": DEFAULT_QPS["get_upload_url"],
    "/upload/v1/oss/file/upload_complete": DEFAULT_QPS["upload_complete"],
}


def make_vault(vault: Path, notes: int, images: int) -> dict[Path, bytes]:
    """NOTES notes of two links each over IMAGES images; returns each note's bytes."""
    then = time.time() - OLD_S
    (vault / "img").mkdir(parents=True)
    for i in range(images):
        write_image(vault / "img" / f"{i:03}.png", f"pipeline {i}", IMAGE_BYTES)
    originals = {}
    for n in range(notes):
        a, b = n % images, (n * 7 + images // 2) % images
        path = vault / f"note {n:03}.md"
        text = f"# Note {n}\n\nText.\n\n![a](img/{a:03}.png)\n\nMore.\n\n![b](img/{b:03}.png)\n"
        path.write_text(text, encoding="utf-8")
        originals[path] = path.read_bytes()
        os.utime(path, (then, then))
    return originals


def warm_up(root: Path, env: dict[str, str]) -> None:
    """Sync a one-note vault first, with a data folder of its own: every module a sync loads is
    compiled to bytecode then (as pip does at install), so the timed run does not pay for that."""
    warm = root / "warm"
    (warm / "img").mkdir(parents=True)
    write_image(warm / "img" / "w.png", "pipeline warm-up", IMAGE_BYTES)
    (warm / "w.md").write_text("![w](img/w.png)\n", encoding="utf-8")
    subprocess.run(
        [*imgsync_command(), "sync", str(warm)], env=env, check=True, capture_output=True
    )


def write_config(path: Path, base_url: str) -> Path:
    """imgsync's defaults for everything but the account: its client-side limits included."""
    lines = [
        "[account]",
        f"base_url = {json.dumps(base_url)}",
        f"client_id = {json.dumps(CLIENT_ID)}",
        f"client_secret = {json.dumps(CLIENT_SECRET)}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    create_qps = DEFAULT_QPS["create"]
    folders = (FOLDER_LEVELS - 1) / DEFAULT_QPS["mkdir"]
    bound = (
        folders
        + (args.images - 1) / create_qps
        + latency * (CALLS_BEFORE_FIRST_CREATE + 1 + CALLS_AFTER_CREATE)
    )
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vault = root / "vault"
        originals = make_vault(vault, args.notes, args.images)
        config = write_config(root / "config.toml", emu.base_url)
        env = environment(config, root / "data")
        warm_up(root, environment(config, root / "warm-data"))
        emu.control("reset", {})
        emu.control("config", {"latency_ms": args.latency_ms, "qps": SERVICE_QPS})

        start_wall, start = time.time(), time.perf_counter()
        done = subprocess.run(
            [*imgsync_command(), "sync", str(vault)], env=env, capture_output=True, text=True
        )
        total = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"sync failed ({done.returncode}): {done.stderr[-2000:]}")
        rewritten = [p for p, raw in originals.items() if p.read_bytes() != raw]
        first = min(p.stat().st_mtime for p in rewritten) - start_wall
        last = max(p.stat().st_mtime for p in rewritten) - start_wall
        log = emu.requests()
    counts = Counter(r["path"].rsplit("/", 1)[-1] for r in log if r["method"] != "PUT")
    refused = sum(1 for r in log if r["code"] == 429 or r["status"] == 429)

    print(
        f"{args.notes} notes, {2 * args.notes} image links, {args.images} distinct new images of "
        f"{IMAGE_BYTES} bytes; {args.latency_ms} ms latency per API request; the service's "
        f"default limits on both sides (create {create_qps:g}/s)"
    )
    print(f"requests: {dict(sorted(counts.items()))}; answered 429: {refused}")
    print(f"notes rewritten: {len(rewritten)} of {args.notes}")
    print(
        f"bound from the limits:   {bound:7.2f} s  ((LEVELS-1)/mkdir QPS + (IMAGES-1)/create QPS"
        f" + {CALLS_BEFORE_FIRST_CREATE + 1 + CALLS_AFTER_CREATE} x latency)"
    )
    ratio = total / bound
    print(
        f"imgsync sync, total:     {total:7.2f} s  = {ratio:.3f} x the bound "
        f"(target <= {TARGET_OF_BOUND})"
    )
    share = first / total
    print(
        f"first note written at:   {first:7.2f} s  = {100 * share:.1f} % of the total "
        f"(target <= {100 * TARGET_FIRST_SHARE:g} %); last at {last:.2f} s"
    )
    met = ratio <= TARGET_OF_BOUND and share <= TARGET_FIRST_SHARE
    print("targets met" if met else "targets MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
