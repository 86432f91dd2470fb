"""Items that cannot be uploaded each fail with their own message; the rest of the batch uploads."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from imgsync.engine.uploader import Uploader

from ..support import Control, image_bytes, write_image


def test_each_bad_item_fails_with_its_own_message(
    control: Control, settings: Any, images: Path
) -> None:
    good = images / "good.png"
    data = write_image(good, "png", "the-good-one")
    folder = images / "a folder.png"
    folder.mkdir()
    fake = images / "fake.png"
    fake.write_bytes(b"<!doctype html><html><body>404</body></html>")
    empty = images / "empty.png"
    empty.touch()
    huge = images / "huge.png"
    with open(huge, "wb") as handle:  # sparse: only the header is real
        handle.write(image_bytes("png", "huge", 64))
        handle.truncate(100 * 1024 * 1024 + 1)
    loop = images / "loop.png"
    os.symlink(loop, loop)
    long_name = images / ("x" * 300 + ".png")
    nul = str(images / "nul\x00.png")
    fifo = images / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading must not wait for a writer
    items: list[Path | str] = [
        images / "missing.png",
        folder,
        fake,
        empty,
        huge,
        loop,
        long_name,
        nul,
        fifo,
        good,
    ]
    with Uploader.from_settings(settings) as up:
        results = up.upload_many(items)
    errors = [r.error for r in results[:-1]]
    assert all(r.status == "failed" for r in results[:-1])
    expected = [
        "no such file",
        "is a folder",
        "is not an image the image bed takes (it looks like an HTML page",
        "is empty",
        "the image bed takes at most 100 MB",
        "symbolic link loop",
        "name is too long",
        "not a usable path",
        "is a named pipe",
    ]
    for error, words in zip(errors, expected, strict=True):
        assert words in error, (words, error)
    assert len(set(errors)) == len(errors)
    assert results[-1].status == "uploaded"
    assert control.fetch(results[-1].url) == data
    assert [f["etag"] for f in control.images()] == [results[-1].md5]


def test_unreadable_file_fails(settings: Any, images: Path, monkeypatch: Any) -> None:
    """Permission denied (simulated: tests run as root, who reads everything)."""
    path = images / "secret.png"
    write_image(path, "png", "secret")
    real_open = os.open

    def refuse(file: Any, *args: Any, **kwargs: Any) -> int:
        if os.fspath(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.status == "failed"
    assert "permission denied" in result.error


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_fails_for_real(settings: Any, images: Path) -> None:
    path = images / "locked.png"
    write_image(path, "png", "locked")
    path.chmod(0)
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.status == "failed"
    assert "permission denied" in result.error


def test_forbidden_characters_in_names_are_sanitised(
    control: Control, make_settings: Any, images: Path
) -> None:
    path = images / 'a:b*c?"d|e<f>g.png'
    data = write_image(path, "png", "forbidden")
    settings = make_settings(upload={"filename": "{name}{ext}"})
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.ok, result.error
    entry = next(f for f in control.images())
    assert entry["filename"] == "a_b_c__d_e_f_g.png"
    assert control.fetch(result.url) == data


def test_long_local_name_is_shortened_remotely(
    control: Control, make_settings: Any, images: Path
) -> None:
    path = images / ("长" * 80 + ".png")  # 240 bytes in UTF-8: fine locally
    write_image(path, "png", "long-name")
    settings = make_settings(upload={"filename": "{name}-{md5}{ext}"})
    with Uploader.from_settings(settings) as up:
        result = up.upload_path(path)
    assert result.ok, result.error
    name = next(f for f in control.images())["filename"]
    assert name.endswith(f"-{result.md5}.png")
    assert len(name) < 255
