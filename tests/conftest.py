"""Fixtures shared by the folders that run against the emulator (client, upload, sync): one
in-process emulator for the session, reset before each test, and settings pointed at it.

The emulator's own tests (tests/emulator) start theirs with its defaults and speak to it by plain
HTTP; they use none of these fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsync.config import Settings, load_settings
from imgsync.emulator import Emulator

from .support import CLIENT_ID, CLIENT_SECRET, Control, write_config


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as emu:
        yield emu


@pytest.fixture
def control(emulator: Emulator) -> Control:
    """A freshly reset emulator's control plane."""
    ctl = Control(emulator.base_url)
    ctl.reset()
    return ctl


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config_writer() -> Callable[..., Path]:
    """How this folder writes a config file (``support.write_config``); a folder whose configs
    start from other values overrides it."""
    return write_config


@pytest.fixture
def config_path(config_writer: Callable[..., Path], control: Control, tmp_path: Path) -> Path:
    return config_writer(tmp_path / "config.toml", control.base_url)


@pytest.fixture
def make_settings(
    config_writer: Callable[..., Path], control: Control, tmp_path: Path, data_dir: Path
) -> Callable[..., Settings]:
    """``make_settings(upload={...}, network={...}, qps={...})`` → Settings for the emulator, read
    from a config file as users give them."""

    def make(**sections: Any) -> Settings:
        path = config_writer(tmp_path / "config.toml", control.base_url, **sections)
        return load_settings(path, environ={"IMGSYNC_DATA_DIR": str(data_dir)})

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()
