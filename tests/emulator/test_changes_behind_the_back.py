"""What the image bed does when it changes behind a client's back: folders deleted with what is in
them, a parent folder that no longer exists (each plausible answer), mkdir refusing one form of
``name``, a content review that ends after the upload, and drive files a copy never reads."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import md5, wait_for
from ..support import png_like as png
from .conftest import Bed

MKDIR = "/upload/v1/oss/file/mkdir"
CREATE = "/upload/v1/oss/file/create"
LIST = "/api/v1/oss/file/list"
DELETE = "/api/v1/oss/file/delete"
DETAIL = "/api/v1/oss/file/detail"
COPY = "/api/v1/oss/source/copy"
COPY_PROCESS = "/api/v1/oss/source/copy/process"
COPY_FAIL = "/api/v1/oss/source/copy/fail"
# The largest file a copy takes (reference: "图片大小限制:100M").
MAX_BYTES = 100 * 1024 * 1024


def _gone_folder(bed: Bed) -> str:
    """The ID of a folder that existed and was deleted."""
    folder = bed.mkdir("soon gone")
    bed.ok(DELETE, {"fileIDs": [folder]})
    return folder


def _three_answers(bed: Bed, parent: str) -> dict[str, dict[str, Any]]:
    """What create, mkdir and list answer about the folder ``parent``."""
    data = png("child")
    create = {"parentFileID": parent, "filename": "c.png", "etag": md5(data), "size": len(data)}
    return {
        "create": bed.call(CREATE, {**create, "type": 1}),
        "mkdir": bed.call(MKDIR, {"name": "sub", "parentID": parent, "type": 1}),
        "list": bed.call(LIST, {"parentFileId": parent, "limit": 100, "type": 1}),
    }


def test_deleting_a_folder_deletes_everything_below_it(bed: Bed) -> None:
    top = bed.mkdir("top")
    middle = bed.mkdir("middle", top)
    deep = bed.upload(png("deep"), "deep.png", middle)
    beside = bed.upload(png("beside"), "beside.png")
    bed.ok(DELETE, {"fileIDs": [top]})
    assert [f["fileId"] for f in bed.files()] == [beside]
    for gone in (top, middle, deep):
        assert bed.get(DETAIL, {"fileID": gone})["code"] == 5066


def test_a_missing_parent_is_named_by_default(bed: Bed) -> None:
    assert bed.config()["missing_parent"] == "named"
    parent = _gone_folder(bed)
    answers = _three_answers(bed, parent)
    assert {name: a["code"] for name, a in answers.items()} == {
        "create": 1,
        "mkdir": 1,
        "list": 1,
    }
    # Each names the parameter as that endpoint spells it, and the ID.
    assert answers["create"]["message"] == f"parentFileID: no folder {parent!r}"
    assert answers["mkdir"]["message"] == f"parentID: no folder {parent!r}"
    assert answers["list"]["message"] == f"parentFileId: no folder {parent!r}"


def test_a_missing_parent_can_answer_5066(bed: Bed) -> None:
    bed.config(missing_parent="not_found")
    answers = _three_answers(bed, _gone_folder(bed))
    assert {name: (a["code"], a["message"]) for name, a in answers.items()} == dict.fromkeys(
        ("create", "mkdir", "list"), (5066, "文件不存在")
    )


def test_a_missing_parent_can_list_as_empty_and_refuse_without_naming_it(bed: Bed) -> None:
    bed.config(missing_parent="silent")
    parent = _gone_folder(bed)
    answers = _three_answers(bed, parent)
    assert answers["list"]["code"] == 0
    assert answers["list"]["data"] == {"lastFileId": "-1", "fileList": []}
    for name in ("create", "mkdir"):
        assert answers[name]["code"] == 1
        assert parent not in answers[name]["message"]
        assert "parent" not in answers[name]["message"].lower()


def test_missing_parent_and_mkdir_name_are_validated(bed: Bed) -> None:
    for change in ({"missing_parent": "maybe"}, {"mkdir_name": "tuple"}, {"mkdir_name": 1}):
        assert bed.control("config", change).status_code == 400


@pytest.mark.parametrize(
    ("form", "refused", "taken"),
    [("string", ["a"], "a"), ("list", "b", ["b"])],
)
def test_mkdir_can_refuse_one_form_of_name(bed: Bed, form: str, refused: Any, taken: Any) -> None:
    bed.config(mkdir_name=form)
    answer = bed.call(MKDIR, {"name": refused, "parentID": "", "type": 1})
    assert answer["code"] == 1
    assert answer["message"].startswith("name: expected")
    assert "同名" not in answer["message"]  # not the "already exists" refusal
    assert bed.files() == []
    made = bed.ok(MKDIR, {"name": taken, "parentID": "", "type": 1})
    assert [f["filename"] for f in made["list"]] == ["a" if form == "string" else "b"]


def test_review_can_end_after_the_upload(bed: Bed) -> None:
    """With review_delay_s a new file shows the pending status 0 until its review ends; then
    the verdict (here a rejection set for its content) applies and its link stops serving."""
    bed.config(review_delay_s=0.3)
    rejected, passed = png("rejected later"), png("passed later")
    bed.set("review", {"etag": md5(rejected), "status": 150})
    bad = bed.upload(rejected, "bad.png")
    good = bed.upload(passed, "good.png")
    assert bed.detail(bad)["status"] == 0
    assert bed.detail(good)["status"] == 0
    url = bed.detail(bad)["downloadURL"]
    assert bed.http.get(url, timeout=10).status_code == 200  # pending: still served

    wait_for(lambda: 0 not in (bed.detail(bad)["status"], bed.detail(good)["status"]), timeout=10)
    assert (bed.detail(bad)["status"], bed.detail(good)["status"]) == (150, 2)
    assert bed.http.get(url, timeout=10).status_code == 403
    listed = {f["filename"]: f["status"] for f in bed.listing()["fileList"]}
    assert listed == {"bad.png": 150, "good.png": 2}


def test_a_review_rule_can_reject_an_existing_file_later(bed: Bed) -> None:
    data = png("fine at first")
    file_id = bed.upload(data, "first.png")
    answer = bed.set("review", {"etag": md5(data), "status": 160, "delay_s": 0.3})
    assert answer == {"ok": True, "updated": 1}
    assert bed.detail(file_id)["status"] == 2
    wait_for(lambda: bed.detail(file_id)["status"] == 160, timeout=10)
    assert bed.control("review", {"etag": md5(data), "status": 1, "delay_s": -1}).status_code == 400


def test_a_share_of_new_files_is_rejected_by_content(bed: Bed) -> None:
    """review_reject_share picks files by the first 32 bits of their etag: the same bytes always
    get the same verdict, so a test knows in advance which files the review rejects."""
    bed.config(review_reject_share=0.5)
    blobs = {f"s{n}.png": png(f"share-{n}") for n in range(24)}
    ids = {name: bed.upload(data, name) for name, data in blobs.items()}
    expected = {name for name, data in blobs.items() if int(md5(data)[:8], 16) < 0x80000000}
    assert 0 < len(expected) < len(blobs)  # the tags above give both verdicts
    rejected = {name for name, file_id in ids.items() if bed.detail(file_id)["status"] > 100}
    assert rejected == expected
    assert bed.control("config", {"review_reject_share": 1.5}).status_code == 400


def test_drive_files_can_be_seeded_by_size_and_a_copy_passes_them_over(bed: Bed) -> None:
    """A file over 100 MiB is seeded by its size alone; like a file of another format, a copy
    passes it over without a fail-list entry (the reference's fail list holds images "符合对应格式、
    大小" only)."""
    seeded = bed.set(
        "drive",
        {
            "files": [
                {"fileID": "1", "filename": "huge.png", "size": MAX_BYTES + 1},
                {"fileID": "2", "filename": "movie.mp4", "size": 5_000_000},
                {"fileID": "3", "filename": "ok.png", "content_b64": _b64(png("ok"))},
            ]
        },
    )
    assert seeded == {"ok": True, "files": 3}
    drive = {f["file_id"]: f["size"] for f in bed.control("drive", method="GET").json()["files"]}
    assert drive == {"1": MAX_BYTES + 1, "2": 5_000_000, "3": len(png("ok"))}
    folder = bed.mkdir("from drive")
    task_id = bed.ok(
        COPY, {"fileIDs": ["1", "2", "3"], "toParentFileID": folder, "sourceType": "1", "type": 1}
    )["taskID"]
    wait_for(lambda: bed.ok_get(COPY_PROCESS, {"taskID": task_id})["status"] == 2, timeout=30)
    assert bed.ok_get(COPY_FAIL, {"taskID": task_id, "limit": 100, "page": 1}) == {
        "total": 0,
        "list": None,
    }
    assert [f["filename"] for f in bed.listing(folder)["fileList"]] == ["ok.png"]


def test_a_drive_seed_by_size_is_validated(bed: Bed) -> None:
    small_image = {"fileID": "1", "filename": "small.png", "size": 10}
    assert bed.control("drive", {"files": [small_image]}).status_code == 400  # a copy reads it
    wrong = {"fileID": "2", "filename": "a.png", "content_b64": _b64(b"abc"), "size": 4}
    assert bed.control("drive", {"files": [wrong]}).status_code == 400
    negative = {"fileID": "3", "filename": "a.txt", "size": -1}
    assert bed.control("drive", {"files": [negative]}).status_code == 400


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()
