"""``rm`` and ``mv`` against the emulator: batches of 100, per-item failures, a true index."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgsync.cli.manage_output import outcomes_exit_status
from imgsync.config import Settings
from imgsync.errors import EXIT_OK, EXIT_PARTIAL
from imgsync.jobs.browse import make_folders
from imgsync.jobs.bulk import move, remove
from imgsync.jobs.imagebed import FolderNotFound, ImageBed
from imgsync.jobs.upload import upload_items
from imgsync.store.cache import Cache

from ..support import Control, png_bytes, write_png
from .manage_helpers import (
    DELETE_PATH,
    DETAIL_PATH,
    MOVE_PATH,
    folder_id,
    requests_to,
    same_image_many_times,
    upload_pngs,
)


def cached_file_ids(settings: Settings) -> set[str]:
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        return {obj.file_id for obj in cache.iter_objects()}


@pytest.mark.slow(3)
def test_rm_of_250_ids_sends_three_requests_and_the_index_forgets_them(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    results = upload_pngs(settings, tmp_path / "img", 250, "rm")
    ids = [r.file_id for r in results]
    assert cached_file_ids(settings) == set(ids)
    details = len(requests_to(control, DETAIL_PATH))

    with ImageBed(settings) as bed:
        outcomes = remove(bed, ids)

    assert [o.status for o in outcomes] == ["deleted"] * 250
    assert outcomes_exit_status(outcomes) == EXIT_OK
    deletes = requests_to(control, DELETE_PATH)
    assert [len(r["json"]["fileIDs"]) for r in deletes] == [100, 100, 50]
    assert [i for r in deletes for i in r["json"]["fileIDs"]] == ids
    # The index knew them all as files: no detail was needed.
    assert len(requests_to(control, DETAIL_PATH)) == details
    assert control.images() == []
    assert cached_file_ids(settings) == set()
    # Uploading one again is a fresh upload, not a dead link from the index.
    (again,) = upload_items(settings, [str(tmp_path / "img" / "rm-7.png")])
    assert again.status == "uploaded" and again.file_id not in ids


def test_rm_reports_unknown_ids_and_folders_and_deletes_the_rest(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    results = upload_pngs(settings, tmp_path / "img", 3, "mixed")
    with ImageBed(settings) as bed:
        (folder,) = make_folders(bed, ["keep/me"])
    files = [r.file_id for r in results]
    # An ID the index knows but the service lost: deleted in the console.
    with ImageBed(settings) as bed:
        bed.api.delete([files[2]])
    asked = [files[0], "no-such-id", folder.file_id, files[1], files[2], files[0]]

    with ImageBed(settings) as bed:
        outcomes = remove(bed, asked)

    assert [(o.input, o.status) for o in outcomes] == [
        (files[0], "deleted"),
        ("no-such-id", "failed"),
        (folder.file_id, "failed"),
        (files[1], "deleted"),
        (files[2], "failed"),
    ]
    assert outcomes[1].error == outcomes[4].error
    assert outcomes[1].error == "no file or folder on the image bed has this ID (code 5066)"
    assert "is a folder" in (outcomes[2].error or "") and "--recursive" in (outcomes[2].error or "")
    assert outcomes_exit_status(outcomes) == EXIT_PARTIAL
    assert control.images() == []
    assert folder_id(control, "keep/me") == folder.file_id  # not deleted
    assert cached_file_ids(settings) == set()  # the lost one is forgotten too


def test_rm_recursive_deletes_a_folder_and_forgets_what_was_in_it(
    make_settings: object, control: Control, tmp_path: Path
) -> None:
    settings = make_settings(upload={"folder": "album/2026"})  # type: ignore[operator]
    results = upload_pngs(settings, tmp_path / "img", 4, "album")
    album = folder_id(control, "album")
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        assert cache.get_folder("album/2026") is not None

    with ImageBed(settings) as bed:
        (outcome,) = remove(bed, [album], recursive=True)

    assert outcome.ok and outcome.name == "album"
    assert control.state() == []
    assert cached_file_ids(settings) == set()
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        assert cache.get_folder("album/2026") is None
    # The next upload makes the folders again instead of using IDs that are gone.
    (again,) = upload_items(settings, [str(tmp_path / "img" / "album-0.png")])
    assert again.ok and again.file_id != results[0].file_id


def test_mv_batches_and_pins_refusals_on_their_ids(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    ids = same_image_many_times(settings, "from", 230, png_bytes("moving"))
    with ImageBed(settings) as bed:
        (target,) = make_folders(bed, ["to/here"])
        # A file of the same name as one to move already waits in the target folder.
        blocker = bed.api.create(target.file_id, "17.png", *_etag_size(png_bytes("moving")))
    assert blocker.reuse
    asked = [*ids[:120], "ghost", *ids[120:]]

    with ImageBed(settings) as bed:
        outcomes = move(bed, asked, "to/here")

    failed = {o.input: o.error for o in outcomes if not o.ok}
    assert set(failed) == {"ghost", ids[17]}
    assert "code 5066" in failed["ghost"]
    moved = {f["fileId"] for f in control.images() if f["parentFileId"] == target.file_id}
    assert moved == (set(ids) - {ids[17]}) | {blocker.file_id}
    moves = requests_to(control, MOVE_PATH)
    assert all(len(r["json"]["fileIDs"]) <= 100 for r in moves)
    # Three batches first (100, 100, 31), then halves of the two refused ones only.
    assert [len(r["json"]["fileIDs"]) for r in moves[:1]] == [100]
    assert len(moves) <= 3 + 2 * 2 * 7  # each refused batch: two halves per level, 7 levels


def test_mv_to_a_missing_folder_moves_nothing(settings: Settings, tmp_path: Path) -> None:
    results = upload_pngs(settings, tmp_path / "img", 1, "stay")
    with ImageBed(settings) as bed, pytest.raises(FolderNotFound, match="no folder 'nope'"):
        move(bed, [results[0].file_id], "imgsync/nope")


def test_mv_of_a_folder_makes_the_index_forget_folder_ids(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    write_png(tmp_path / "a.png")
    upload_items(settings, [str(tmp_path / "a.png")])
    top = folder_id(control, "imgsync")
    with ImageBed(settings) as bed:
        (elsewhere,) = make_folders(bed, ["elsewhere"])
        (outcome,) = move(bed, [top], elsewhere.file_id)
    assert outcome.ok
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        assert cache.stats()["folders"] == 0
    write_png(tmp_path / "b.png")
    (b,) = upload_items(settings, [str(tmp_path / "b.png")])
    (image,) = [f for f in control.images() if f["fileId"] == b.file_id]
    assert image["parentFileId"] == folder_id(control, f"imgsync/{_year_month()}")


def _etag_size(data: bytes) -> tuple[str, int]:
    import hashlib

    return hashlib.md5(data).hexdigest(), len(data)


def _year_month() -> str:
    from datetime import datetime

    now = datetime.now()
    return f"{now.year:04d}/{now.month:02d}"
