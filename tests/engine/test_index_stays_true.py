"""The index stays true when the image bed changes behind its back (issue 11, item 8): folders
deleted in the console, images deleted or rejected after their link was handed out, entries grown
old, ``--no-cache``, and a service that takes mkdir's name in one form only."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.client.api import Api
from imgsync.config import Settings
from imgsync.engine.folders import MKDIR_NAME_FACT, NAME_AS_LIST
from imgsync.engine.uploader import Uploader
from imgsync.store.cache import NoteStamp

from ..support import Control, age_index, md5, wait_for, write_image

DETAIL = "/api/v1/oss/file/detail"
CREATE = "/upload/v1/oss/file/create"
MKDIR = "/upload/v1/oss/file/mkdir"
LIST = "/api/v1/oss/file/list"
WEEK_S = 7 * 24 * 3600
MISSING_PARENT_ANSWERS = ("named", "not_found", "silent")


def upload(settings: Settings, path: Path) -> Any:
    """One run of the upload engine for one file."""
    with Uploader.from_settings(settings) as up:
        return up.upload_path(path)


def delete(settings: Settings, *file_ids: str) -> None:
    """Delete through the API, as the 123pan console would: behind imgsync's back."""
    with Api.from_settings(settings) as api:
        api.delete(list(file_ids))


def folder_named(control: Control, name: str) -> dict[str, Any]:
    (found,) = [f for f in control.state() if f["type"] == 1 and f["filename"] == name]
    return found


# -- folders deleted in the console ---------------------------------------------------------------


@pytest.mark.parametrize("answer", MISSING_PARENT_ANSWERS)
def test_the_top_folder_deleted_then_an_upload_succeeds_in_one_run(
    control: Control, settings: Settings, images: Path, answer: str
) -> None:
    """Whatever the service answers about a parent that is gone (a refusal naming it, 5066, or a
    folder that lists as empty), the cached folder IDs are forgotten and the path made again."""
    control.config(missing_parent=answer)
    write_image(images / "old.png", "png", f"old-{answer}")
    assert upload(settings, images / "old.png").ok
    old_top = folder_named(control, "imgsync")["fileId"]
    delete(settings, old_top)
    control.clear_requests()

    data = write_image(images / "new.png", "png", f"new-{answer}")
    result = upload(settings, images / "new.png")

    assert result.ok, result.error
    assert result.status == "uploaded"
    assert control.fetch(result.url) == data
    assert folder_named(control, "imgsync")["fileId"] != old_top
    # Refused in the stale folder, then made again and created there.
    assert [r["code"] for r in control.requests(CREATE)] == [
        1 if answer != "not_found" else 5066,
        0,
    ]


@pytest.mark.parametrize("answer", MISSING_PARENT_ANSWERS)
def test_a_stale_parent_refused_by_mkdir_is_made_again(
    control: Control, make_settings: Callable[..., Settings], images: Path, answer: str
) -> None:
    """The cached parent is gone and the level below it is new (a new month): mkdir in the stale
    parent is refused, and the whole path is made again."""
    control.config(missing_parent=answer)
    write_image(images / "a.png", "png", f"march-{answer}")
    assert upload(make_settings(upload={"folder": "notes/2026-03"}), images / "a.png").ok
    delete(make_settings(), folder_named(control, "notes")["fileId"])

    data = write_image(images / "b.png", "png", f"april-{answer}")
    result = upload(make_settings(upload={"folder": "notes/2026-04"}), images / "b.png")

    assert result.ok, result.error
    assert control.fetch(result.url) == data
    april = folder_named(control, "2026-04")
    assert april["parentFileId"] == folder_named(control, "notes")["fileId"]


def test_folders_are_made_again_only_once_per_run(
    control: Control, settings: Settings, images: Path
) -> None:
    """A service that keeps saying the folder is gone gets one new try, not a loop."""
    write_image(images / "a.png", "png", "once-a")
    assert upload(settings, images / "a.png").ok
    control.clear_requests()
    control.faults([{"match": CREATE, "nth": 1, "times": -1, "action": "code:5066"}])

    write_image(images / "b.png", "png", "once-b")
    result = upload(settings, images / "b.png")

    assert not result.ok
    assert "code 5066" in result.error
    assert len(control.requests(CREATE)) == 2  # the stale try and the one after making again
    assert len(control.requests(MKDIR)) == 3  # imgsync, year and month, made again once


def test_folders_of_other_templates_are_forgotten_too(
    control: Control, make_settings: Callable[..., Settings], images: Path
) -> None:
    """ "Forget that account's cached folder IDs": not only the path that failed."""
    first, second = (
        make_settings(upload={"folder": "x/one"}),
        make_settings(upload={"folder": "x/two"}),
    )
    write_image(images / "1.png", "png", "other-1")
    write_image(images / "2.png", "png", "other-2")
    assert upload(first, images / "1.png").ok
    assert upload(second, images / "2.png").ok
    delete(first, folder_named(control, "x")["fileId"])
    write_image(images / "3.png", "png", "other-3")
    assert upload(first, images / "3.png").ok
    with Uploader.from_settings(second) as up:
        assert up.cache.get_folder("x/two") is None
        result = up.upload_path(images / "2.png")  # its object went with the folder
    assert result.ok, result.error


# -- mkdir's name ---------------------------------------------------------------------------------


def test_mkdir_retries_with_a_list_and_remembers_it(
    control: Control, make_settings: Callable[..., Settings], images: Path
) -> None:
    control.config(mkdir_name="list")
    write_image(images / "a.png", "png", "mkdir-list-a")
    result = upload(make_settings(upload={"folder": "one"}), images / "a.png")
    assert result.ok, result.error
    first = control.requests(MKDIR)
    assert [r["json"]["name"] for r in first] == ["one", ["one"]]
    assert [r["code"] for r in first] == [1, 0]

    control.clear_requests()
    write_image(images / "b.png", "png", "mkdir-list-b")
    settings = make_settings(upload={"folder": "two/deeper"})
    with Uploader.from_settings(settings) as up:
        assert up.upload_path(images / "b.png").ok
        assert up.cache.get_fact(MKDIR_NAME_FACT) == NAME_AS_LIST
    # A new run asks in the form that worked, at once.
    assert [r["json"]["name"] for r in control.requests(MKDIR)] == [["two"], ["deeper"]]


def test_mkdir_sends_a_string_first_and_keeps_it_when_it_works(
    control: Control, settings: Settings, images: Path
) -> None:
    write_image(images / "a.png", "png", "mkdir-string")
    assert upload(settings, images / "a.png").ok
    names = [r["json"]["name"] for r in control.requests(MKDIR)]
    assert len(names) == 3 and all(isinstance(name, str) for name in names)


def test_mkdir_refused_in_both_forms_says_so(
    control: Control, settings: Settings, images: Path
) -> None:
    control.faults([{"match": MKDIR, "nth": 1, "times": -1, "action": "code:1"}])
    write_image(images / "a.png", "png", "mkdir-neither")
    result = upload(settings, images / "a.png")
    assert not result.ok
    assert "as a string" in result.error and "as a list" in result.error
    assert len(control.requests(MKDIR)) == 2  # one retry, not a loop


# -- images deleted, entries grown old ------------------------------------------------------------


def test_an_old_entry_of_a_deleted_image_is_checked_and_uploaded_afresh(
    control: Control, settings: Settings, images: Path
) -> None:
    path = images / "gone.png"
    data = write_image(path, "png", "deleted-behind-the-back")
    first = upload(settings, path)
    delete(settings, first.file_id)

    control.clear_requests()
    within_the_week = upload(settings, path)
    # Confirmed less than verify_after ago: the index answers alone (the price of a free re-run).
    assert within_the_week.status == "cached" and control.requests() == []

    age_index(settings.data_dir, WEEK_S + 60)
    again = upload(settings, path)

    assert again.ok, again.error
    assert again.status == "uploaded"
    assert again.url != first.url
    assert control.fetch(again.url) == data
    assert [r["code"] for r in control.requests(DETAIL)][0] == 5066  # one detail, then upload


def test_an_old_entry_that_is_still_there_costs_one_detail_and_is_trusted_again(
    control: Control, settings: Settings, images: Path
) -> None:
    path = images / "still.png"
    write_image(path, "png", "still-there")
    first = upload(settings, path)
    age_index(settings.data_dir, WEEK_S + 60)

    control.clear_requests()
    checked = upload(settings, path)
    assert (checked.status, checked.url) == ("cached", first.url)
    assert [r["path"] for r in control.requests()] == [DETAIL]

    control.clear_requests()
    assert upload(settings, path).status == "cached"
    assert control.requests() == []  # confirmed just now


def test_verify_after_is_configurable(
    control: Control, make_settings: Callable[..., Settings], images: Path
) -> None:
    settings = make_settings(cache={"verify_after": "0"})
    path = images / "always.png"
    write_image(path, "png", "verify-always")
    assert upload(settings, path).ok
    control.clear_requests()
    assert upload(settings, path).status == "cached"
    assert [r["path"] for r in control.requests()] == [DETAIL]


def test_no_cache_skips_the_index_for_one_run(
    control: Control, settings: Settings, images: Path
) -> None:
    path = images / "known.png"
    write_image(path, "png", "no-cache")
    first = upload(settings, path)
    control.clear_requests()

    result = upload(dataclasses.replace(settings, skip_index=True), path)

    assert (result.ok, result.url) == (True, first.url)
    assert result.status == "reused"  # found on the image bed, not in the index
    asked = {r["path"] for r in control.requests()}
    assert {CREATE, MKDIR, DETAIL} <= asked  # folder IDs were not taken from the index either
    control.clear_requests()
    assert upload(settings, path).status == "cached"  # the next run uses the index again
    assert control.requests() == []


# -- reviews that end after the upload ------------------------------------------------------------


def test_a_rejection_found_later_is_reported_and_never_handed_out_again(
    control: Control, settings: Settings, images: Path
) -> None:
    control.config(review_delay_s=0.5)
    bad_path, good_path = images / "bad.png", images / "good.png"
    bad = write_image(bad_path, "png", "rejected after upload")
    write_image(good_path, "png", "passed after upload")
    control.review(md5(bad), 150)
    with Uploader.from_settings(settings) as up:
        first_bad, first_good = up.upload_many([bad_path, good_path])
        assert first_bad.ok and first_good.ok  # while under review, the links serve
        assert up.cache.get_object(md5(bad), len(bad)).review_pending

    wait_for(lambda: all(f["status"] != 0 for f in control.images()), timeout=10)
    control.clear_requests()
    with Uploader.from_settings(settings) as up:
        again_bad, again_good = up.upload_many([bad_path, good_path])
        assert not again_bad.ok
        assert "rejected by content review after its link was handed out" in again_bad.error
        assert again_bad.url is None
        assert (again_good.status, again_good.url) == ("cached", first_good.url)
        known = up.cache.get_object(md5(bad), len(bad))
        assert known is not None and known.rejected
    assert len(control.requests(DETAIL)) == 2  # each checked once, nothing uploaded again

    control.clear_requests()
    third = upload(settings, bad_path)
    assert not third.ok and first_bad.url not in (third.url or "")
    assert control.requests() == []  # the index knows: no request, no link


def test_recheck_reviews_finds_rejections_and_forgets_the_note_stamps(
    control: Control, settings: Settings, images: Path
) -> None:
    control.config(review_delay_s=0.3)
    paths = [images / f"r{n}.png" for n in range(3)]
    blobs = [write_image(p, "png", f"recheck-{n}") for n, p in enumerate(paths)]
    control.review(md5(blobs[1]), 170)
    with Uploader.from_settings(settings) as up:
        assert all(r.ok for r in up.upload_many(paths))
        up.cache.notes.put(images / "note.md", NoteStamp(1, 1, 1, "digest"))
        wait_for(lambda: all(f["status"] != 0 for f in control.images()), timeout=10)

        check = up.recheck_reviews()

        assert [o.md5 for o in check.rejected] == [md5(blobs[1])]
        assert (check.pending, check.gone, check.unchecked) == (0, 0, [])
        assert up.cache.pending_review() == []
        assert up.cache.notes.all() == {}  # the next sync reads every note
        assert up.recheck_reviews().rejected == []  # nothing pending any more
