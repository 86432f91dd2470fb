"""Fixtures for the jobs tests, over the shared emulator and settings (tests/conftest.py): configs
with the sync tests' defaults, a notes root, one sync run, and a web server on loopback."""

from __future__ import annotations

import functools
import http.server
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import imgsync.notes.markdown
from imgsync.config import Settings
from imgsync.jobs.sync import Syncer

from ..loopback import LoopbackServer
from .helpers import write_config
from .watch_helpers import observer, watching  # noqa: F401 - the watcher tests' fixtures


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


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


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text markdown.find_images is called with (sync imports it at call time): a note
    skipped as unchanged since its last sync is never parsed."""
    calls: list[str] = []
    real = imgsync.notes.markdown.find_images

    def spy(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(imgsync.notes.markdown, "find_images", spy)
    return calls


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A web server on loopback serving a folder: (its base URL, the folder)."""
    folder = tmp_path / "web"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    with LoopbackServer(handler) as server:
        yield server.url, folder
