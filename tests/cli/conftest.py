"""Fixtures for the command-line tests: where their images and notes go."""

from __future__ import annotations

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
