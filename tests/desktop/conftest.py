"""Fixtures of the desktop tests: a real X server per test, the process environment pointed at
it (for code that reads DISPLAY itself)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .xserver import XDisplay, running_xvfb


@pytest.fixture
def x11(monkeypatch: pytest.MonkeyPatch) -> Iterator[XDisplay]:
    with running_xvfb() as display:
        monkeypatch.setenv("DISPLAY", display.name)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        yield display
