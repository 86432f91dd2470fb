"""Fixtures for the upload engine: one in-process emulator, reset per test, and settings for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import CLIENT_ID, CLIENT_SECRET, Control, write_config


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    from imgsync.emulator import Emulator

    with Emulator(port=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as emu:
        yield emu


@pytest.fixture
def control(emulator: Any) -> Control:
    ctl = Control(emulator.base_url)
    ctl.reset()
    return ctl


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_settings(control: Control, tmp_path: Path, data_dir: Path) -> Callable[..., Any]:
    """``make_settings(upload={...}, network={...}, qps={...})`` → Settings for the emulator."""
    from imgsync.config import load_settings

    def make(**sections: Any) -> Any:
        path = write_config(tmp_path / "config.toml", control.base_url, **sections)
        return load_settings(path, environ={"IMGSYNC_DATA_DIR": str(data_dir)})

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> Any:
    return make_settings()


@pytest.fixture
def uploader(settings: Any) -> Iterator[Any]:
    from imgsync.upload import Uploader

    with Uploader.from_settings(settings) as up:
        yield up


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    return folder
