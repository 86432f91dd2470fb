"""Folders and objects: mkdir, list (paging, filters), detail, delete, move; strict validation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ..support import png_like as png
from .conftest import Bed

MKDIR = "/upload/v1/oss/file/mkdir"
LIST = "/api/v1/oss/file/list"
DELETE = "/api/v1/oss/file/delete"
MOVE = "/api/v1/oss/file/move"
LIST_FIELDS = [
    "fileId", "filename", "parentFileId", "type", "etag", "size", "status", "s3KeyFlag",
    "storageNode", "createAt", "updateAt", "downloadURL", "ossIndex", "totalTraffic",
    "parentFilename", "extension", "userSelfURL",
]  # fmt: skip
CHINA_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def test_mkdir_accepts_a_string_and_ids_share_an_account_suffix(bed: Bed) -> None:
    data = bed.ok(MKDIR, {"name": "相册", "parentID": "", "type": 1})
    (entry,) = data["list"]
    assert entry["filename"] == "相册"
    assert re.fullmatch(r"[0-9a-z]{32}[0-9A-Za-z]{20}", entry["dirID"])
    other = bed.mkdir("other")
    assert other[32:] == entry["dirID"][32:]


def test_mkdir_accepts_a_list_of_names(bed: Bed) -> None:
    data = bed.ok(MKDIR, {"name": ["a", "b"], "parentID": "", "type": 1})
    assert [e["filename"] for e in data["list"]] == ["a", "b"]


def test_mkdir_of_an_existing_name_is_refused(bed: Bed) -> None:
    bed.mkdir("dup")
    answer = bed.call(MKDIR, {"name": "dup", "parentID": "", "type": 1})
    assert answer["code"] == 1
    assert answer["message"] == "该目录下已经有同名文件夹,无法进行创建"
    assert answer["data"] is None


def test_same_name_in_another_folder_is_fine(bed: Bed) -> None:
    parent = bed.mkdir("p")
    bed.mkdir("dup")
    assert bed.mkdir("dup", parent)


@pytest.mark.parametrize(
    "body",
    [
        {"parentID": "", "type": 1},  # name missing
        {"name": "x", "type": 1},  # parentID missing
        {"name": "x", "parentID": ""},  # type missing
        {"name": "x", "parentID": "", "type": 2},
        {"name": "x", "parentID": "", "type": "1"},
        {"name": 5, "parentID": "", "type": 1},
        {"name": [], "parentID": "", "type": 1},
        {"name": "a/b", "parentID": "", "type": 1},
        {"name": "   ", "parentID": "", "type": 1},
        {"name": "x" * 255, "parentID": "", "type": 1},
        {"name": "x", "parentID": "no-such-folder", "type": 1},
    ],
)
def test_mkdir_validation(bed: Bed, body: dict[str, Any]) -> None:
    answer = bed.call(MKDIR, body)
    assert answer["code"] == 1, answer
    assert answer["message"]


def test_list_shape_root_name_and_folder_fields(bed: Bed) -> None:
    folder = bed.mkdir("dir")
    file_id = bed.upload(png("list-shape"), "pic.png", folder)
    root_page = bed.listing()
    assert root_page["lastFileId"] == "-1"
    (entry,) = root_page["fileList"]
    assert list(entry) == LIST_FIELDS
    assert entry["type"] == 1 and entry["parentFilename"] == "img_oss"
    assert entry["downloadURL"] == entry["userSelfURL"] == "" and entry["status"] == 0
    assert CHINA_TIME.match(entry["createAt"]) and CHINA_TIME.match(entry["updateAt"])
    (image,) = bed.listing(folder)["fileList"]
    assert list(image) == LIST_FIELDS
    assert image["fileId"] == file_id and image["type"] == 0 and image["extension"] == "png"
    assert image["parentFilename"] == "dir" and image["parentFileId"] == folder
    assert image["status"] == 2 and image["size"] == 2048
    # the root can also be listed by its real id
    assert bed.listing(entry["parentFileId"])["fileList"] == root_page["fileList"]


def test_list_pages_with_last_file_id(bed: Bed) -> None:
    made = {bed.mkdir(f"d{i}") for i in range(7)}
    seen: list[str] = []
    cursor = ""
    pages = 0
    while cursor != "-1":
        page = bed.listing(limit=3, lastFileId=cursor)
        seen += [e["fileId"] for e in page["fileList"]]
        cursor = page["lastFileId"]
        assert isinstance(cursor, str)
        pages += 1
    assert pages == 3 and len(seen) == 7 and set(seen) == made


def test_list_time_filter(bed: Bed) -> None:
    bed.mkdir("old")
    assert len(bed.listing(startTime=0)["fileList"]) == 1
    assert bed.listing(endTime=1)["fileList"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"type": 1},  # limit missing
        {"limit": 10},  # type missing
        {"limit": 10, "type": 0},
        {"limit": 0, "type": 1},
        {"limit": 101, "type": 1},
        {"limit": "10", "type": 1},
        {"limit": 10.5, "type": 1},
        {"limit": True, "type": 1},
        {"limit": 10, "type": 1, "parentFileId": 5},
        {"limit": 10, "type": 1, "parentFileId": "missing"},
        {"limit": 10, "type": 1, "lastFileId": "missing"},
        {"limit": 10, "type": 1, "startTime": "yesterday"},
    ],
)
def test_list_validation(bed: Bed, body: dict[str, Any]) -> None:
    answer = bed.call(LIST, body)
    assert answer["code"] == 1, answer


def test_detail_shape_and_unknown_id(bed: Bed) -> None:
    file_id = bed.upload(png("detail"), "d.png")
    data = bed.detail(file_id)
    assert list(data) == LIST_FIELDS
    assert data["fileId"] == file_id and data["parentFilename"] == "img_oss"
    missing = bed.get("/api/v1/oss/file/detail", {"fileID": "nope"})
    assert missing["code"] == 5066 and missing["data"] is None
    assert bed.get("/api/v1/oss/file/detail", {})["code"] == 1


def test_delete_files_and_folders(bed: Bed) -> None:
    folder = bed.mkdir("gone")
    inner = bed.upload(png("inner"), "inner.png", folder)
    loose = bed.upload(png("loose"), "loose.png")
    assert bed.ok(DELETE, {"fileIDs": [folder, loose]}) is None
    assert bed.files() == []
    assert bed.get("/api/v1/oss/file/detail", {"fileID": inner})["code"] == 5066


@pytest.mark.parametrize(
    "body",
    [{}, {"fileIDs": []}, {"fileIDs": "x"}, {"fileIDs": [1]}, {"fileIDs": ["x"] * 101}],
)
def test_delete_validation(bed: Bed, body: dict[str, Any]) -> None:
    assert bed.call(DELETE, body)["code"] == 1


def test_delete_of_an_unknown_id_changes_nothing(bed: Bed) -> None:
    kept = bed.mkdir("kept")
    assert bed.call(DELETE, {"fileIDs": [kept, "unknown"]})["code"] == 5066
    assert [f["fileId"] for f in bed.files()] == [kept]


def test_move_between_folders_and_to_root(bed: Bed) -> None:
    a, b = bed.mkdir("a"), bed.mkdir("b")
    file_id = bed.upload(png("mover"), "m.png", a)
    assert bed.ok(MOVE, {"fileIDs": [file_id], "toParentFileID": b}) is None
    assert bed.detail(file_id)["parentFileId"] == b
    assert bed.ok(MOVE, {"fileIDs": [file_id], "toParentFileID": ""}) is None
    assert bed.detail(file_id)["parentFilename"] == "img_oss"


def test_move_validation(bed: Bed) -> None:
    a = bed.mkdir("a")
    inner = bed.mkdir("inner", a)
    file_id = bed.upload(png("clash"), "same.png", a)
    bed.upload(png("clash-2"), "same.png")
    assert bed.call(MOVE, {"fileIDs": [file_id]})["code"] == 1
    assert bed.call(MOVE, {"toParentFileID": ""})["code"] == 1
    assert bed.call(MOVE, {"fileIDs": [file_id], "toParentFileID": "missing"})["code"] == 1
    assert bed.call(MOVE, {"fileIDs": [a], "toParentFileID": inner})["code"] == 1  # into itself
    assert bed.call(MOVE, {"fileIDs": [file_id], "toParentFileID": ""})["code"] == 1  # name clash
    assert bed.call(MOVE, {"fileIDs": ["unknown"], "toParentFileID": ""})["code"] == 5066
    assert bed.detail(file_id)["parentFileId"] == a
