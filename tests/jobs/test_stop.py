"""A sync of 200 notes stopped midway (SIGKILL, SIGTERM, Ctrl-C) in a real subprocess, at the
service's default rate limits: every note whose images were all on the image bed is rewritten and
stays so, every other note is byte-identical, and a rerun finishes the rest without a second copy
of any image on the image bed.

The stop comes at a moment the test waits for, not after a guessed sleep: from the (K+1)-th image
on, the service holds every ``get_upload_url`` for a long time, so K images reach the image bed
and the run can go no further; the test waits until the notes those K images complete are
rewritten, then stops the run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgsync.config import DEFAULT_QPS

from ..support import Control, md5, png_bytes, wait_for, write_config, write_note
from .helpers import NETWORK, UPLOAD, subprocess_env

NOTES = 200
IMAGES = 24
COMPLETED = 6  # images let through before the service holds the rest
HELD_S = 60  # how long the held requests wait: far longer than the test
DEADLINE_S = 60.0
GET_UPLOAD_URL = "/upload/v1/oss/file/get_upload_url"
# The service's binding rate limit (imgsync's default, config.DEFAULT_QPS), enforced by the service.
SERVICE_QPS = {"/upload/v1/oss/file/create": DEFAULT_QPS["create"]}


def images_of(n: int) -> tuple[int, int]:
    """The two images note ``n`` shows: every image is shared by several notes."""
    return n % IMAGES, (n * 5 + 7) % IMAGES


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return subprocess_env(tmp_path, data_dir)


@pytest.mark.slow(5)
@pytest.mark.parametrize(
    ("sig", "status", "cache_lost"),
    [
        (signal.SIGKILL, -signal.SIGKILL, False),
        # Killed as if between the service's answer and the local index's write: the rerun
        # knows nothing of what went up, and must find it on the image bed.
        (signal.SIGKILL, -signal.SIGKILL, True),
        (signal.SIGTERM, 143, False),
        (signal.SIGINT, 130, False),
    ],
    ids=["SIGKILL", "SIGKILL-index-lost", "SIGTERM", "SIGINT"],
)
def test_a_sync_stopped_midway_keeps_what_it_finished_and_a_rerun_finishes_the_rest(
    control: Control,
    vault: Path,
    tmp_path: Path,
    env: dict[str, str],
    data_dir: Path,
    sig: int,
    status: int,
    cache_lost: bool,
) -> None:
    pictures = {i: png_bytes(f"stop {i}") for i in range(IMAGES)}
    for i, data in pictures.items():
        write_note(vault / "img" / f"{i:02}.png", data)
    originals = {}
    for n in range(NOTES):
        a, b = images_of(n)
        text = f"# Note {n}\r\n\r\n![a](img/{a:02}.png)\r\nText.\r\n![b](img/{b:02}.png)\r\n"
        originals[n] = write_note(vault / f"n{n:03}.md", text)
    config = write_config(
        tmp_path / "config.toml",
        control.base_url,
        upload=UPLOAD,
        network=NETWORK,
        qps=dict(DEFAULT_QPS),
    )
    control.config(qps=SERVICE_QPS)
    held = [
        {"match": GET_UPLOAD_URL, "nth": COMPLETED + 1, "times": -1, "action": f"delay:{HELD_S}"}
    ]
    control.faults(held)
    command = [sys.executable, "-m", "imgsync", "--config", str(config), "sync", str(vault)]

    def rewritten() -> set[int]:
        return {n for n in range(NOTES) if (vault / f"n{n:03}.md").read_bytes() != originals[n]}

    def complete() -> set[int]:
        """The notes whose two images are both on the image bed."""
        on_bed = {f["etag"] for f in control.images()}
        done = {i for i, data in pictures.items() if md5(data) in on_bed}
        return {n for n in range(NOTES) if set(images_of(n)) <= done}

    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: len(control.images()) == COMPLETED, timeout=DEADLINE_S)
        wait_for(lambda: rewritten() == complete(), timeout=DEADLINE_S)
        finished = rewritten()
        process.send_signal(sig)
        if sig != signal.SIGKILL:
            # The first signal waits for the uploads in flight (held by the service): another
            # one stops at once, as a user pressing Ctrl-C again does.
            assert process.stderr is not None
            assert b"stopping" in process.stderr.readline()
            deadline = time.monotonic() + DEADLINE_S
            while process.poll() is None and time.monotonic() < deadline:
                process.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.2)
        out, err = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == status, err.decode()
    assert b"Traceback" not in err
    # Written before the stop: still rewritten; every other note byte-identical.
    assert finished and len(finished) < NOTES
    assert rewritten() == finished
    for n in set(range(NOTES)) - finished:
        assert (vault / f"n{n:03}.md").read_bytes() == originals[n]
    assert not [p for p in vault.rglob("*") if p.name.endswith(".imgsync-tmp")]
    if sig != signal.SIGKILL:  # the lines of the notes written made it to stdout
        assert out.decode().count("links rewritten") == len(finished)

    # The rerun finishes the rest; each picture is on the image bed exactly once. Only the
    # stopped run needs the service's limits: the rerun goes unthrottled (a few seconds less).
    control.faults([])
    control.config(qps={})
    upload = dict(UPLOAD)
    if cache_lost:
        shutil.rmtree(data_dir)
        # The links written before are the user's image bed's: said so, as a user would.
        upload["hosted_prefixes"] = [control.base_url + "/"]
    write_config(
        config,
        control.base_url,
        upload=upload,
        network=NETWORK,
        qps=dict.fromkeys(DEFAULT_QPS, 0),
    )
    again = subprocess.run(
        [*command[:-1], "--json", str(vault)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=DEADLINE_S * 2,
    )
    assert again.returncode == 0, again.stderr.decode()
    assert json.loads(again.stdout)["totals"]["changed"] == NOTES - len(finished)
    etags = sorted(f["etag"] for f in control.images())
    assert etags == sorted(md5(data) for data in pictures.values())
    for n in range(NOTES):
        text = (vault / f"n{n:03}.md").read_bytes().decode()
        a, b = images_of(n)
        url_a = text.split("![a](")[1].split(")")[0]
        url_b = text.split("![b](")[1].split(")")[0]
        assert text == originals[n].decode().replace(f"img/{a:02}.png", url_a).replace(
            f"img/{b:02}.png", url_b
        )
        if n < IMAGES:  # every picture, fetched once: the links serve the right bytes
            assert control.fetch(url_a) == pictures[a]
