"""``sync`` end to end against the emulator: what is uploaded, what is reported, what is written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgsync.cli.sync import sync_exit_status
from imgsync.config import load_settings
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE

from ..support import CREATE_PATH, Control, md5, write_note, write_png
from .helpers import snapshot, write_config

STATUSES = {"uploaded", "reused", "cached", "migrated", "skipped", "failed"}


def images_of(report: Any, note: Path) -> list[Any]:
    (outcome,) = [n for n in report.notes if n.path == note]
    return outcome.images


def test_a_folder_uploads_each_image_once_and_rewrites_only_the_links(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    shared = write_png(vault / "img" / "shared.png")
    own = write_png(vault / "img" / "own.png")
    chart = write_png(vault / "attachments" / "chart.png")
    a = vault / "a.md"
    write_note(
        a,
        "# A\n\n"
        '![s](img/shared.png "title")\n\n'
        "![r][ref]\n\n"
        '<img src="img/own.png" width="50">\n\n'
        "`![code](img/own.png)`\n\n"
        "[ref]: img/shared.png\n",
    )
    b = vault / "sub" / "b.markdown"
    write_note(b, "![[chart.png|300]] and ![again](../img/shared.png)\n")
    other = write_note(vault / "notes.txt", "![x](img/own.png)\n")
    hidden = write_note(vault / ".hidden.md", "![x](img/own.png)\n")
    git = write_note(vault / ".git" / "x.md", "![x](img/own.png)\n")

    report = sync()

    assert sync_exit_status(report) == EXIT_OK
    assert [n.path for n in report.notes] == [a, b]
    created = control.created_md5s()
    assert sorted(created) == sorted({md5(shared), md5(own), md5(chart)})  # once each
    url = {}
    for note in report.notes:
        assert note.changed and note.error is None
        for image in note.images:
            assert image.status == "uploaded" and image.kind == "local", image
            url[image.target] = image.url
    # The reference definition is the reference of ``![r][ref]``: it is what gets rewritten.
    assert [i.target for i in images_of(report, a)] == [
        "img/shared.png",
        "img/own.png",
        "img/shared.png",
    ]
    assert [i.target for i in images_of(report, b)] == ["chart.png", "../img/shared.png"]
    assert url["img/shared.png"] == url["../img/shared.png"]
    assert control.fetch(url["img/shared.png"]) == shared
    assert control.fetch(url["img/own.png"]) == own
    assert control.fetch(url["chart.png"]) == chart
    expected_a = (
        "# A\n\n"
        f'![s]({url["img/shared.png"]} "title")\n\n'
        "![r][ref]\n\n"
        f'<img src="{url["img/own.png"]}" width="50">\n\n'
        "`![code](img/own.png)`\n\n"
        f"[ref]: {url['img/shared.png']}\n"
    )
    assert a.read_bytes() == expected_a.encode()
    expected_b = f"![300]({url['chart.png']}) and ![again]({url['img/shared.png']})\n"
    assert b.read_bytes() == expected_b.encode()
    assert (vault / "notes.txt").read_bytes() == other
    assert (vault / ".hidden.md").read_bytes() == hidden
    assert (vault / ".git" / "x.md").read_bytes() == git
    totals = report.totals()
    assert totals == {
        "notes": 2,
        "changed": 2,
        "uploaded": 5,
        "reused": 0,
        "cached": 0,
        "skipped": 0,
        "failed": 0,
    }


def test_files_given_are_synced_and_a_missing_one_is_reported(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    write_png(vault / "x.png")
    a = vault / "a.md"
    write_note(a, "![x](x.png)\n")
    untouched = vault / "b.md"
    b_bytes = write_note(untouched, "![x](x.png)\n")
    missing = vault / "missing.md"

    report = sync(a, missing, a)  # a note given twice is synced once

    assert [n.path for n in report.notes] == [a, missing]
    assert report.notes[0].changed
    assert report.notes[1].error == "no such file"
    assert sync_exit_status(report) == EXIT_PARTIAL
    assert untouched.read_bytes() == b_bytes


def test_hundreds_of_notes_given_one_by_one_are_synced_and_skipped_next_time(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    # ``imgsync sync *.md`` in a folder of 300 notes: the run reads those notes' stamps (more
    # places than sqlite takes in one compound SELECT) and skips them all, unread, the next time.
    notes = [vault / f"n{i:03d}.md" for i in range(300)]
    for note in notes:
        write_note(note, f"# {note.name}\n")
    assert len(sync(*notes).notes) == len(notes)

    again = sync(*notes)
    assert [n.path for n in again.notes] == notes
    assert all(n.unchanged_since_last_sync for n in again.notes)
    assert sync_exit_status(again) == EXIT_OK


def test_an_image_known_from_an_earlier_run_is_cached_one_on_the_bed_is_reused(
    sync: Callable[..., Any],
    control: Control,
    vault: Path,
    tmp_path: Path,
    settings: Any,
) -> None:
    write_png(vault / "x.png")
    write_png(vault / "y.png")
    a, b = vault / "a.md", vault / "b.md"
    write_note(a, "![x](x.png)\n")
    assert images_of(sync(a), a)[0].status == "uploaded"

    # Another note, the same file: answered from the local index without a request.
    write_note(b, "![x](x.png)\n")
    before = len(control.requests())
    report = sync(b)
    assert images_of(report, b)[0].status == "cached"
    assert len(control.requests()) == before
    assert report.totals()["cached"] == 1

    # Another machine (an empty cache) with the same bytes: the service's instant upload.
    from imgsync.jobs.sync import Syncer

    other = load_settings(
        settings.config_path, environ={"IMGSYNC_DATA_DIR": str(tmp_path / "other-data")}
    )
    c = vault / "c.md"
    write_note(c, "![x](x.png) ![y](y.png)\n")
    report = Syncer(other, root=vault).run([c])
    assert [i.status for i in images_of(report, c)] == ["reused", "uploaded"]
    assert report.totals()["reused"] == 1


def test_an_unreachable_service_exits_4_and_writes_nothing(
    vault: Path, tmp_path: Path, data_dir: Path
) -> None:
    import socket

    from imgsync.jobs.sync import Syncer

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_config(
        tmp_path / "down.toml", f"http://127.0.0.1:{port}", network={"max_attempts": 2}
    )
    settings = load_settings(config, environ={"IMGSYNC_DATA_DIR": str(data_dir)})
    write_png(vault / "x.png")
    write_png(vault / "y.png")
    write_note(vault / "a.md", "![x](x.png)\n![y](y.png)\n")
    before = snapshot(vault)

    report = Syncer(settings, root=vault).run([vault])

    assert sync_exit_status(report) == EXIT_UNREACHABLE
    assert [i.status for i in report.notes[0].images] == ["failed", "failed"]
    assert all(i.error for i in report.notes[0].images)
    assert snapshot(vault) == before


def test_statuses_and_kinds_are_the_contract_words(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    write_png(vault / "x.png")
    write_note(
        vault / "a.md",
        "![x](x.png) ![m](missing.png) ![d](data:image/png;base64,iVBORw0KGgo=) ![e]()\n",
    )
    report = sync()
    kinds = {i.kind for n in report.notes for i in n.images}
    statuses = {i.status for n in report.notes for i in n.images}
    assert kinds <= {"local", "remote", "hosted", "data"}
    assert statuses <= STATUSES
    by_target = {i.target: i for i in report.notes[0].images}
    assert by_target["x.png"].status == "uploaded"
    assert by_target["missing.png"].status == "failed"
    assert "not found" in (by_target["missing.png"].error or "")
    assert by_target["missing.png"].line == 1
    assert by_target["data:image/png;base64,iVBORw0KGgo="].kind == "data"
    assert by_target["data:image/png;base64,iVBORw0KGgo="].status == "skipped"
    assert by_target[""].status == "skipped"
    assert sync_exit_status(report) == EXIT_PARTIAL  # the missing file
    assert os.path.exists(vault / "a.md")


def test_without_root_the_root_is_the_vault_or_the_folder_given(
    sync: Callable[..., Any], control: Control, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    write_png(plain / "img" / "x.png")
    note = plain / "sub" / "n.md"
    write_note(note, "![x](../img/x.png)\n")
    # The folder given is the root: an image beside the note's own folder is inside it.
    report = sync(plain, root=None)
    assert report.notes[0].images[0].status == "uploaded"

    # A note given alone, with no vault around it: its folder is the root.
    lone = plain / "sub" / "lone.md"
    original = write_note(lone, "![x](../img/x.png)\n")
    report = sync(lone, root=None)
    image = report.notes[0].images[0]
    assert image.status == "skipped" and "outside the root" in (image.error or "")
    assert lone.read_bytes() == original

    # Inside an Obsidian vault, the vault is the root wherever the sync starts.
    (plain / ".obsidian").mkdir()
    report = sync(lone, root=None)
    assert report.notes[0].images[0].status == "cached"


def test_images_go_up_in_parallel(
    make_settings: Callable[..., Any], control: Control, vault: Path
) -> None:
    from imgsync.jobs.sync import Syncer

    held_s = 2.0
    for n in range(4):
        write_png(vault / f"p{n}.png")
    write_note(vault / "a.md", "".join(f"![p](p{n}.png)\n" for n in range(4)))
    # Every create is answered only after a pause: a client that sent them one at a time would
    # send each after the previous answer, at least held_s apart.
    control.faults([{"match": CREATE_PATH, "nth": 1, "times": 4, "action": f"delay:{held_s}"}])

    report = Syncer(make_settings(upload={"concurrency": 4}), root=vault).run([vault])

    assert sync_exit_status(report) == EXIT_OK
    arrivals = sorted(r["time"] for r in control.requests(CREATE_PATH))
    assert len(arrivals) == 4
    # All four were sent before the first of them was answered.
    assert arrivals[-1] - arrivals[0] < held_s
