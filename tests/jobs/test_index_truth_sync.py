"""What sync does for an index that stays true: ``--no-cache`` reads every note and asks about
every image; a review that ended after the upload is checked before the notes are read, and a
link to a rejected image is a failed image of every note that links to it (a dry run too, without
a request)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgsync.cli.sync import sync_exit_status
from imgsync.config import Settings
from imgsync.errors import EXIT_OK, EXIT_PARTIAL
from imgsync.jobs.sync import Syncer

from ..support import Control, md5, wait_for, write_note, write_png

DETAIL = "/api/v1/oss/file/detail"


def run(settings: Settings, vault: Path, **options: Any) -> Any:
    return Syncer(settings, root=vault, **options).run([vault])


def test_no_cache_reads_every_note_and_asks_about_every_image(
    control: Control, settings: Settings, vault: Path
) -> None:
    write_png(vault / "a.png")
    write_note(vault / "a.md", "![a](a.png)\n")
    write_note(vault / "b.md", "![again](a.png)\n")
    first = run(settings, vault)
    assert sync_exit_status(first) == EXIT_OK and first.totals()["changed"] == 2
    assert all(n.unchanged_since_last_sync for n in run(settings, vault).notes)

    write_note(vault / "c.md", "![a third](a.png)\n")
    control.clear_requests()
    again = run(dataclasses.replace(settings, skip_index=True), vault)

    assert not any(n.unchanged_since_last_sync for n in again.notes)
    (image,) = [n for n in again.notes if n.key.endswith("c.md")][0].images
    assert image.status == "reused"  # found on the image bed: the index was not asked
    assert control.requests("/upload/v1/oss/file/create")


def test_a_rejection_found_before_the_notes_are_read_fails_every_note_linking_to_it(
    control: Control, make_settings: Callable[..., Settings], vault: Path
) -> None:
    settings = make_settings()
    control.config(review_delay_s=0.3)
    bad = write_png(vault / "bad.png")
    control.review(md5(bad), 150)
    write_note(vault / "one.md", "![bad](bad.png)\n")
    write_note(vault / "two.md", "text\n\n![bad](bad.png)\n")
    write_note(vault / "none.md", "no image\n")
    assert sync_exit_status(run(settings, vault)) == EXIT_OK
    assert all(n.unchanged_since_last_sync for n in run(settings, vault).notes)
    wait_for(lambda: all(f["status"] != 0 for f in control.images()), timeout=10)

    control.clear_requests()
    report = run(settings, vault)

    assert sync_exit_status(report) == EXIT_PARTIAL
    assert [r["path"] for r in control.requests()] == [DETAIL]  # one check, nothing uploaded
    failed = {
        (Path(n.key).name, i.line)
        for n in report.notes
        for i in n.images
        if i.status == "failed" and "rejected by content review" in (i.error or "")
    }
    assert failed == {("one.md", 1), ("two.md", 3)}
    (none,) = [n for n in report.notes if n.key.endswith("none.md")]
    assert none.error is None and not none.images

    control.clear_requests()
    dry = run(settings, vault, dry_run=True)
    assert sync_exit_status(dry) == EXIT_PARTIAL  # a dry run shows it too
    assert control.requests() == []
