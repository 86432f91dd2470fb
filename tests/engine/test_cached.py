"""Answers from the local index alone: no read, no request, no HTTP stack, nothing but the index."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from imgsync.config import Settings, UploadSettings
from imgsync.engine.cached import CacheAnswers, upload_cache_first
from imgsync.engine.items import Item
from imgsync.engine.results import UploadResult
from imgsync.store.cache import Cache, RemoteObject

from ..support import md5, settings_for, write_image

# Nothing listens here: a test that reached the service would fail, not hang.
NOWHERE = "http://127.0.0.1:9"
HOST = "https://img.example.test/u1/"
REVIEW_REJECTED = 200  # a review status above 100: the link will not serve
REVIEW_PASSED = 2  # the reference's example image: its review has ended


def remote_object(data: bytes, name: str, status: int = REVIEW_PASSED) -> RemoteObject:
    return RemoteObject(
        md5=md5(data),
        size=len(data),
        file_id=f"id-{name}",
        download_url=f"{HOST}{name}",
        user_self_url=f"https://cdn.example.test/{name}",
        status=status,
        filename=name,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(NOWHERE, tmp_path / "data")


@pytest.fixture
def cache(settings: Settings) -> Iterator[Cache]:
    with Cache.open(settings.data_dir, namespace=settings.account.key) as opened:
        yield opened


def known_file(cache: Cache, path: Path, tag: str, status: int = REVIEW_PASSED) -> RemoteObject:
    """An image the index knows: its md5 for this stat stamp, and the object holding it."""
    data = write_image(path, "png", tag)
    obj = remote_object(data, path.name, status)
    cache.put_file_md5(path, os.stat(path), obj.md5)
    cache.put_object(obj)
    return obj


def test_a_known_file_is_answered_with_its_link(
    settings: Settings, cache: Cache, tmp_path: Path
) -> None:
    path = tmp_path / "a.png"
    obj = known_file(cache, path, "known")
    answer = CacheAnswers(settings, cache).answer(path)
    assert answer == UploadResult(
        str(path), "local", "cached", obj.download_url, obj.md5, "id-a.png"
    )
    assert CacheAnswers(settings, cache).answer(str(path)) == answer
    uri = path.as_uri()
    assert CacheAnswers(settings, cache).answer(uri) == dataclasses.replace(answer, input=uri)


def test_the_custom_domain_link_when_configured(
    settings: Settings, cache: Cache, tmp_path: Path
) -> None:
    path = tmp_path / "a.png"
    obj = known_file(cache, path, "self-url")
    custom = dataclasses.replace(settings, upload=UploadSettings(link="userSelfURL"))
    answer = CacheAnswers(custom, cache).answer(path)
    assert answer is not None and answer.url == obj.user_self_url


def test_what_the_index_cannot_vouch_for_is_left_to_the_uploader(
    settings: Settings, cache: Cache, tmp_path: Path
) -> None:
    answers = CacheAnswers(settings, cache)
    changed = tmp_path / "changed.png"
    known_file(cache, changed, "before")
    write_image(changed, "png", "after, a different stamp", 4096)
    rejected = tmp_path / "rejected.png"
    obj = known_file(cache, rejected, "rejected", status=REVIEW_REJECTED)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    for path in (changed, rejected, folder, tmp_path / "missing.png"):
        assert answers.answer(path) is None, path
    # The md5 of a file whose object was rejected is known: the uploader need not hash it again.
    assert answers.lookup_path(rejected) == (None, obj.md5)


def test_urls_hosted_migrated_and_unknown(settings: Settings, cache: Cache) -> None:
    data = b"\x89PNG migrated"
    obj = remote_object(data, "m.png")
    cache.put_url("https://elsewhere.test/cat.png", obj)
    answers = CacheAnswers(settings, cache)
    hosted = answers.answer(f"{HOST}other.png")  # under a folder this account's links live in
    assert hosted == UploadResult(f"{HOST}other.png", "hosted", "skipped", url=f"{HOST}other.png")
    migrated = answers.answer("https://elsewhere.test/cat.png")
    assert migrated is not None and (migrated.kind, migrated.status) == ("remote", "cached")
    assert migrated.url == obj.download_url
    assert answers.answer("https://elsewhere.test/dog.png") is None


def test_configured_hosted_prefixes_are_skipped(settings: Settings, cache: Cache) -> None:
    mine = dataclasses.replace(
        settings, upload=UploadSettings(hosted_prefixes=("https://mine.test/",))
    )
    answer = CacheAnswers(mine, cache).answer("https://mine.test/a.png")
    assert answer is not None and answer.status == "skipped"


class RecordingRest:
    """Stands in for an uploader: records what it was given, answers each item ``uploaded``."""

    def __init__(self) -> None:
        self.calls: list[list[Item]] = []

    def __call__(self, rest: Sequence[Item], report: Any) -> None:
        self.calls.append(list(rest))
        for position in reversed(range(len(rest))):  # out of order, as parallel uploads finish
            report(position, UploadResult(str(rest[position]), "local", "uploaded", url="u"))


def test_cache_first_uploads_only_the_rest_and_reports_by_input_index(
    settings: Settings, cache: Cache, tmp_path: Path
) -> None:
    hit = tmp_path / "hit.png"
    known_file(cache, hit, "hit")
    new_a, new_b = tmp_path / "a.png", tmp_path / "b.png"
    items: list[Item] = [new_a, hit, "https://elsewhere.test/x.png", new_b]
    rest = RecordingRest()
    heard: list[tuple[int, str]] = []
    results = upload_cache_first(
        items,
        answers=CacheAnswers(settings, cache),
        upload_rest=rest,
        on_result=lambda index, result: heard.append((index, result.status)),
    )
    assert rest.calls == [[new_a, "https://elsewhere.test/x.png", new_b]]
    assert [r.input for r in results] == [str(i) for i in items]
    assert [r.status for r in results] == ["uploaded", "cached", "uploaded", "uploaded"]
    assert heard[0] == (1, "cached")  # the cache's answer first, before any upload
    assert sorted(heard) == [(0, "uploaded"), (1, "cached"), (2, "uploaded"), (3, "uploaded")]


def test_cache_first_builds_nothing_when_everything_is_known(
    settings: Settings, cache: Cache, tmp_path: Path
) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        known_file(cache, path, f"all-{i}")
    rest = RecordingRest()
    results = upload_cache_first(paths, answers=CacheAnswers(settings, cache), upload_rest=rest)
    assert rest.calls == []
    assert [r.status for r in results] == ["cached"] * 3


def test_the_cache_hit_path_imports_no_http_stack() -> None:
    code = (
        "import sys, imgsync.jobs.upload, imgsync.engine.cached;"
        "heavy = {'requests', 'urllib3', 'mistune', 'imgsync.client.api',"
        " 'imgsync.engine.uploader'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
