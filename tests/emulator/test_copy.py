"""Copy tasks from the seeded cloud drive: states, the fail list, the cap of three, validation."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ..support import md5, wait_for
from ..support import png_like as png
from .conftest import Bed

COPY = "/api/v1/oss/source/copy"
PROCESS = "/api/v1/oss/source/copy/process"
FAIL = "/api/v1/oss/source/copy/fail"


def _seed(bed: Bed, files: dict[str, tuple[str, bytes]]) -> None:
    entries = [
        {"fileID": fid, "filename": name, "content_b64": base64.b64encode(data).decode()}
        for fid, (name, data) in files.items()
    ]
    assert bed.set("drive", {"files": entries})["ok"] is True


def _copy(bed: Bed, ids: list[str], to: str = "", source_type: Any = 1) -> str:
    body = {"fileIDs": ids, "toParentFileID": to, "sourceType": source_type, "type": 1}
    task_id = bed.ok(COPY, body)["taskID"]
    assert isinstance(task_id, str) and task_id
    return task_id


def _status(bed: Bed, task_id: str) -> dict[str, Any]:
    return bed.ok_get(PROCESS, {"taskID": task_id})


def _finished(bed: Bed, task_id: str) -> dict[str, Any]:
    return wait_for(lambda: (s := _status(bed, task_id))["status"] in (2, 3) and s)


def test_copy_images_from_the_drive(bed: Bed) -> None:
    cat, dog = png("cat"), png("dog")
    _seed(bed, {"14802190": ("cat.png", cat), "14802189": ("dog.png", dog)})
    folder = bed.mkdir("from drive")
    task_id = _copy(bed, ["14802190", "14802189"], folder, source_type="1")
    assert _finished(bed, task_id) == {"status": 2, "failMsg": ""}
    listed = {f["filename"]: f for f in bed.listing(folder)["fileList"]}
    assert set(listed) == {"cat.png", "dog.png"}
    assert listed["cat.png"]["etag"] == md5(cat)
    assert bed.http.get(listed["dog.png"]["downloadURL"], timeout=10).content == dog
    assert bed.ok_get(FAIL, {"taskID": task_id, "limit": 10, "page": 1}) == {
        "total": 0,
        "list": None,
    }


def test_fail_list_holds_failed_images_not_other_formats(bed: Bed) -> None:
    """The reference: the fail list records images of an accepted format and size that failed;
    a file of another format is passed over without an entry."""
    _seed(
        bed,
        {
            "1": ("ok.png", png("ok")),
            "2": ("notes.txt", b"plain text"),
            "3": ("fake.png", b"<html>not an image</html>"),
        },
    )
    task_id = _copy(bed, ["1", "2", "3", "404"])
    assert _finished(bed, task_id)["status"] == 2
    fails = bed.ok_get(FAIL, {"taskID": task_id, "limit": 100, "page": 1})
    assert fails["total"] == 2
    assert {(f["fileId"], f["filename"]) for f in fails["list"]} == {
        (3, "fake.png"),
        (404, ""),
    }
    page_two = bed.ok_get(FAIL, {"taskID": task_id, "limit": 1, "page": 2})
    assert page_two["total"] == 2 and len(page_two["list"]) == 1
    assert bed.ok_get(FAIL, {"taskID": task_id, "limit": 1, "page": 3})["list"] is None
    assert [f["filename"] for f in bed.files()] == ["ok.png"]


def test_a_task_where_everything_fails_is_status_3(bed: Bed) -> None:
    task_id = _copy(bed, ["777"])
    finished = _finished(bed, task_id)
    assert finished["status"] == 3 and finished["failMsg"]


def test_at_most_three_unfinished_tasks(bed: Bed) -> None:
    _seed(bed, {"1": ("one.png", png("one"))})
    bed.config(hold_tasks=True)
    tasks = [_copy(bed, ["1"]) for _ in range(3)]
    assert [_status(bed, t)["status"] for t in tasks] == [4, 4, 4]
    body = {"fileIDs": ["1"], "toParentFileID": "", "sourceType": 1, "type": 1}
    refused = bed.call(COPY, body)
    assert refused["code"] == 1 and refused["data"] is None
    bed.config(hold_tasks=False)
    for task_id in tasks:
        assert _finished(bed, task_id)["status"] == 2
    assert len(bed.files()) == 1  # same etag and size in the folder: overwritten, not doubled
    assert _finished(bed, _copy(bed, ["1"]))["status"] == 2  # room again


@pytest.mark.parametrize(
    "change",
    [
        {"fileIDs": None},
        {"fileIDs": []},
        {"fileIDs": [14802190]},
        {"fileIDs": ["1"] * 101},
        {"toParentFileID": None},
        {"toParentFileID": "missing"},
        {"sourceType": None},
        {"sourceType": 2},
        {"sourceType": "drive"},
        {"type": None},
        {"type": 0},
    ],
)
def test_copy_validation(bed: Bed, change: dict[str, Any]) -> None:
    body = {"fileIDs": ["1"], "toParentFileID": "", "sourceType": 1, "type": 1, **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert bed.call(COPY, body)["code"] == 1


def test_task_queries_validate(bed: Bed) -> None:
    task_id = _copy(bed, ["9"])
    assert bed.get(PROCESS, {"taskID": "unknown"})["code"] == 1
    assert bed.get(PROCESS, {})["code"] == 1
    for params in (
        {"taskID": task_id, "limit": 101, "page": 1},
        {"taskID": task_id, "limit": 0, "page": 1},
        {"taskID": task_id, "limit": 10, "page": 0},
        {"taskID": task_id, "limit": 10},
        {"taskID": task_id, "page": 1},
    ):
        assert bed.get(FAIL, params)["code"] == 1, params


def test_drive_seed_is_validated(bed: Bed) -> None:
    assert bed.control("drive", {"files": [{"fileID": "1"}]}).status_code == 400
    assert bed.control("drive", {"files": "x"}).status_code == 400
    bad = {"files": [{"fileID": "1", "filename": "a.png", "content_b64": "%%%"}]}
    assert bed.control("drive", bad).status_code == 400
