"""``cache stats | verify | rebuild | clear`` against the emulator and real sqlite files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgsync.cli.manage_output import cache_stats_json, verify_exit_status, verify_report_json
from imgsync.cli.sync import sync_exit_status
from imgsync.config import Settings, load_settings
from imgsync.errors import EXIT_OK, EXIT_UNREACHABLE
from imgsync.jobs.cachejobs import cache_stats, clear_cache, rebuild_cache, verify_cache
from imgsync.jobs.imagebed import ImageBed
from imgsync.jobs.sync import Syncer
from imgsync.jobs.upload import upload_items
from imgsync.store.cache import Cache, cache_path

from ..support import CREATE_PATH, Control, write_note, write_png
from .manage_helpers import DETAIL_PATH, requests_to, same_image_many_times, upload_pngs


def objects(settings: Settings) -> dict[str, Any]:
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        return {obj.file_id: obj for obj in cache.iter_objects()}


def test_rebuild_on_a_new_machine_then_sync_uploads_nothing(
    settings: Settings, control: Control, config_path: Path, vault: Path, tmp_path: Path
) -> None:
    # Machine one syncs a vault.
    for name in ("a", "b", "c"):
        write_png(vault / "img" / f"{name}.png")
    write_note(vault / "one.md", "![a](img/a.png) ![b](img/b.png)\n")
    write_note(vault / "two.md", "![c](img/c.png)\n")
    pristine = tmp_path / "pristine"
    shutil.copytree(vault, pristine)
    first = Syncer(settings, root=vault).run([vault])
    assert first.totals()["uploaded"] == 3
    urls = {i.target: i.url for n in first.notes for i in n.images}

    # Machine two: the same notes, an empty data folder.
    other = load_settings(config_path, environ={"IMGSYNC_DATA_DIR": str(tmp_path / "data2")})
    with ImageBed(other) as bed:
        report = rebuild_cache(bed)
    assert (report.files, report.recorded, report.forgotten) == (3, 3, 0)
    assert report.folders == 3  # imgsync, the year, the month
    creates = len(requests_to(control, CREATE_PATH))

    second = Syncer(other, root=pristine).run([pristine])

    assert len(requests_to(control, CREATE_PATH)) == creates  # zero create requests
    assert second.totals()["cached"] == 3 and sync_exit_status(second) == EXIT_OK
    assert {i.target: i.url for n in second.notes for i in n.images} == urls
    assert (pristine / "one.md").read_bytes() == (vault / "one.md").read_bytes()


def test_rebuild_keeps_the_link_it_hands_out_and_forgets_what_is_gone(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    results = upload_pngs(settings, tmp_path / "img", 2, "rb")
    copies = same_image_many_times(
        settings, "copies", 3, (tmp_path / "img" / "rb-0.png").read_bytes()
    )
    rejected = upload_pngs(settings, tmp_path / "img", 1, "rejected")[0]
    control.review(rejected.md5, 150)
    with ImageBed(settings) as bed:
        bed.api.delete([results[1].file_id])

    with ImageBed(settings) as bed:
        report = rebuild_cache(bed)

    known = objects(settings)
    assert set(known) == {results[0].file_id}  # not one of its copies
    assert report.files == 2 + 3 + 1 - 1 and report.rejected == 1
    assert report.forgotten == 2  # the deleted one, and the rejected one
    assert copies[0] not in known


def test_verify_drops_a_deleted_and_a_rejected_image(
    settings: Settings, control: Control, tmp_path: Path
) -> None:
    results = upload_pngs(settings, tmp_path / "img", 3, "verify")
    with ImageBed(settings) as bed:
        bed.api.delete([results[0].file_id])
    control.review(results[1].md5, 150)
    details = len(requests_to(control, DETAIL_PATH))

    checked: list[int] = []
    with ImageBed(settings) as bed:
        report = verify_cache(bed, on_object=checked.append)

    assert len(requests_to(control, DETAIL_PATH)) - details == 3
    assert sorted((d.obj.file_id, d.reason) for d in report.dropped) == sorted(
        [(results[0].file_id, "gone"), (results[1].file_id, "rejected")]
    )
    assert (report.checked, report.kept, verify_exit_status(report)) == (3, 1, EXIT_OK)
    assert checked == [1, 2, 3]
    known = objects(settings)
    # The deleted one is forgotten; the rejected one stays known as rejected, never handed out.
    assert {i for i, obj in known.items() if not obj.rejected} == {results[2].file_id}
    assert {i for i, obj in known.items() if obj.rejected} == {results[1].file_id}
    (again,) = upload_items(settings, [str(tmp_path / "img" / "verify-1.png")])
    assert not again.ok and "rejected by content review" in (again.error or "")
    doc = verify_report_json(report)
    assert {d["reason"] for d in doc["dropped"]} == {"gone", "rejected"}


def test_verify_reports_what_it_could_not_check(
    make_settings: Callable[..., Settings], control: Control, tmp_path: Path
) -> None:
    settings = make_settings(network={"max_attempts": 2})
    upload_pngs(settings, tmp_path / "img", 3, "outage")
    control.faults([{"match": DETAIL_PATH, "times": 100, "action": "http:503"}])
    with ImageBed(settings) as bed:
        report = verify_cache(bed)
    assert report.checked == 0 and len(report.unchecked) == 3
    assert verify_exit_status(report) == EXIT_UNREACHABLE
    # Only the first was tried: the others were not each made to wait as long.
    assert len(requests_to(control, DETAIL_PATH)) == 3 + 2
    assert len(objects(settings)) == 3  # nothing dropped on a guess


def test_stats_and_clear(settings: Settings, tmp_path: Path) -> None:
    path = cache_path(settings.data_dir)
    stats = cache_stats(settings)
    assert not stats.exists and stats.counts["objects"] == 0
    assert not path.exists()  # asking made no file
    assert clear_cache(settings).cleared is False

    upload_pngs(settings, tmp_path / "img", 2, "stats")
    stats = cache_stats(settings)
    assert stats.exists and stats.counts["objects"] == 2 and stats.counts["file_hashes"] == 2
    assert cache_stats_json(stats)["path"] == str(path)

    report = clear_cache(settings)
    assert report.cleared and report.removed == []
    assert cache_stats(settings).counts["objects"] == 0


def test_clear_removes_a_damaged_index(settings: Settings) -> None:
    path = cache_path(settings.data_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database at all " * 400)
    report = clear_cache(settings)
    assert report.removed == [path] and not path.exists()
    assert cache_stats(settings).exists is False
