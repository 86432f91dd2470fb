"""The clip flow and the PicGo server on a cached image, against their baselines in the same run.

1. ``imgsync serve``: a cache-hit ``POST /upload`` of one path against ``POST /heartbeat`` (target:
   at most 2x). Both are sent to a real ``imgsync serve`` process, alternating, each on a fresh
   connection as editors send them; the figures are medians. The server keeps one upload session
   (index and API client open) for its life, as ``imgsync serve`` does.
2. ``imgsync clip``: the whole clip flow for a cached PNG (read the clipboard, write the image to a
   private temporary file, the engine's cache hit, format, put the link on the clipboard) against
   reading the clipboard itself (the same xclip reads), under Xvfb (target: at most 100 ms more).
   Measured in-process (the flow) and as fresh processes (``imgsync clip`` against ``xclip -o``),
   the PNG put back on the clipboard before each round, outside the timing.

Needs Xvfb and xclip (``.ci/run`` installs them). Prints the figures and the ratios.

Run: ``.venv/bin/python benchmarks/clip_serve.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from upload_support import EmulatorProcess, environment, imgsync_command, write_config, write_png

# The X server the desktop tests start (Xvfb on a free display, waited for), in one place.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.desktop.xserver import running_xvfb  # noqa: E402

SERVE_TARGET_RATIO = 2.0
CLIP_TARGET_MS = 100.0
DEFAULT_ROUNDS = 40
IMAGE_BYTES = 200_000  # a typical screenshot
LISTENING = "imgsync serve listening on "


def post_ms(port: int, path: str, body: bytes = b"") -> float:
    """One POST on a fresh connection, as an editor sends it; wall milliseconds."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"} if body else {}
    connection.request("POST", path, body=body, headers=headers)
    reply = connection.getresponse()
    document = json.loads(reply.read())
    connection.close()
    elapsed = (time.perf_counter() - started) * 1000
    assert document.get("success") is True, document
    return elapsed


def compare_serve(port: int, image: Path, rounds: int) -> tuple[float, float]:
    body = json.dumps({"list": [str(image)]}).encode()
    post_ms(port, "/upload", body)  # upload once: every later request is a cache hit
    beats, uploads = [], []
    for _ in range(rounds):
        beats.append(post_ms(port, "/heartbeat"))
        uploads.append(post_ms(port, "/upload", body))
    return statistics.median(beats), statistics.median(uploads)


@contextmanager
def serve_process(env: dict[str, str]) -> Iterator[int]:
    cmd = [*imgsync_command(), "serve", "--port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith(LISTENING):
            raise RuntimeError(f"imgsync serve did not start: {line!r}")
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(10)


def put_png(image: Path, env: dict[str, str]) -> None:
    subprocess.run(
        ["xclip", "-selection", "clipboard", "-t", "image/png", "-i", str(image)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed_rounds(rounds: int, before: Callable[[], None], work: Callable[[], object]) -> float:
    """Median milliseconds of ``work``, ``before`` run (untimed) ahead of each round."""
    samples = []
    for _ in range(rounds):
        before()
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def compare_clip(
    config: Path, data_dir: Path, image: Path, env: dict[str, str], rounds: int
) -> tuple[float, float, float, float]:
    from imgsync.config import load_settings
    from imgsync.desktop.clipboard import XclipClipboard
    from imgsync.jobs.clip import clip

    os.environ["DISPLAY"] = env["DISPLAY"]
    settings = load_settings(config, environ={"IMGSYNC_DATA_DIR": str(data_dir)})
    board = XclipClipboard()
    put_png(image, env)
    assert clip(settings, clipboard=board).ok  # uploaded once; cached from now on

    def again() -> None:
        put_png(image, env)

    read_ms = timed_rounds(rounds, again, board.read)
    flow_ms = timed_rounds(rounds, again, lambda: clip(settings, clipboard=board))
    child_env = environment(config, data_dir) | {"DISPLAY": env["DISPLAY"]}
    xclip_ms = timed_rounds(
        rounds,
        again,
        lambda: subprocess.run(
            ["xclip", "-selection", "clipboard", "-t", "image/png", "-o"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        ),
    )
    process_ms = timed_rounds(
        rounds,
        again,
        lambda: subprocess.run(
            [*imgsync_command(), "clip"], env=child_env, check=True, stdout=subprocess.DEVNULL
        ),
    )
    return read_ms, flow_ms, xclip_ms, process_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgsync-bench-clip-") as tmp, EmulatorProcess() as emu:
        folder = Path(tmp)
        config = write_config(folder / "config.toml", emu.base_url)
        data_dir = folder / "data"
        image = folder / "shot.png"
        write_png(image, "clip-serve", IMAGE_BYTES)
        env = environment(config, data_dir)

        with serve_process(env) as port:
            beat, upload = compare_serve(port, image, args.rounds)
        print(f"serve (imgsync serve process, one upload session), median of {args.rounds}:")
        print(f"  POST /heartbeat            {beat:8.2f} ms")
        print(f"  POST /upload, cache hit    {upload:8.2f} ms")
        print(f"  ratio {upload / beat:.2f} (target <= {SERVE_TARGET_RATIO:g})")

        with running_xvfb() as display:
            read_ms, flow_ms, xclip_ms, process_ms = compare_clip(
                config, data_dir, image, display.env, args.rounds
            )
        print(f"clip, cached {IMAGE_BYTES // 1000} KB PNG under Xvfb, median of {args.rounds}:")
        print(f"  reading the clipboard      {read_ms:8.2f} ms")
        print(f"  the clip flow              {flow_ms:8.2f} ms")
        print(f"  added {flow_ms - read_ms:.2f} ms (target <= {CLIP_TARGET_MS:g} ms)")
        print(f"  xclip -o, a process        {xclip_ms:8.2f} ms")
        print(f"  imgsync clip, a process    {process_ms:8.2f} ms")
        print(f"  added {process_ms - xclip_ms:.2f} ms (start-up included)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
