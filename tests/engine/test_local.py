"""Local files through the whole flow against the emulator: every link serves exactly the bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imgsync.engine.uploader import Uploader

from ..support import EXT, KINDS, Control, image_bytes, md5, write_image

MB = 1024 * 1024


def test_fifty_images_serve_their_bytes_and_a_rerun_makes_no_request(
    control: Control, settings: Any, images: Path
) -> None:
    sizes = [1024, 3000, 20_000, 150_000, 700_000]
    paths, blobs = [], {}
    for i in range(50):
        kind = KINDS[i % len(KINDS)]
        size = sizes[i % len(sizes)]
        if i == 7:
            size = 30 * MB  # beyond the in-memory threshold below: hashed and sent streaming
        path = images / f"img{i:02d}{EXT[kind]}"
        blobs[path] = write_image(path, kind, f"fifty-{i}", size)
        paths.append(path)
    small_memory = {"memory_threshold": 4 * MB}
    with Uploader.from_settings(_replace_upload(settings, **small_memory)) as up:
        results = up.upload_many(paths)

    assert [r.input for r in results] == [str(p) for p in paths]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert {r.status for r in results} == {"uploaded"}
    for path, result in zip(paths, results, strict=True):
        assert result.md5 == md5(blobs[path])
        assert control.fetch(result.url) == blobs[path]
    assert len(control.images()) == 50

    before = len(control.requests())
    with Uploader.from_settings(settings) as up:
        again = up.upload_many(paths)
    assert [r.status for r in again] == ["cached"] * 50
    assert [r.url for r in again] == [r.url for r in results]
    assert len(control.requests()) == before


def test_unchanged_file_is_not_read_again(settings: Any, images: Path, monkeypatch: Any) -> None:
    path = images / "a.png"
    write_image(path, "png", "read-once")
    with Uploader.from_settings(settings) as up:
        assert up.upload_path(path).status == "uploaded"
    opened: list[str] = []
    real_open = open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    with Uploader.from_settings(settings) as up:
        assert up.upload_path(path).status == "cached"
    assert str(path) not in opened


def test_same_content_under_another_name_is_reused_without_put(
    control: Control, uploader: Uploader, images: Path
) -> None:
    data = write_image(images / "first.png", "png", "twins")
    first = uploader.upload_path(images / "first.png")
    assert first.status == "uploaded"
    (images / "second.png").write_bytes(data)
    puts = len(control.puts())

    # A fresh cache: the service itself must recognise the bytes (instant upload).
    second_cache_dir = images.parent / "other-data"
    from dataclasses import replace

    with Uploader.from_settings(replace(uploader.settings, data_dir=second_cache_dir)) as up:
        second = up.upload_path(images / "second.png")
    assert second.status == "reused"
    assert second.md5 == first.md5
    assert len(control.puts()) == puts
    assert control.fetch(second.url) == data


def test_content_already_on_the_bed_by_another_client_is_reused(
    control: Control, uploader: Uploader, images: Path, settings: Any
) -> None:
    from imgsync.client.api import Api

    data = image_bytes("png", "uploaded-elsewhere", 5000)
    with Api.from_settings(settings) as api:
        created = api.create("", "elsewhere.png", md5(data), len(data))
        url = api.get_upload_url(created.preupload_id, 1).presigned_url
        api.put_slice(url, data, len(data))
        api.upload_complete(created.preupload_id)
    path = images / "mine.png"
    path.write_bytes(data)
    puts = len(control.puts())
    result = uploader.upload_path(path)
    assert result.status == "reused", result.error
    assert len(control.puts()) == puts
    assert control.fetch(result.url) == data


def test_large_image_goes_up_in_parallel_slices(
    control: Control, make_settings: Any, images: Path
) -> None:
    import threading

    from imgsync.client.api import Api

    slice_size = 64 * 1024
    control.config(slice_size=slice_size, latency_ms=30)
    path = images / "big.jpg"
    data = write_image(path, "jpeg", "sliced", 20 * slice_size + 123)
    settings = make_settings(upload={"slice_concurrency": 3, "memory_threshold": 0})
    api = Api.from_settings(settings)
    in_flight, peak, lock = 0, 0, threading.Lock()
    real_get_url = api.get_upload_url

    def counting_get_url(*args: Any) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return real_get_url(*args)
        finally:
            with lock:
                in_flight -= 1

    api.get_upload_url = counting_get_url  # type: ignore[method-assign]
    with api, Uploader.from_settings(settings, api=api) as up:
        result = up.upload_path(path)
    assert result.status == "uploaded", result.error
    assert len(control.puts()) == 21
    assert len(control.requests("get_upload_url")) == 21  # one fresh URL per slice
    assert control.fetch(result.url) == data  # the service verified the assembled md5 too
    assert 2 <= peak <= 3  # in parallel, never more than slice_concurrency


def test_in_memory_slices_are_sent_from_the_same_bytes(
    control: Control, make_settings: Any, images: Path
) -> None:
    control.config(slice_size=10_000)
    path = images / "mem.gif"
    data = write_image(path, "gif", "memory-slices", 95_000)
    with Uploader.from_settings(make_settings(upload={"slice_concurrency": 4})) as up:
        result = up.upload_path(path)
    assert result.status == "uploaded", result.error
    assert len(control.puts()) == 10
    assert control.fetch(result.url) == data


@pytest.mark.parametrize(
    ("action", "times", "puts"),
    [
        ("http:403", 1, 5),  # e.g. an expired URL: refused at once, a fresh URL gets it through
        ("reset", 2, 6),  # the transport retries on the same URL (twice here), then a fresh one
    ],
)
def test_failed_slice_is_retried_with_a_fresh_url(
    control: Control, make_settings: Any, images: Path, action: str, times: int, puts: int
) -> None:
    control.config(slice_size=50_000)
    path = images / "retry.png"
    data = write_image(path, "png", f"slice-retry-{action}", 180_000)
    settings = make_settings(upload={"slice_concurrency": 1}, network={"max_attempts": 2})
    control.faults([{"match": "", "method": "PUT", "nth": 2, "times": times, "action": action}])
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.status == "uploaded", result.error
    assert len(control.requests("get_upload_url")) == 5  # 4 slices + 1 fresh URL
    assert len(control.puts()) == puts
    assert control.fetch(result.url) == data


@pytest.mark.real_poll_spacing  # asserts the 1 s between polls
@pytest.mark.slow(5)
def test_async_completion_after_polls_and_20103(
    control: Control, make_settings: Any, images: Path
) -> None:
    control.config(async_polls=3)
    control.faults([{"match": "upload_complete", "nth": 1, "times": 1, "action": "code:20103"}])
    path = images / "slow.webp"
    data = write_image(path, "webp", "async")
    with Uploader.from_settings(make_settings()) as up:
        result = up.upload_path(path)
    assert result.status == "uploaded", result.error
    assert control.fetch(result.url) == data
    polls = control.requests("upload_async_result")
    assert len(polls) >= 3
    times = [r["time"] for r in control.requests("upload_complete")[-1:] + polls]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 1.0, gaps


@pytest.mark.slow(4)
def test_async_result_answering_20103_counts_as_not_yet(
    control: Control, make_settings: Any, images: Path
) -> None:
    control.config(async_polls=1)
    control.faults([{"match": "upload_async_result", "nth": 1, "times": 2, "action": "code:20103"}])
    path = images / "verify.png"
    data = write_image(path, "png", "async-20103")
    with Uploader.from_settings(make_settings()) as up:
        result = up.upload_path(path)
    assert result.status == "uploaded", result.error
    assert control.fetch(result.url) == data
    assert len(control.requests("upload_async_result")) >= 3


@pytest.mark.slow(3)
def test_completion_deadline_fails_clearly(
    control: Control, make_settings: Any, images: Path
) -> None:
    control.config(async_polls=1000)
    path = images / "never.png"
    write_image(path, "png", "never-completes")
    with Uploader.from_settings(make_settings(upload={"poll_deadline": 2.5})) as up:
        result = up.upload_path(path)
    assert result.status == "failed"
    assert "did not confirm the upload within 2.5 s" in result.error


def test_lost_completion_answer_leaves_one_file(
    control: Control, settings: Any, images: Path
) -> None:
    control.faults(
        [{"match": "upload_complete", "nth": 1, "times": 1, "action": "apply-then-reset"}]
    )
    path = images / "lost.png"
    data = write_image(path, "png", "lost-answer")
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.ok, result.error
    assert control.fetch(result.url) == data
    assert [f["etag"] for f in control.images()] == [md5(data)]


def test_review_rejected_image_fails_and_is_never_cached_as_good(
    control: Control, settings: Any, images: Path
) -> None:
    path = images / "bad.png"
    data = write_image(path, "png", "rejected")
    control.review(md5(data), 150)
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
        assert result.status == "failed"
        assert "rejected by content review" in result.error
        assert result.url is None
        known = up.cache.get_object(md5(data), len(data))
        assert known is not None and known.rejected  # remembered as rejected, never as good
    # Still rejected next time: the index knows it, so nothing is sent again.
    control.clear_requests()
    with Uploader.from_settings(settings) as up:
        again = up.upload_path(path)
    assert again.status == "failed" and "rejected by content review" in again.error
    assert control.requests("/file/create") == []


def test_rejected_status_on_a_cached_object_is_not_handed_out(
    control: Control, settings: Any, images: Path
) -> None:
    path = images / "later.png"
    data = write_image(path, "png", "rejected-later")
    with Uploader.from_settings(settings) as up:
        assert up.upload_path(path).status == "uploaded"
        obj = up.cache.get_object(md5(data), len(data))
        from dataclasses import replace

        up.cache.put_object(replace(obj, status=180))
    control.review(md5(data), 180)
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.status == "failed"
    assert "rejected by content review" in result.error


def test_identical_items_and_identical_content_upload_once(
    control: Control, settings: Any, images: Path
) -> None:
    data = write_image(images / "a.png", "png", "dup")
    (images / "b.png").write_bytes(data)
    items = [images / "a.png", str(images / "a.png"), images / "b.png", images / "a.png"]
    with Uploader.from_settings(settings) as up:
        results = up.upload_many(items)
    assert all(r.ok for r in results)
    assert len({r.url for r in results}) == 1
    assert len(control.puts()) == 1
    assert len(control.requests("/file/create")) == 1
    assert [r.input for r in results] == [str(i) for i in items]


def test_on_result_reports_every_index(settings: Any, images: Path) -> None:
    paths = [images / f"{i}.png" for i in range(6)]
    for i, p in enumerate(paths):
        write_image(p, "png", f"cb-{i}")
    seen: dict[int, str] = {}
    with Uploader.from_settings(settings) as up:
        results = up.upload_many(
            [*paths, paths[0]], on_result=lambda i, r: seen.setdefault(i, r.url)
        )
    assert sorted(seen) == list(range(7))
    assert [seen[i] for i in range(7)] == [r.url for r in results]


def test_link_user_self_url_falls_back_to_download_url(
    control: Control, make_settings: Any, images: Path
) -> None:
    path = images / "self.png"
    data = write_image(path, "png", "self-url")
    with Uploader.from_settings(make_settings(upload={"link": "userSelfURL"})) as up:
        result = up.upload_path(path)
    assert result.ok
    entry = next(f for f in control.images() if f["etag"] == md5(data))
    assert result.url == (entry.get("userSelfURL") or entry["downloadURL"])


def test_folder_template_and_name_template(
    control: Control, make_settings: Any, images: Path
) -> None:
    from datetime import datetime

    path = images / "My Photo.png"
    data = write_image(path, "png", "named")
    settings = make_settings(upload={"folder": "notes/{year}/{month}", "filename": "{name}{ext}"})
    with Uploader.from_settings(settings, now=lambda: datetime(2024, 3, 9, 12, 0)) as up:
        result = up.upload_path(path)
    assert result.ok, result.error
    state = control.state()
    by_id = {f["fileId"]: f for f in state}
    entry = next(f for f in state if f.get("etag") == md5(data))
    chain = []
    parent = entry["parentFileId"]
    while parent in by_id:
        chain.append(by_id[parent]["filename"])
        parent = by_id[parent]["parentFileId"]
    assert list(reversed(chain))[-3:] == ["notes", "2024", "03"]
    assert entry["filename"] == "My Photo.png"


def test_name_taken_by_other_content_gets_the_hash(
    control: Control, make_settings: Any, images: Path
) -> None:
    settings = make_settings(upload={"folder": "same", "filename": "{name}{ext}"})
    one = images / "one" / "pic.png"
    two = images / "two" / "pic.png"
    write_image(one, "png", "pic-one")
    data2 = write_image(two, "png", "pic-two")
    with Uploader.from_settings(settings) as up:
        first = up.upload_path(one)
        second = up.upload_path(two)
    assert first.ok and second.ok, (first.error, second.error)
    names = sorted(f["filename"] for f in control.images())
    assert names == sorted(["pic.png", f"pic-{md5(data2)}.png"])
    assert control.fetch(second.url) == data2


def test_existing_folder_is_found_by_listing(
    control: Control, make_settings: Any, images: Path
) -> None:
    from imgsync.client.api import Api

    settings = make_settings(upload={"folder": "shared/pics"})
    with Api.from_settings(settings) as api:
        top = api.mkdir("shared", "")[0].dir_id
        pics = api.mkdir("pics", top)[0].dir_id
    path = images / "x.png"
    write_image(path, "png", "existing-folder")
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.ok, result.error
    entry = next(f for f in control.images())
    assert entry["parentFileId"] == pics
    assert len([f for f in control.state() if f.get("type") == 1]) == 2


def test_folder_ids_are_cached(control: Control, settings: Any, images: Path) -> None:
    for i in range(3):
        write_image(images / f"{i}.png", "png", f"folders-{i}")
    with Uploader.from_settings(settings) as up:
        up.upload_path(images / "0.png")
    mkdirs = len(control.requests("mkdir"))
    assert mkdirs == 3  # imgsync / year / month
    with Uploader.from_settings(settings) as up:
        up.upload_many([images / "1.png", images / "2.png"])
    assert len(control.requests("mkdir")) == mkdirs
    assert len(control.requests("/file/list")) == 0


def test_modified_file_is_uploaded_again(control: Control, settings: Any, images: Path) -> None:
    path = images / "edit.png"
    write_image(path, "png", "version-1")
    with Uploader.from_settings(settings) as up:
        first = up.upload_path(path)
    data = write_image(path, "png", "version-2", 4000)
    with Uploader.from_settings(settings) as up:
        second = up.upload_path(path)
    assert second.status == "uploaded"
    assert second.md5 != first.md5
    assert control.fetch(second.url) == data


def test_file_that_changes_while_streaming_is_refused(
    control: Control, make_settings: Any, images: Path, monkeypatch: Any
) -> None:
    path = images / "moving.png"
    write_image(path, "png", "moving", 300_000)
    from imgsync.engine import content as content_module

    real = content_module.read_content

    def read_then_touch(*args: Any, **kwargs: Any) -> Any:
        content = real(*args, **kwargs)
        with open(path, "ab") as handle:
            handle.write(b"more")
        return content

    monkeypatch.setattr(content_module, "read_content", read_then_touch)
    with Uploader.from_settings(make_settings(upload={"memory_threshold": 1000})) as up:
        result = up.upload_path(path)
    assert result.status == "failed"
    assert "changed while uploading" in result.error
    assert control.images() == []


def _replace_upload(settings: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(settings, upload=replace(settings.upload, **changes))


def _bytes_read() -> int:
    """Bytes this process has passed to read()/pread() so far (files; sockets use recv)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_small_images_are_read_once(settings: Any, images: Path) -> None:
    """Hash and upload from the same bytes: bytes read per byte uploaded stays near 1."""
    warm = images / "warm.png"
    write_image(warm, "png", "warm-up", 5000)
    paths = [images / f"once{i}.png" for i in range(5)]
    total = sum(len(write_image(p, "png", f"read-once-{i}", 400_000)) for i, p in enumerate(paths))
    with Uploader.from_settings(settings) as up:
        assert up.upload_path(warm).ok  # imports, token and folders out of the way
        before = _bytes_read()
        for path in paths:
            assert up.upload_path(path).status == "uploaded"
        read = _bytes_read() - before
    # The cache database's pages and the emulator's own reads are counted too; stay well below 1.05.
    assert read <= total * 1.05, read / total
