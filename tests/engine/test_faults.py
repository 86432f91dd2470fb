"""Robustness: random faults, lost answers, and a batch killed midway and run again."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from imgsync.engine.uploader import Uploader

from ..support import EXT, KINDS, Control, md5, wait_for, write_config, write_image


def assert_each_once(control: Control, blobs: dict[str, bytes]) -> None:
    counts = collections.Counter(f["etag"] for f in control.images())
    assert counts == collections.Counter({md5(d): 1 for d in blobs.values()})


def test_hundred_uploads_under_twenty_percent_random_faults(
    control: Control, make_settings: Any, images: Path
) -> None:
    paths, blobs = [], {}
    for i in range(100):
        kind = KINDS[i % len(KINDS)]
        path = images / f"f{i:03d}{EXT[kind]}"
        blobs[str(path)] = write_image(path, kind, f"faulty-{i}", 1000 + 37 * i)
        paths.append(path)
    settings = make_settings(network={"max_attempts": 10})
    control.faults(
        random={
            "seed": 20240601,
            "rate": 0.2,
            "actions": ["http:500", "http:503", "code:429", "reset", "apply-then-reset"],
        }
    )
    with Uploader.from_settings(settings) as up:
        results = up.upload_many(paths)
    control.faults()  # verify with a healthy service
    assert [r.error for r in results if not r.ok] == []
    assert_each_once(control, blobs)
    for result in results:
        assert control.fetch(result.url) == blobs[result.input]
    faulted = [r for r in control.requests() if r["status"] != 200 or r["code"] not in (0, None)]
    assert len(faulted) > 50  # the faults really happened


def test_lost_mkdir_answer_finds_the_folder(control: Control, settings: Any, images: Path) -> None:
    control.faults([{"match": "mkdir", "nth": 1, "times": 1, "action": "apply-then-reset"}])
    path = images / "m.png"
    data = write_image(path, "png", "lost-mkdir")
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.ok, result.error
    assert control.fetch(result.url) == data
    folders = [f["filename"] for f in control.state() if f.get("type") == 1]
    assert len(folders) == len(set(folders)) == 3


def test_lost_create_answer_makes_no_duplicate(
    control: Control, settings: Any, images: Path
) -> None:
    control.faults([{"match": "/file/create", "nth": 1, "times": 1, "action": "apply-then-reset"}])
    path = images / "c.png"
    data = write_image(path, "png", "lost-create")
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.ok, result.error
    assert_each_once(control, {"c": data})


def test_deleted_cached_folder_is_created_again(
    control: Control, settings: Any, images: Path
) -> None:
    from imgsync.client.api import Api

    write_image(images / "1.png", "png", "folder-gone-1")
    data = write_image(images / "2.png", "png", "folder-gone-2")
    with Uploader.from_settings(settings) as up:
        assert up.upload_path(images / "1.png").ok
    top = next(f for f in control.state() if f.get("type") == 1 and f["filename"] == "imgsync")
    with Api.from_settings(settings) as api:
        api.delete([top["fileId"]])
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(images / "2.png")
    assert result.ok, result.error
    assert control.fetch(result.url) == data


@pytest.mark.slow(4)
def test_batch_killed_midway_completes_without_duplicates_when_run_again(
    control: Control, tmp_path: Path, data_dir: Path, images: Path
) -> None:
    config = write_config(tmp_path / "config.toml", control.base_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_")},
        "IMGSYNC_CONFIG": str(config),
        "IMGSYNC_DATA_DIR": str(data_dir),
    }
    paths, blobs = [], {}
    for i in range(40):
        path = images / f"k{i:02d}.png"
        blobs[str(path)] = write_image(path, "png", f"killed-{i}", 20_000 + i)
        paths.append(path)
    control.config(latency_ms=40, async_polls=1)
    cmd = [sys.executable, "-m", "imgsync", "upload", *map(str, paths)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(control.requests("upload_complete")) >= 8, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    done_before = len(control.images())
    assert 0 < done_before < 40  # really midway

    control.config(latency_ms=0, async_polls=0)
    proc2 = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc2.returncode == 0, proc2.stderr
    urls = proc2.stdout.splitlines()
    assert len(urls) == 40
    for path, url in zip(paths, urls, strict=True):
        assert control.fetch(url) == blobs[str(path)]
    assert_each_once(control, blobs)


def test_same_name_refusal_finds_the_earlier_upload(
    control: Control, settings: Any, images: Path
) -> None:
    """A service that answers "same name exists" instead of instant reuse: the file is found by
    listing the folder, and nothing is uploaded again."""
    path = images / "again.png"
    data = write_image(path, "png", "same-name")
    with Uploader.from_settings(settings) as up:
        first = up.upload_path(path)
    from dataclasses import replace

    fresh = replace(settings, data_dir=images.parent / "fresh-cache")
    control.faults([{"match": "/file/create", "nth": 1, "times": 1, "action": "code:1"}])
    puts = len(control.puts())
    with Uploader.from_settings(fresh) as up:
        second = up.upload_path(path)
    assert second.status == "reused", second.error
    assert second.file_id == first.file_id
    assert len(control.puts()) == puts
    assert_each_once(control, {"again": data})
