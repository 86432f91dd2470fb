"""The sync pipeline: each note is written as soon as its own images are on the image bed, while
the other uploads go on; an image many notes use goes up once; memory does not grow with the
number of notes waiting; fragments and sizes survive the rewrite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import imgsync.jobs.sync as sync_module
from imgsync.cli.sync import sync_exit_status
from imgsync.errors import EXIT_OK
from imgsync.jobs.sync import SyncCounts, Syncer
from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome, SyncReport

from ..support import CREATE_PATH, Control, md5, write_image, write_note, write_png


@pytest.mark.slow(3)
def test_the_first_note_is_written_well_before_the_last_upload_starts(
    make_settings: Callable[..., Any], control: Control, vault: Path
) -> None:
    images = 12
    for n in range(images):
        write_png(vault / "img" / f"{n:02}.png")
        write_note(vault / f"n{n:02}.md", f"# {n}\n\n![i](img/{n:02}.png)\n")
    # The client spaces its creates (4 a second), as it does under the service's limits.
    settings = make_settings(qps={"create": 4})

    report = Syncer(settings, root=vault).run([vault])

    assert sync_exit_status(report) == EXIT_OK and all(n.changed for n in report.notes)
    first_written = (vault / "n00.md").stat().st_mtime_ns / 1e9
    creates = sorted(r["time"] for r in control.requests(CREATE_PATH))
    assert len(creates) == images
    # The order of events: most uploads had not even started when the first note was written.
    started_after = [t for t in creates if t > first_written]
    assert len(started_after) >= images // 2, (first_written, creates)


def test_a_shared_image_goes_up_once_and_each_note_is_written_when_its_own_images_are(
    make_settings: Callable[..., Any], control: Control, vault: Path
) -> None:
    one = write_png(vault / "one.png")
    two = write_png(vault / "two.png")
    write_note(vault / "a.md", "![1](one.png)\n")
    write_note(vault / "b.md", "![1](one.png) ![2](two.png)\n")
    write_note(vault / "c.md", "![2](two.png) ![1](one.png)\n")
    events: list[str] = []

    def on_image(result: Any) -> None:
        events.append(f"image {Path(result.input).name}")

    def on_note(note: NoteOutcome) -> None:
        events.append(f"note {note.path.name}")
        if note.changed:  # written already when it is handed on
            assert "http" in note.path.read_text()

    # One upload at a time, in the order asked: one.png, then two.png.
    settings = make_settings(upload={"concurrency": 1})
    report = Syncer(settings, root=vault).run([vault], on_note=on_note, on_image=on_image)

    assert sync_exit_status(report) == EXIT_OK
    assert sorted(control.created_md5s()) == sorted([md5(one), md5(two)])  # once each
    # a.md needs only one.png: written while two.png was still on its way.
    assert events == ["image one.png", "note a.md", "image two.png", "note b.md", "note c.md"]
    urls = {i.target: i.url for n in report.notes for i in n.images}
    assert (vault / "c.md").read_text() == f"![2]({urls['two.png']}) ![1]({urls['one.png']})\n"


@pytest.mark.slow(3)
def test_notes_waiting_for_images_are_bounded(
    make_settings: Callable[..., Any],
    control: Control,
    vault: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes = 8
    control.faults([{"match": CREATE_PATH, "times": -1, "action": "delay:0.2"}])
    settings = make_settings(upload={"concurrency": 1})

    def most_waiting(folder: str) -> int:
        """Sync a folder of new notes, each with a new image; the most notes found but not
        done at any time."""
        for n in range(notes):
            write_png(vault / folder / f"{n}.png", f"{folder} {n}")
            write_note(vault / folder / f"n{n}.md", f"![i]({n}.png)\n")
        most = [0]

        def on_progress(counts: SyncCounts) -> None:
            most[0] = max(most[0], counts.notes_found - counts.notes_done)

        report = Syncer(settings, root=vault).run([vault / folder], on_progress=on_progress)
        assert report.totals()["changed"] == notes
        return most[0]

    # The walk runs ahead of the uploads, as far as it is let.
    assert most_waiting("free") == notes
    monkeypatch.setattr(sync_module, "MAX_WAITING_NOTES", 2)
    assert most_waiting("bounded") == 2


def test_fragments_and_sizes_are_kept(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    icon = write_image(vault / "Attachments" / "x.svg", "svg", "icon")
    shot = write_png(vault / "Attachments" / "x.png")
    note = vault / "n.md"
    write_note(
        note,
        "Icon ![[x.svg#icon]] here.\n\n"
        "![[x.png#interface|300]]\n\n"
        "![a](Attachments/x.png#outline)\n\n"
        '<img src="Attachments/x.png#outline" width="80">\n',
    )

    report = sync()

    assert sync_exit_status(report) == EXIT_OK
    svg_url, png_url, *_ = [i.url for i in report.notes[0].images]
    assert svg_url.endswith(".svg") and "#" not in svg_url  # the image bed's own URL
    assert control.fetch(svg_url) == icon and control.fetch(png_url) == shot
    assert note.read_text() == (
        f"Icon ![]({svg_url}#icon) here.\n\n"
        f"![300]({png_url}#interface)\n\n"
        f"![a]({png_url}#outline)\n\n"
        f'<img src="{png_url}#outline" width="80">\n'
    )
    # The rewritten links are on the image bed: the next run has nothing to do.
    again = sync()
    assert again.notes[0].unchanged_since_last_sync or not again.notes[0].changed
    assert again.totals()["uploaded"] == 0


def test_a_report_keeps_notes_with_nothing_to_say_as_their_path() -> None:
    report = SyncReport()
    report.add_unchanged("/v/old.md")
    quiet = NoteOutcome("/v/plain.md")
    report.settle(report.add(quiet))
    busy = NoteOutcome("/v/a.md", changed=True)
    busy.images.append(ImageOutcome("x.png", "local", "uploaded", url="u", line=1))
    report.settle(report.add(busy))

    assert [n.key for n in report.outcomes()] == ["/v/a.md"]  # only it is kept whole
    # Every note is still listed, in the order found, as it was.
    assert [(n.key, n.unchanged_since_last_sync, n.changed) for n in report.notes] == [
        ("/v/old.md", True, False),
        ("/v/plain.md", False, False),
        ("/v/a.md", False, True),
    ]
    assert report.notes[-1] is busy and len(report.notes) == 3
    assert report.totals()["notes"] == 3 and report.totals()["uploaded"] == 1
