"""``copy`` and ``migrate`` against the emulator: tasks of 100, never more than 3 queued, failures
listed; migrations found by name, remembered, and refused clearly."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from imgsync.cli.manage_output import copy_exit_status, copy_report_json, outcomes_exit_status
from imgsync.config import Settings
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, UsageError
from imgsync.jobs.browse import make_folders
from imgsync.jobs.drivecopy import CopyTaskReport, copy_from_drive
from imgsync.jobs.imagebed import FolderNotFound, ImageBed
from imgsync.jobs.migrate import migrate
from imgsync.jobs.upload import upload_items

from ..support import Control, png_bytes, wait_for, write_png
from .manage_helpers import (
    COPY_FAIL_PATH,
    COPY_PATH,
    COPY_PROCESS_PATH,
    OFFLINE_PATH,
    folder_id,
    requests_to,
)


def drive_file(file_id: str, filename: str, data: bytes) -> dict[str, Any]:
    return {"fileID": file_id, "filename": filename, "content_b64": base64.b64encode(data).decode()}


# A drive file too large to copy: the reference's limit is 100M ("图片大小限制:100M").
TOO_LARGE = 100 * 1024 * 1024 + 1


def seed_drive(
    control: Control, good: int, bad_content: int = 0, not_images: int = 0, too_large: int = 0
) -> dict:
    """Good PNGs (IDs from 10000), files named .png that are not images (from 20000), files of
    another format (from 30000), and PNGs over 100 MiB (from 40000, seeded by their size)."""
    ids: dict[str, list[str]] = {"good": [], "bad_content": [], "not_images": [], "too_large": []}
    files = []
    for n in range(good):
        ids["good"].append(str(10000 + n))
        files.append(drive_file(ids["good"][-1], f"g{n}.png", png_bytes(f"drive-{n}")))
    for n in range(bad_content):
        ids["bad_content"].append(str(20000 + n))
        files.append(drive_file(ids["bad_content"][-1], f"b{n}.png", b"plain text, not a png"))
    for n in range(not_images):
        ids["not_images"].append(str(30000 + n))
        files.append(drive_file(ids["not_images"][-1], f"t{n}.txt", b"some notes"))
    for n in range(too_large):
        ids["too_large"].append(str(40000 + n))
        files.append(
            {"fileID": ids["too_large"][-1], "filename": f"huge{n}.png", "size": TOO_LARGE}
        )
    control.drive(files)
    return ids


@pytest.fixture
def target(settings: Settings) -> str:
    with ImageBed(settings) as bed:
        (made,) = make_folders(bed, ["from-drive"])
    return made.file_id


def test_copy_of_250_files_makes_three_tasks_and_lists_the_failures(
    settings: Settings, control: Control, target: str
) -> None:
    ids = seed_drive(control, good=238, bad_content=5, not_images=3, too_large=2)
    asked = ids["good"][:120] + ids["bad_content"] + ["99999", "99998"] + ids["good"][120:]
    asked += ids["not_images"] + ids["too_large"]
    assert len(asked) == 250
    seen: list[tuple[str, str]] = []

    def progress(task: CopyTaskReport) -> None:
        seen.append((task.task_id, task.state))

    with ImageBed(settings) as bed:
        report = copy_from_drive(bed, asked, "from-drive", wait=True, on_progress=progress)

    copies = requests_to(control, COPY_PATH)
    assert [len(r["json"]["fileIDs"]) for r in copies] == [100, 100, 50]
    assert [i for r in copies for i in r["json"]["fileIDs"]] == asked
    assert all(r["code"] == 0 for r in copies)  # never refused: never more than 3 queued
    assert {r["json"]["toParentFileID"] for r in copies} == {target}
    assert [t.state for t in report.tasks] == ["done", "done", "done"]
    failed = {f.file_id: f.filename for t in report.tasks for f in t.failures}
    # Listed: the files named as images that are not, and unknown IDs. Files of another format
    # and files over 100 MiB are passed over without an entry, as the reference says.
    assert failed == {
        **{i: f"b{int(i) - 20000}.png" for i in ids["bad_content"]},
        "99999": "",
        "99998": "",
    }
    assert copy_exit_status(report) == EXIT_PARTIAL
    copied = [f for f in control.images() if f["parentFileId"] == target]
    assert len(copied) == 238
    assert not {f["filename"] for f in copied} & {"t0.txt", "huge0.png", "huge1.png"}
    assert {state for _, state in seen} >= {"queued", "done"}
    assert copy_report_json(report)["tasks"][1]["failedTotal"] == 7


@pytest.mark.slow(4)
def test_copy_never_has_more_than_three_tasks_queued(
    settings: Settings, control: Control, target: str
) -> None:
    ids = seed_drive(control, good=310)["good"]
    control.config(hold_tasks=True)  # the service's worker waits: every task stays queued
    result: dict[str, Any] = {}

    def run() -> None:
        with ImageBed(settings) as bed:
            result["report"] = copy_from_drive(bed, ids, target, wait=True)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_for(lambda: len(requests_to(control, COPY_PROCESS_PATH)) >= 6)
        assert len(requests_to(control, COPY_PATH)) == 3  # the 4th waits for room
        released = time.time()
    finally:
        control.config(hold_tasks=False)
        worker.join(60)
    report = result["report"]
    copies = requests_to(control, COPY_PATH)
    assert [len(r["json"]["fileIDs"]) for r in copies] == [100, 100, 100, 10]
    assert all(r["code"] == 0 for r in copies)
    assert copies[3]["time"] >= released
    # The 4th was started after a poll of the first three, not blindly.
    log = control.requests()
    fourth = log.index(copies[3])
    assert any(r["path"] == COPY_PROCESS_PATH for r in log[log.index(copies[2]) : fourth])
    assert copy_exit_status(report) == EXIT_OK
    assert len([f for f in control.images() if f["parentFileId"] == target]) == 310


def test_copy_reads_every_page_of_failures(
    settings: Settings, control: Control, target: str
) -> None:
    ids = seed_drive(control, good=1, bad_content=5)
    with ImageBed(settings) as bed:
        report = copy_from_drive(
            bed, ids["good"] + ids["bad_content"], target, wait=True, fail_page_size=2
        )
    (task,) = report.tasks
    assert sorted(f.file_id for f in task.failures) == ids["bad_content"]
    pages = requests_to(control, COPY_FAIL_PATH)
    assert [r["query"]["page"] for r in pages] == ["1", "2", "3"]


def test_copy_without_wait_returns_once_started(
    settings: Settings, control: Control, target: str
) -> None:
    ids = seed_drive(control, good=3)["good"]
    with ImageBed(settings) as bed:
        report = copy_from_drive(bed, ids, "from-drive")
    (task,) = report.tasks
    assert task.state == "queued" and task.task_id and copy_exit_status(report) == EXIT_OK
    assert requests_to(control, COPY_FAIL_PATH) == []
    wait_for(lambda: len([f for f in control.images() if f["parentFileId"] == target]) == 3)


def test_copy_to_a_missing_folder_starts_nothing(settings: Settings, control: Control) -> None:
    with ImageBed(settings) as bed, pytest.raises(FolderNotFound):
        copy_from_drive(bed, ["1"], "not/there")
    assert requests_to(control, COPY_PATH) == []


# -- migrate (the loopback web server `web` is the remote-image tests')


def test_migrate_wait_gives_each_link_or_a_clear_failure(
    settings: Settings,
    control: Control,
    web: tuple[str, Path],
) -> None:
    base, folder = web
    cat = write_png(folder / "cat.png")
    dog = write_png(folder / "dog.jpg")
    urls = [
        f"{base}/cat.png",
        "http://127.0.0.1:1/unreachable.png",
        f"{base}/dog.jpg",
        f"{base}/missing.png",
        f"{base}/no-extension",
        "ftp://example.com/x.png",
    ]
    states: list[tuple[str, str]] = []

    with ImageBed(settings) as bed:
        report = migrate(bed, urls, wait=True, on_progress=lambda u, s, p: states.append((u, s)))

    by_url = {o.input: o for o in report.outcomes}
    assert [o.input for o in report.outcomes] == urls
    assert by_url[urls[0]].status == "migrated" and by_url[urls[2]].status == "migrated"
    assert control.fetch(by_url[urls[0]].url) == cat
    assert control.fetch(by_url[urls[2]].url) == dog
    for failed in (urls[1], urls[3]):
        assert by_url[failed].status == "failed"
        assert "the service could not fetch it" in (by_url[failed].error or "")
        assert by_url[failed].task_id
    assert "image extension" in (by_url[urls[4]].error or "")
    assert "http" in (by_url[urls[5]].error or "")
    assert outcomes_exit_status(report.outcomes) == EXIT_PARTIAL
    assert report.folder.shown == "imgsync/remote"
    assert (urls[0], "done") in states and (urls[1], "failed") in states
    offline = requests_to(control, OFFLINE_PATH)
    assert len(offline) == 4  # the URLs it could not take started no task
    assert {r["json"]["businessDirID"] for r in offline} == {folder_id(control, "imgsync/remote")}

    # Remembered: imgsync upload of the same URL answers from the index, with no request.
    log = len(control.requests())
    (again,) = upload_items(settings, [urls[0]])
    assert (again.status, again.url) == ("cached", by_url[urls[0]].url)
    assert len(control.requests()) == log


def test_migrate_without_wait_then_again_finds_the_result(
    settings: Settings,
    control: Control,
    web: tuple[str, Path],
) -> None:
    base, folder = web
    write_png(folder / "a.png")
    url = f"{base}/a.png"
    with ImageBed(settings) as bed:
        (started,) = migrate(bed, [url]).outcomes
    assert started.status == "started" and started.task_id
    wait_for(lambda: any(f["filename"] == started.name for f in control.images()))

    with ImageBed(settings) as bed:
        (found,) = migrate(bed, [url], wait=True).outcomes
    assert found.status == "exists" and found.url
    assert len(requests_to(control, OFFLINE_PATH)) == 1  # no second task


def test_migrate_into_a_given_folder_and_never_the_root(
    settings: Settings,
    control: Control,
    web: tuple[str, Path],
) -> None:
    base, folder = web
    write_png(folder / "b.png")
    with ImageBed(settings) as bed:
        make_folders(bed, ["landing"])
        report = migrate(bed, [f"{base}/b.png"], to="landing", wait=True)
        assert outcomes_exit_status(report.outcomes) == EXIT_OK
        (outcome,) = report.outcomes
        (image,) = [f for f in control.images() if f["fileId"] == outcome.file_id]
        assert image["parentFileId"] == folder_id(control, "landing")
        with pytest.raises(UsageError, match="root"):
            migrate(bed, [f"{base}/b.png"], to="/")
