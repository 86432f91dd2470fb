"""A global key chord: call a function whenever the user presses it, whatever window has focus.

Built on pynput (the ``hotkey`` extra), which listens through the X server's RECORD extension on
X11, the event taps of macOS and the low-level keyboard hook of Windows. Wayland compositors let
no program see keys meant for others: under Wayland, pynput only sees keys typed into XWayland
windows, so bind the compositor's own shortcut to ``imgsync clip`` there (README).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Protocol

from imgsync.errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'imgsync[hotkey]'"
_CHORD_PART = re.compile(r"^<[^<>]+>$")


class HotkeyUnavailable(ConfigError):
    """Global hotkeys cannot work on this machine as it is (pynput missing, no display)."""


class HotkeyListener(Protocol):
    """A running listener (a pynput listener thread)."""

    def start(self) -> None: ...

    def wait(self) -> None:
        """Return once the listener receives keys (pynput starts its hooks in its thread)."""
        ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


def normalize_chord(chord: str) -> str:
    """``chord`` in pynput's syntax: ``ctrl+alt+u`` (xdotool's) becomes ``<ctrl>+<alt>+u``.

    A named key gets angle brackets and is lower-cased; a single character stays as it is.
    """
    parts = [part.strip() for part in chord.split("+")]
    if any(not part for part in parts):
        # "+" itself as a key, or a stray "+": leave the chord for pynput to judge.
        return chord.strip()
    shaped = []
    for part in parts:
        if _CHORD_PART.match(part) or len(part) == 1:
            shaped.append(part.lower() if part.startswith("<") else part)
        else:
            shaped.append(f"<{part.lower()}>")
    return "+".join(shaped)


def _keyboard() -> object:
    """pynput's keyboard module, or :class:`HotkeyUnavailable` saying why it cannot load."""
    try:
        from pynput import keyboard
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "pynput":
            raise HotkeyUnavailable(f"the global hotkey needs pynput: {INSTALL_HINT}") from None
        raise HotkeyUnavailable(f"the global hotkey cannot load: {exc}") from None
    except ImportError as exc:
        # pynput says why on several lines (no X server, unsupported platform): keep the first.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HotkeyUnavailable(f"the global hotkey cannot work here: {reason}") from None
    return keyboard


def check_chord(chord: str) -> str:
    """``chord`` normalized, or :class:`~imgsync.errors.ConfigError` if it names no key chord."""
    keyboard = _keyboard()
    shaped = normalize_chord(chord)
    try:
        keyboard.HotKey.parse(shaped)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise ConfigError(f"hotkey.keys: {chord!r} is not a key chord ({exc})") from None
    return shaped


def listen(chord: str, on_press: Callable[[], None]) -> HotkeyListener:
    """A listener (not started) that calls ``on_press`` from its own thread on every press."""
    keyboard = _keyboard()
    shaped = check_chord(chord)
    log.debug("listening for %s", shaped)
    return keyboard.GlobalHotKeys({shaped: on_press})  # type: ignore[attr-defined,no-any-return]
