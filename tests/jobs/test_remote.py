"""Remote images are migrated onto the image bed; links already on it are left alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.cli.sync import sync_exit_status, sync_report_json
from imgsync.errors import EXIT_OK
from imgsync.jobs.sync import Syncer

from ..support import CREATE_PATH, Control, write_note, write_png

OFFLINE_POST = "/api/v1/oss/offline/download"


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> Any:
    """The web server is on loopback: opt in to imgsync's own download of what it serves."""
    return make_settings(upload={"allow_private_urls": True})


def test_a_remote_image_is_migrated_and_a_hosted_one_left_alone(
    sync: Callable[..., Any], control: Control, vault: Path, web: tuple[str, Path]
) -> None:
    base, folder = web
    remote = write_png(folder / "cat.png", "remote cat")
    note = vault / "a.md"
    write_note(note, f"![cat]({base}/cat.png)\n")

    report = sync()

    assert sync_exit_status(report) == EXIT_OK, sync_report_json(report)
    (image,) = report.notes[0].images
    assert (image.kind, image.status) == ("remote", "migrated")
    assert image.url.startswith(control.base_url)
    assert control.fetch(image.url) == remote
    assert note.read_bytes() == f"![cat]({image.url})\n".encode()
    assert report.totals()["uploaded"] == 1  # migrated counts as uploaded in the totals

    # A new note that uses the link just made: it is already on the image bed.
    other = vault / "b.md"
    original = write_note(other, f"Copied: ![cat]({image.url})\n")
    log = control.requests()
    report = sync()
    outcome = next(n for n in report.notes if n.path == other)
    (hosted,) = outcome.images
    assert (hosted.kind, hosted.status, hosted.url) == ("hosted", "skipped", image.url)
    assert hosted.error is None
    assert not outcome.changed and other.read_bytes() == original
    assert control.requests() == log
    assert sync_exit_status(report) == EXIT_OK


def test_a_remote_image_that_cannot_be_fetched_fails_and_the_link_stays(
    sync: Callable[..., Any], control: Control, vault: Path, web: tuple[str, Path]
) -> None:
    base, _folder = web
    note = vault / "a.md"
    original = write_note(note, f"![gone]({base}/gone.png)\n")

    report = sync()

    (image,) = report.notes[0].images
    assert (image.kind, image.status) == ("remote", "failed")
    assert image.error
    assert note.read_bytes() == original
    assert control.requests(CREATE_PATH) == []


def test_a_migrated_link_keeps_its_fragment_and_the_service_never_gets_it(
    make_settings: Callable[..., Any], control: Control, vault: Path, web: tuple[str, Path]
) -> None:
    base, folder = web
    write_png(folder / "icon.png", "remote icon")
    note = vault / "a.md"
    write_note(note, f"![icon]({base}/icon.png#icon) and ![bare]({base}/icon.png#)\n")

    # Default settings: the service migrates the URL itself (offline download), so the request
    # log shows exactly the URL it was handed.
    report = Syncer(make_settings(), root=vault).run([vault])

    assert sync_exit_status(report) == EXIT_OK, sync_report_json(report)
    first, second = report.notes[0].images
    assert (first.status, second.status) == ("migrated", "migrated")
    assert first.url == second.url and "#" not in (first.url or "")
    assert note.read_text() == f"![icon]({first.url}#icon) and ![bare]({first.url})\n"
    sent = [r["json"]["url"] for r in control.requests(OFFLINE_POST, method="POST")]
    assert sent == [f"{base}/icon.png"]  # one task for both links, and no fragment in it
