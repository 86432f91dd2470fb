"""Fixtures of the desktop tests: a real X server (one per test process), its selections cleared
for each test, and the process environment pointed at it (for code that reads DISPLAY itself)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .xserver import XDisplay, running_xvfb


@pytest.fixture(scope="session")
def x_server() -> Iterator[XDisplay]:
    with running_xvfb() as display:
        yield display


@pytest.fixture
def x11(x_server: XDisplay, monkeypatch: pytest.MonkeyPatch) -> XDisplay:
    x_server.clear()
    monkeypatch.setenv("DISPLAY", x_server.name)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return x_server
