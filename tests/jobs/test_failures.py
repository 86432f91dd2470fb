"""Failed images leave their notes byte-identical; bad notes are reported and the rest goes on."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgsync.cli.sync import sync_exit_status
from imgsync.errors import EXIT_PARTIAL

from ..support import Control, md5, write_note, write_png
from .helpers import snapshot

REVIEW_REJECTED = 150


def test_a_note_whose_images_all_failed_is_left_as_it_was(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    rejected = write_png(vault / "rejected.png")
    control.review(md5(rejected), REVIEW_REJECTED)
    note = vault / "n.md"
    original = write_note(note, "![r](rejected.png)\r\n![m](missing.png)\r\n")
    before = note.stat()

    report = sync()

    assert sync_exit_status(report) == EXIT_PARTIAL
    (outcome,) = report.notes
    assert not outcome.changed
    assert [i.status for i in outcome.images] == ["failed", "failed"]
    assert "review" in (outcome.images[0].error or "")
    assert "not found" in (outcome.images[1].error or "")
    assert note.read_bytes() == original
    after = note.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    # Not cached as good, so the next run tries again (and fails again) rather than skip the note.
    again = sync()
    assert [i.status for i in again.notes[0].images] == ["failed", "failed"]


def test_one_failed_image_does_not_stop_the_others_in_the_same_note(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    write_png(vault / "good.png")
    note = vault / "n.md"
    write_note(note, "![g](good.png)\n![m](missing.png)\n")

    report = sync()

    assert sync_exit_status(report) == EXIT_PARTIAL
    good, missing = report.notes[0].images
    assert (good.status, missing.status) == ("uploaded", "failed")
    assert note.read_bytes() == f"![g]({good.url})\n![m](missing.png)\n".encode()


def test_bad_notes_are_reported_one_by_one_and_the_rest_is_synced(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    write_png(vault / "x.png")
    good = vault / "good.md"
    write_note(good, "![x](x.png)\n")
    write_note(vault / "binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR ![x](x.png)")
    write_note(vault / "utf16.md", "![x](x.png)\n".encode("utf-16"))
    big = vault / "big.md"
    with open(big, "wb") as handle:  # 50 MB, sparse: cheap to make
        handle.write(b"![x](x.png)\n")
        handle.truncate(50 * 1024 * 1024)
    os.mkfifo(vault / "fifo.md")  # cannot be read as a note (stands in for an unreadable file)
    (vault / "broken.md").symlink_to(vault / "gone.md")
    missing_image = vault / "missing-image.md"
    write_note(missing_image, "text\n\n![m](nowhere.png)\n")
    (vault / "folder.md").mkdir()  # a folder named like a note is a folder: walked, not read
    inner = vault / "folder.md" / "inner.md"
    write_note(inner, "![x](../x.png)\n")
    before = snapshot(vault)

    report = sync()

    assert sync_exit_status(report) == EXIT_PARTIAL
    errors = {n.path.name: n.error for n in report.notes}
    assert set(errors) == {
        "big.md",
        "binary.md",
        "broken.md",
        "fifo.md",
        "good.md",
        "inner.md",
        "missing-image.md",
        "utf16.md",
    }
    assert "NUL" in errors["binary.md"]
    assert "UTF-16" in errors["utf16.md"]
    assert "too big" in errors["big.md"]
    assert "not a regular file" in errors["fifo.md"]
    assert "broken symlink" in errors["broken.md"]
    assert errors["good.md"] is None and errors["inner.md"] is None
    assert errors["missing-image.md"] is None
    (missing,) = next(n for n in report.notes if n.path == missing_image).images
    assert (missing.status, missing.line) == ("failed", 3)
    assert report.totals()["failed"] == 5 + 1  # five bad notes, one missing image

    after = snapshot(vault)
    changed = {name for name in before if before[name] != after.get(name)}
    assert changed == {"good.md", "folder.md/inner.md"}
    assert set(after) == set(before)  # no temporary file left behind
