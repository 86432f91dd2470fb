"""Fixtures for the upload engine, over the shared emulator and settings (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imgsync.config import Settings
from imgsync.engine.uploader import Uploader


@pytest.fixture
def uploader(settings: Settings) -> Iterator[Uploader]:
    with Uploader.from_settings(settings) as up:
        yield up


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    return folder
