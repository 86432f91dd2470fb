"""Fixtures for the sync tests: one in-process emulator, reset per test, and settings for it."""

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
def vault(tmp_path: Path) -> Path:
    """The notes root of a test."""
    folder = tmp_path / "vault"
    folder.mkdir()
    return folder


@pytest.fixture
def config_path(control: Control, tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.toml", control.base_url)


@pytest.fixture
def make_settings(control: Control, tmp_path: Path, data_dir: Path) -> Callable[..., Any]:
    """``make_settings(upload={...}, network={...})`` → Settings for the emulator."""
    from imgsync.config import load_settings

    def make(**sections: Any) -> Any:
        path = write_config(tmp_path / "config.toml", control.base_url, **sections)
        return load_settings(path, environ={"IMGSYNC_DATA_DIR": str(data_dir)})

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> Any:
    return make_settings()


@pytest.fixture
def sync(settings: Any, vault: Path) -> Callable[..., Any]:
    """``sync(*paths, root=vault, **options)`` → the SyncReport of one run (a new Syncer each)."""
    from imgsync.sync import Syncer

    def run(*paths: Path, root: Path | None = vault, **options: Any) -> Any:
        callbacks = {k: options.pop(k) for k in ("on_note", "on_image") if k in options}
        syncer = Syncer(settings, root=root, **options)
        return syncer.run(list(paths) or [vault], **callbacks)

    return run
