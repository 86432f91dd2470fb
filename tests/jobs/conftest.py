"""Fixtures for the sync tests, over the shared emulator and settings (tests/conftest.py): configs
with the sync tests' defaults, a notes root, and one sync run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.config import Settings
from imgsync.jobs.sync import Syncer

from .helpers import write_config
from .watch_helpers import observer, watching  # noqa: F401 - the watcher tests' fixtures


@pytest.fixture
def config_writer() -> Callable[..., Path]:
    return write_config


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """The notes root of a test."""
    folder = tmp_path / "vault"
    folder.mkdir()
    return folder


@pytest.fixture
def sync(settings: Settings, vault: Path) -> Callable[..., Any]:
    """``sync(*paths, root=vault, **options)`` → the SyncReport of one run (a new Syncer each)."""

    def run(*paths: Path, root: Path | None = vault, **options: Any) -> Any:
        callbacks = {k: options.pop(k) for k in ("on_note", "on_image") if k in options}
        syncer = Syncer(settings, root=root, **options)
        return syncer.run(list(paths) or [vault], **callbacks)

    return run
