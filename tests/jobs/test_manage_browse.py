"""``ls``, ``info`` and ``mkdir`` against the emulator: every page, paths and IDs, clear misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgsync.cli.manage_output import entry_json, outcomes_exit_status
from imgsync.config import Settings
from imgsync.errors import EXIT_OK, EXIT_PARTIAL
from imgsync.jobs.browse import describe, list_folder, make_folders
from imgsync.jobs.imagebed import FolderNotFound, ImageBed, NotAFolder

from ..support import Control, png_bytes
from .manage_helpers import (
    LIST_PATH,
    folder_id,
    listing_requests,
    requests_to,
    same_image_many_times,
    upload_pngs,
)


def test_ls_of_250_images_follows_three_pages(settings: Settings, control: Control) -> None:
    ids = same_image_many_times(settings, "bed/many", 250, png_bytes("many"))
    folder = folder_id(control, "bed/many")
    before = len(requests_to(control, LIST_PATH))

    with ImageBed(settings) as bed:
        listing = list_folder(bed, "bed/many")
        entries = list(listing.entries)

    assert listing.located.file_id == folder
    assert sorted(e.remote.file_id for e in entries) == sorted(ids)
    assert len({e.path for e in entries}) == 250
    pages = listing_requests(control, folder)
    assert len(pages) == 3
    assert [r["json"].get("lastFileId") for r in pages][0] is None
    assert all(r["json"]["limit"] <= 100 for r in requests_to(control, LIST_PATH))
    # Resolving bed/many listed the root and bed once each; nothing else was listed.
    assert len(requests_to(control, LIST_PATH)) - before == 3 + 2
    # Each entry is a plain object ready for --json: the link serves the bytes.
    doc = entry_json(entries[0])
    assert doc["type"] == "file" and doc["rejected"] is False and doc["size"] > 0
    assert control.fetch(doc["url"]) == png_bytes("many")


def test_ls_by_id_recursive_and_rejected_marked(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    results = upload_pngs(settings, tmp_path / "img", 3, "tree")
    with ImageBed(settings) as bed:
        made = make_folders(bed, ["imgsync/empty/deeper"])
    assert outcomes_exit_status(made) == EXIT_OK
    control.review(results[1].md5, 150)
    top = folder_id(control, "imgsync")

    with ImageBed(settings) as bed:
        entries = list(list_folder(bed, top, recursive=True).entries)

    paths = [e.path for e in entries]
    # Every folder is listed right after itself, its entries below it.
    assert paths.index("empty") < paths.index("empty/deeper")
    files = {e.remote.file_id: e for e in entries if not e.remote.is_folder}
    assert set(files) == {r.file_id for r in results}
    assert [entry_json(files[r.file_id])["rejected"] for r in results] == [False, True, False]
    for entry in files.values():
        assert entry.path.count("/") == 2  # YYYY/MM/name below imgsync


def test_ls_of_a_file_id_shows_the_file(settings: Settings, tmp_path: Path) -> None:
    (result,) = upload_pngs(settings, tmp_path / "img", 1, "single")
    with ImageBed(settings) as bed:
        (entry,) = list(list_folder(bed, result.file_id).entries)
    assert entry.remote.file_id == result.file_id and entry.link == result.url


def test_unknown_folder_paths_say_which_level_is_missing(
    settings: Settings, tmp_path: Path
) -> None:
    (result,) = upload_pngs(settings, tmp_path / "img", 1, "miss")
    with ImageBed(settings) as bed:
        with pytest.raises(FolderNotFound, match="no folder 'nope' in 'imgsync' of the image bed"):
            list_folder(bed, "imgsync/nope/deeper")
        with pytest.raises(FolderNotFound, match="no folder 'nowhere' at the top"):
            list_folder(bed, "/nowhere/")
        with pytest.raises(FolderNotFound, match="neither a folder at the top .* nor the ID"):
            list_folder(bed, "nowhere")
        with pytest.raises(NotAFolder, match="is a file"):
            bed.folder(result.file_id)
    # A missing folder is one failed item: exit status 1.
    assert FolderNotFound("x").exit_code == EXIT_PARTIAL


def test_info_per_id_and_unknown_ids(settings: Settings, tmp_path: Path) -> None:
    results = upload_pngs(settings, tmp_path / "img", 2, "info")
    ids = [results[0].file_id, "no-such-id", results[1].file_id]
    with ImageBed(settings) as bed:
        answers = describe(bed, ids)
    assert [a.outcome.ok for a in answers] == [True, False, True]
    assert answers[1].outcome.error == "no file or folder on the image bed has this ID (code 5066)"
    assert answers[0].entry is not None and answers[0].entry.link == results[0].url
    assert answers[2].entry is not None and answers[2].entry.remote.etag == results[1].md5
    assert outcomes_exit_status([a.outcome for a in answers]) == EXIT_PARTIAL


def test_mkdir_is_nested_and_idempotent(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    with ImageBed(settings) as bed:
        first = make_folders(bed, ["a/b/c", "/a/b/d/"])
    assert [o.status for o in first] == ["created", "created"]
    made = folder_id(control, "a/b/c")
    assert first[0].file_id == made and first[1].file_id == folder_id(control, "a/b/d")

    # Again, with a fresh session: the same folder, nothing new on the image bed.
    count = len(control.state())
    with ImageBed(settings) as bed:
        (again,) = make_folders(bed, ["a/b/c"])
    assert again.ok and again.file_id == made and again.status == "exists"
    assert len(control.state()) == count

    # Its IDs are what the next upload uses.
    upload_settings = settings.__class__(
        account=settings.account,
        network=settings.network,
        upload=settings.upload.__class__(folder="a/b/c"),
        data_dir=settings.data_dir,
    )
    (result,) = upload_pngs(upload_settings, tmp_path / "img", 1, "into-c")
    (image,) = [f for f in control.images() if f["fileId"] == result.file_id]
    assert image["parentFileId"] == made


def test_mkdir_finds_again_a_folder_deleted_behind_the_index(
    settings: Settings, control: Control
) -> None:
    with ImageBed(settings) as bed:
        (first,) = make_folders(bed, ["x/y"])
        bed.api.delete([folder_id(control, "x")])
    with ImageBed(settings) as bed:
        (again,) = make_folders(bed, ["x/y"])
    assert again.ok and again.file_id != first.file_id and again.status == "created"
    assert again.file_id == folder_id(control, "x/y")


def test_mkdir_refuses_names_the_image_bed_does_not_take(settings: Settings) -> None:
    with ImageBed(settings) as bed:
        outcomes = make_folders(bed, ["ok/fine", "bad/na:me", "/"])
    assert [o.ok for o in outcomes] == [True, False, False]
    assert "':' " not in (outcomes[1].error or "") and "na:me" in (outcomes[1].error or "")
    assert "root" in (outcomes[2].error or "")
