"""Where the suite's temporary folders live (tests/temproot.py)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .temproot import SHM, _mount_options, memory_temp_root, use_memory_temp

needs_shm = pytest.mark.skipif(
    _mount_options(SHM) is None, reason="no tmpfs mounted at /dev/shm on this machine"
)


@pytest.fixture
def name() -> Iterator[str]:
    """A folder name of this test's own in /dev/shm, removed after."""
    name = f"imgsync-temproot-test-{uuid.uuid4().hex}"
    yield name
    folder = SHM / name
    if folder.is_dir() and not folder.is_symlink():
        folder.chmod(0o700)
        folder.rmdir()
    elif folder.is_symlink():
        folder.unlink()


def test_a_folder_that_is_not_a_tmpfs_mount_is_not_used(tmp_path: Path) -> None:
    assert memory_temp_root(tmp_path, name="x") is None
    assert not (tmp_path / "x").exists()


@needs_shm
def test_the_folder_is_private_and_made_once(name: str) -> None:
    first = memory_temp_root(name=name)
    assert first == SHM / name
    assert (first.stat().st_mode & 0o777, first.stat().st_uid) == (0o700, os.getuid())
    assert memory_temp_root(name=name) == first


@needs_shm
def test_too_little_room_shared_folder_or_planted_link_is_refused(
    name: str, tmp_path: Path
) -> None:
    assert memory_temp_root(min_free=1 << 60, name=name) is None
    (SHM / name).mkdir(mode=0o700)
    (SHM / name).chmod(0o777)
    assert memory_temp_root(name=name) is None
    (SHM / name).rmdir()
    (SHM / name).symlink_to(tmp_path)
    assert memory_temp_root(name=name) is None


def test_a_tmpdir_the_caller_chose_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    environ = {"TMPDIR": "/somewhere"}
    assert use_memory_temp(environ) is None
    assert environ == {"TMPDIR": "/somewhere"}


@needs_shm
def test_without_a_tmpdir_this_process_and_its_children_use_the_memory_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    environ: dict[str, str] = {}
    root = use_memory_temp(environ)
    assert root is not None and environ == {"TMPDIR": str(root)}
    assert tempfile.gettempdir() == str(root)
