"""Remote images are migrated onto the image bed; links already on it are left alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.cli.sync import sync_exit_status, sync_report_json
from imgsync.errors import EXIT_OK

from ..support import CREATE_PATH, Control, write_note, write_png


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
