"""A real X server (Xvfb) for the tests, and the clipboard as other applications use it (xclip).

Xvfb picks a free display number itself (``-displayfd``) and writes it once it accepts
connections; the server is then checked with ``xdpyinfo`` under a deadline. A test process starts
one server and its tests share it (a start costs about a tenth of a second of CPU), started with
``-noreset`` so that it keeps accepting connections when its last client leaves; each test starts
with no owner of the clipboard or the primary selection (:meth:`XDisplay.clear`), as on a server
of its own. .ci/run installs xvfb, xclip, xdotool and x11-utils.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

# Xvfb is up in a fraction of a second; a loaded CI machine gets generous room.
START_TIMEOUT_S = 20.0
# How long a copy may take to show on the clipboard, on a loaded machine.
CLIPBOARD_TIMEOUT_S = 10.0
TOOLS = ("Xvfb", "xclip", "xdotool", "xdpyinfo")


@dataclass(frozen=True)
class XDisplay:
    """A running X server: its name (``:3``) and an environment that points at it."""

    name: str
    env: dict[str, str]

    def clear(self) -> None:
        """Leave the clipboard and the primary selection with no owner, as a fresh server has
        them: the program that held one (an xclip of an earlier test) is told it lost it, and
        exits. Any client may set a selection's owner to None (the X protocol's
        SetSelectionOwner); python-xlib comes with pynput, which the hotkey needs."""
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib.protocol import request

        connection = xdisplay.Display(self.name)
        try:
            for selection in ("CLIPBOARD", "PRIMARY"):
                atom = connection.intern_atom(selection)
                request.SetSelectionOwner(
                    display=connection.display, window=X.NONE, selection=atom, time=X.CurrentTime
                )
                connection.sync()
                if connection.get_selection_owner(atom) != X.NONE:
                    raise RuntimeError(f"the {selection} selection kept its owner")
        finally:
            connection.close()

    def run(self, *args: str, data: bytes | None = None, timeout: float = 10.0) -> bytes:
        proc = subprocess.run(
            args, input=data, env=self.env, capture_output=True, timeout=timeout, check=True
        )
        return proc.stdout

    def put(self, data: bytes, mime: str) -> None:
        """Put ``data`` on the CLIPBOARD selection as ``mime``, as an application copying it."""
        self._copy(["xclip", "-selection", "clipboard", "-t", mime, "-i"], data)
        self._wait_offered(data, mime)

    def put_file(self, path: os.PathLike[str] | str, mime: str) -> None:
        """``xclip -selection clipboard -t MIME -i FILE``."""
        self._copy(["xclip", "-selection", "clipboard", "-t", mime, "-i", str(path)], None)
        with open(path, "rb") as copied:
            self._wait_offered(copied.read(), mime)

    def _copy(self, command: list[str], data: bytes | None) -> None:
        """Run an ``xclip -i``; a failure raises with what xclip said. Its error output goes to a
        file, not a pipe: the xclip left serving the selection keeps what it was given open, and
        reading a pipe to its end would wait for that one to exit."""
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.run(
                command,
                input=data,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                timeout=10,
            )
            if proc.returncode != 0:
                errors.seek(0)
                said = errors.read().decode(errors="replace").strip()
                raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {said}")

    def _wait_offered(self, data: bytes, mime: str) -> None:
        """Wait until the clipboard offers ``data`` as ``mime``: xclip's parent exits as soon as
        its child forked, and the child's claim on the selection may reach a loaded X server
        only later (the previous owner would then still answer)."""
        deadline = time.monotonic() + CLIPBOARD_TIMEOUT_S
        while True:
            proc = subprocess.run(
                ["xclip", "-selection", "clipboard", "-t", mime, "-o"],
                env=self.env,
                capture_output=True,
                timeout=10,
            )
            if proc.returncode == 0 and proc.stdout == data:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the clipboard did not offer the {mime} put on it")
            time.sleep(0.02)

    def put_text(self, text: str) -> None:
        self.put(text.encode(), "UTF8_STRING")

    def targets(self) -> list[str]:
        """The types the clipboard's owner offers ([] when it has none)."""
        proc = subprocess.run(
            ["xclip", "-selection", "clipboard", "-t", "TARGETS", "-o"],
            env=self.env,
            capture_output=True,
            timeout=10,
        )
        return proc.stdout.decode().split() if proc.returncode == 0 else []

    def text(self) -> str | None:
        """The clipboard's text, read back with xclip; None when it offers none."""
        if "UTF8_STRING" not in self.targets():
            return None
        return self.run("xclip", "-selection", "clipboard", "-t", "UTF8_STRING", "-o").decode()

    def shows(self, expected: str) -> str | None:
        """The clipboard's text once it is ``expected``, or as it is at the deadline: a program's
        copy reaches the X server a moment after the copying command returned (xclip forks)."""
        deadline = time.monotonic() + CLIPBOARD_TIMEOUT_S
        while (seen := self.text()) != expected and time.monotonic() < deadline:
            time.sleep(0.02)
        return seen

    def key(self, chord: str) -> None:
        """Press a key chord, as a person would: ``xdotool key ctrl+alt+u``."""
        self.run("xdotool", "key", chord)


def _read_display(fd: int, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    text = b""
    while not text.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise RuntimeError(f"Xvfb did not start within {START_TIMEOUT_S} s")
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                raise RuntimeError("Xvfb closed its display pipe without a display number")
            text += chunk
    return ":" + text.decode().strip()


def _wait_connectable(env: dict[str, str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        probe = subprocess.run(["xdpyinfo"], env=env, capture_output=True, timeout=10)
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"X server not reachable: {probe.stderr.decode().strip()}")
        time.sleep(0.05)


# Set by .ci/run, which installs the X tools: without them the desktop tests fail instead of
# skipping (a developer's machine without Xvfb skips them, saying what to install).
REQUIRE_ENV = "IMGSYNC_REQUIRE_DESKTOP_TESTS"


@contextlib.contextmanager
def running_xvfb() -> Iterator[XDisplay]:
    """Start Xvfb on a free display, yield it once it accepts connections, stop it after."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        reason = (
            f"the desktop tests need {', '.join(missing)}: apt-get install xvfb xclip xdotool "
            "x11-utils (.ci/run installs them)"
        )
        # CI installs them and sets this, so there a missing tool is a failure, never a skip.
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            *("-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"),
            # An X server resets when its last client leaves, and refuses connections meanwhile.
            # Shared by a process's tests, it is often left without clients between two tests
            # (clear() makes the last xclip exit): the next test's xclip then failed to connect
            # ("xclip ... exited 1") on a loaded machine.
            "-noreset",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        name = _read_display(read_fd, proc)
        env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
        env["DISPLAY"] = name
        _wait_connectable(env)
        yield XDisplay(name, env)
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
