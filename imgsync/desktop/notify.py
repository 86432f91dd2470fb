"""Desktop notifications: tell the user what a hotkey press did, where the desktop can show it.

Linux: ``notify-send`` (package libnotify-bin) when present; macOS: ``osascript``'s ``display
notification``. Elsewhere, or when the notification cannot be shown (no notification service on
the session bus), :func:`Notifier.notify` returns False and the caller says it on stderr instead.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

APP_NAME = "imgsync"
# notify-send returns at once when a notification service answers; one that does not answer must
# not hold up the next hotkey press for long.
NOTIFY_TIMEOUT_S = 3.0
# How long the notification stays on screen, for notify-send (milliseconds).
EXPIRE_MS = 5000

Run = Callable[..., "subprocess.CompletedProcess[bytes]"]


class Notifier(Protocol):
    """Shows one message; returns False when it could not be shown."""

    def notify(self, title: str, message: str) -> bool: ...


def _applescript_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class CommandNotifier:
    """A notifier that runs a command (``notify-send`` or ``osascript``)."""

    def __init__(
        self,
        build: Callable[[str, str], list[str]],
        *,
        run: Run = subprocess.run,
        timeout: float = NOTIFY_TIMEOUT_S,
    ) -> None:
        self._build = build
        self._run = run
        self._timeout = timeout

    def notify(self, title: str, message: str) -> bool:
        args = self._build(title, message)
        try:
            proc = self._run(args, capture_output=True, timeout=self._timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.debug("%s failed: %s", args[0], exc)
            return False
        if proc.returncode != 0:
            log.debug("%s: status %s: %r", args[0], proc.returncode, proc.stderr)
            return False
        return True


def notify_send_command(title: str, message: str) -> list[str]:
    """The ``notify-send`` command for one message."""
    return ["notify-send", f"--app-name={APP_NAME}", f"--expire-time={EXPIRE_MS}", title, message]


def osascript_command(title: str, message: str) -> list[str]:
    """The ``osascript`` command for one message."""
    script = f"display notification {_applescript_string(message)} "
    script += f"with title {_applescript_string(title)}"
    return ["osascript", "-e", script]


class NoNotifier:
    """No notification service: every message is left to the caller."""

    def notify(self, title: str, message: str) -> bool:
        return False


def system_notifier(
    *,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
    run: Run = subprocess.run,
) -> Notifier:
    """The notifier of this desktop, or one that always declines."""
    if platform == "darwin":
        return CommandNotifier(osascript_command, run=run)
    if platform.startswith("linux") and which("notify-send"):
        return CommandNotifier(notify_send_command, run=run)
    return NoNotifier()
