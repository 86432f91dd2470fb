"""``--dry-run`` makes no request and writes nothing; a note clean since its last sync is skipped
without being parsed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.cli.sync import sync_exit_status, sync_report_json
from imgsync.errors import EXIT_OK
from imgsync.store.cache import Cache

from ..support import Control, backdate, write_note, write_png
from .helpers import snapshot


def make_notes(vault: Path) -> list[Path]:
    write_png(vault / "img" / "a.png")
    write_png(vault / "img" / "b.png")
    notes = [vault / "one.md", vault / "sub" / "two.md", vault / "plain.md"]
    write_note(notes[0], "# One\n\n![a](img/a.png)\n")
    write_note(notes[1], "![b](../img/b.png) and ![a](../img/a.png)\n")
    write_note(notes[2], "No images here.\n")
    return notes


def test_dry_run_makes_no_request_and_writes_nothing(
    sync: Callable[..., Any], control: Control, vault: Path, data_dir: Path
) -> None:
    make_notes(vault)
    write_note(vault / "first.md", "![a](img/a.png)\n")
    first = sync(vault / "first.md")  # a real run first: a.png is in the index, b.png is not
    (a_url,) = [i.url for i in first.notes[0].images]
    log = control.requests()
    before = snapshot(vault)
    cache_files = snapshot(data_dir)

    report = sync(dry_run=True)

    assert control.requests() == log
    assert snapshot(vault) == before
    assert {k: v[0] for k, v in snapshot(data_dir).items()} == {
        k: v[0] for k, v in cache_files.items()
    }
    assert report.dry_run and sync_exit_status(report) == EXIT_OK
    by_name = {n.path.name: n for n in report.notes}
    # The truth: one.md and two.md would change; first.md (rewritten) and plain.md would not.
    assert {name for name, n in by_name.items() if n.changed} == {"one.md", "two.md"}
    assert report.totals()["changed"] == 2
    # The image in the index is shown with its real link, and the rewrite it would get...
    assert [(i.target, i.status, i.url) for i in by_name["one.md"].images] == [
        ("img/a.png", "cached", a_url)
    ]
    assert by_name["one.md"].edits == [("img/a.png", a_url)]
    # ...the one not in the index as one a real run would upload (no made-up link).
    b, a = by_name["two.md"].images
    assert (b.status, b.would_upload, b.url) == ("skipped", True, None)
    assert (a.status, a.url) == ("cached", a_url)
    assert by_name["two.md"].edits == [("../img/a.png", a_url)]
    assert by_name["plain.md"].edits == []
    assert report.images_to_upload == 1
    assert sync_report_json(report)["dry_run"] is True

    # A real run then does exactly that.
    real = sync()
    assert {n.path.name for n in real.notes if n.changed} == {"one.md", "two.md"}


def test_dry_run_creates_no_cache(sync: Callable[..., Any], vault: Path, data_dir: Path) -> None:
    make_notes(vault)
    sync(dry_run=True)
    assert not data_dir.exists()


def test_a_clean_note_is_skipped_without_being_parsed(
    sync: Callable[..., Any], control: Control, vault: Path, parses: list[str]
) -> None:
    notes = make_notes(vault)
    first = sync()
    assert sync_exit_status(first) == EXIT_OK
    assert len(parses) >= 3  # each note scanned (and rewritten notes checked again)
    log = control.requests()
    after_first = snapshot(vault)

    parses.clear()
    second = sync()
    assert parses == []
    assert all(n.unchanged_since_last_sync for n in second.notes)
    assert control.requests() == log
    assert snapshot(vault) == after_first

    # An edit makes that note (only) be looked at again.
    notes[2].write_bytes(b"No images here.\n\n![b](img/b.png)\n")
    backdate(notes[2], 30)
    third = sync()
    assert len(parses) >= 1 and all("![b](img/b.png)" in text for text in parses[:1])
    assert {n.path for n in third.notes if not n.unchanged_since_last_sync} == {notes[2]}
    assert [n.path for n in third.notes] == [n.path for n in second.notes]  # the walk's order
    (edited,) = [n for n in third.notes if n.path == notes[2]]
    assert edited.images[0].status == "cached"
    assert edited.changed


def test_a_stamp_proved_by_content_is_trusted_by_stat_once_the_note_is_old(
    sync: Callable[..., Any],
    vault: Path,
    settings: Any,
    parses: list[str],
) -> None:
    import time

    notes = make_notes(vault)
    sync()  # rewrites one.md and two.md just now: their stamps are "racy"
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        assert not cache.notes.get(notes[0]).stat_trusted

    parses.clear()
    later = time.time_ns() + 5_000_000_000  # as if the second run came 5 s later
    assert all(n.unchanged_since_last_sync for n in sync(clock_ns=lambda: later).notes)
    assert parses == []
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        assert all(cache.notes.get(note).stat_trusted for note in notes)


@pytest.mark.parametrize(
    ("content", "option"),
    [
        ("![d](data:image/png;base64,{b64})\n", {"allow_data": True}),
        ("![o]({outside})\n", {"allow_outside_root": True}),
        ("![m](later.png)\n", {}),
    ],
    ids=["data-uri", "outside-root", "missing-file"],
)
def test_a_note_left_with_a_local_link_is_looked_at_again(
    sync: Callable[..., Any],
    control: Control,
    vault: Path,
    tmp_path: Path,
    parses: list[str],
    content: str,
    option: dict[str, bool],
) -> None:
    import base64

    outside = tmp_path / "elsewhere" / "o.png"
    png = write_png(outside)
    note = vault / "n.md"
    write_note(note, content.format(b64=base64.b64encode(png).decode(), outside=outside))
    first = sync()
    assert first.notes[0].images[0].status in ("skipped", "failed")
    assert not first.notes[0].changed

    write_png(vault / "later.png")  # the missing file appears; or the user passes a flag
    parses.clear()
    second = sync(**option)
    assert parses, "the note must be scanned again"
    image = second.notes[0].images[0]
    assert image.status in ("uploaded", "reused"), image
    assert second.notes[0].changed
    assert image.url is not None and image.url.encode() in note.read_bytes()
