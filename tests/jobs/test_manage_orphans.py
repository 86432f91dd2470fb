"""``orphans`` against the emulator: exactly the images no note links to, in imgsync's folders
only; ``--delete`` removes those and nothing else."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from imgsync.cli.sync import sync_exit_status
from imgsync.config import Settings
from imgsync.errors import ItemError
from imgsync.jobs.browse import make_folders
from imgsync.jobs.imagebed import ImageBed
from imgsync.jobs.orphans import delete_orphans, find_orphans
from imgsync.jobs.sync import Syncer
from imgsync.naming import folder_levels
from imgsync.store.cache import Cache

from ..support import Control, png_bytes, write_note, write_png
from .manage_helpers import folder_id, same_image_many_times, upload_pngs


def test_folder_levels_match_what_the_template_renders() -> None:
    levels = folder_levels("imgsync/{year}/{month}")
    assert levels[0] == "imgsync"
    year, month = levels[1], levels[2]
    assert isinstance(year, re.Pattern) and isinstance(month, re.Pattern)
    assert year.fullmatch("2026") and not year.fullmatch("26") and not year.fullmatch("x2026")
    assert month.fullmatch("07") and not month.fullmatch("7")
    (mixed,) = folder_levels("shots-{year}{month}{{x}}")
    assert isinstance(mixed, re.Pattern) and mixed.fullmatch("shots-202607{x}")
    assert folder_levels("/a//b/") == ["a", "b"]


def test_orphans_are_exactly_the_unlinked_images_and_delete_removes_only_them(
    settings: Settings, control: Control, vault: Path, tmp_path: Path
) -> None:
    for name in ("used", "linked", "coded", "signed"):
        write_png(vault / "img" / f"{name}.png")
    write_note(vault / "a.md", "![u](img/used.png)\n")
    report = Syncer(settings, root=vault).run([vault])
    assert sync_exit_status(report) == 0
    # Images uploaded but linked only in other ways, or not at all.
    results = upload_pngs(settings, tmp_path / "loose", 5, "loose")
    linked, coded, signed = results[0], results[1], results[2]
    unused = results[3:]
    write_note(
        vault / "sub" / "b.md",
        f"A plain [link]({linked.url}).\n\n```\n{coded.url}\n```\n\n"
        f"![s]({signed.url}?auth_key=1-2-3)\n",
    )
    # An image in a folder of the user's own: never searched, whatever links to it.
    with ImageBed(settings) as bed:
        make_folders(bed, ["imgsync/mine"])
    same_image_many_times(settings, "imgsync/mine", 1, png_bytes("mine"))
    same_image_many_times(settings, "elsewhere", 1, png_bytes("elsewhere"))

    with ImageBed(settings) as bed:
        found = find_orphans(bed, [vault])

    assert sorted(e.remote.file_id for e in found.orphans) == sorted(r.file_id for r in unused)
    assert found.notes == 2 and found.images == 1 + 5 and found.complete
    assert found.folders == [f"imgsync/{_year_month()}"]  # remote_folder does not exist yet
    for entry in found.orphans:
        assert entry.path.startswith("imgsync/") and entry.link

    before = {f["fileId"] for f in control.images()}
    with ImageBed(settings) as bed:
        outcomes = delete_orphans(bed, found)
    assert [o.status for o in outcomes] == ["deleted"] * 2
    assert {f["fileId"] for f in control.images()} == before - {r.file_id for r in unused}
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        assert all(cache.get_object_by_file_id(r.file_id) is None for r in unused)
    with ImageBed(settings) as bed:
        assert find_orphans(bed, [vault]).orphans == []


def test_every_dated_folder_and_the_remote_folder_are_searched(
    make_settings: Callable[..., Settings], control: Control, vault: Path
) -> None:
    settings = make_settings(upload={"folder": "pics/{year}-{month}", "remote_folder": "pics/web"})
    for path in ("pics/2024-01", "pics/2025-12", "pics/web", "pics/2025-1x", "pics/old"):
        same_image_many_times(settings, path, 1, png_bytes(path))
    write_note(vault / "n.md", "no images at all\n")
    with ImageBed(settings) as bed:
        found = find_orphans(bed, [vault])
    assert sorted(found.folders) == ["pics/2024-01", "pics/2025-12", "pics/web"]
    assert len(found.orphans) == 3
    assert {e.remote.parent_file_id for e in found.orphans} == {
        folder_id(control, p) for p in ("pics/2024-01", "pics/2025-12", "pics/web")
    }


def test_a_note_that_cannot_be_read_blocks_deleting(
    settings: Settings, control: Control, vault: Path, tmp_path: Path
) -> None:
    (result,) = upload_pngs(settings, tmp_path / "img", 1, "maybe-used")
    broken = vault / "broken.md"
    write_note(broken, f"![x]({result.url})\n\x00".encode())  # a NUL: not a text note
    with ImageBed(settings) as bed:
        found = find_orphans(bed, [vault])
        assert not found.complete and found.problems[0][0] == broken
        with pytest.raises(ItemError, match="nothing was deleted"):
            delete_orphans(bed, found)
    assert len(control.images()) == 1


def test_a_missing_notes_path_is_a_problem_that_blocks_deleting(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    upload_pngs(settings, tmp_path / "img", 1, "lonely")
    with ImageBed(settings) as bed:
        found = find_orphans(bed, [tmp_path / "no-such-notes"])
        assert len(found.orphans) == 1 and not found.complete
        with pytest.raises(ItemError):
            delete_orphans(bed, found)
    assert len(control.images()) == 1


def _year_month() -> str:
    from datetime import datetime

    now = datetime.now()
    return f"{now.year:04d}/{now.month:02d}"
