"""Fixtures for the command-line tests: where their images and notes go, and the environment
of the imgsync processes they start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    return folder


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """The notes root of a test."""
    folder = tmp_path / "vault"
    folder.mkdir()
    return folder


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """The environment of an ``imgsync`` subprocess: no IMGSYNC_* or XDG_* of the caller's, and a
    home of its own, so no real config or data is touched."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("IMGSYNC_", "XDG_"))}
    home = tmp_path / "home"
    home.mkdir()
    return {**keep, "HOME": str(home), "IMGSYNC_DATA_DIR": str(data_dir)}
