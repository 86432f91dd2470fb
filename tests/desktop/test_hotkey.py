"""``imgsync hotkey``: a real daemon under Xvfb, the chord pressed with xdotool, the link read back
from the clipboard; presses run one at a time; notifications and chords."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsync.desktop.hotkeys import HotkeyUnavailable, check_chord, normalize_chord
from imgsync.desktop.notify import (
    CommandNotifier,
    NoNotifier,
    notify_send_command,
    osascript_command,
    system_notifier,
)
from imgsync.errors import ConfigError
from imgsync.jobs.clip import ClipResult, NoImageOnClipboard
from imgsync.jobs.hotkey import ClipOnPress, PressOutcome

from ..support import Control, png_bytes, wait_for
from .test_clipboard import fake_tool
from .xserver import XDisplay

# The bound: the link is on the clipboard within 5 s of the press.
LINK_DEADLINE_S = 5.0


class Daemon:
    """``imgsync -v hotkey`` in its own process; its stderr lines collected as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imgsync", "-v", "hotkey", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:  # closed at the end of the output, when the process has gone
            for line in self.proc.stderr:
                self.lines.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if re.search(pattern, line):
                    self.seen.remove(line)
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in {self.seen}")
            try:
                self.seen.append(self.lines.get(timeout=left))
            except queue.Empty:
                continue

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(20)
        self._reader.join(20)
        return code


@pytest.fixture
def daemon(config_path: Path, data_dir: Path, x11: XDisplay) -> Iterator[Daemon]:
    env = {k: v for k, v in x11.env.items() if not k.startswith("IMGSYNC_")}
    env.update(IMGSYNC_CONFIG=str(config_path), IMGSYNC_DATA_DIR=str(data_dir))
    env["PATH"] = os.pathsep.join(  # no notify-send: results go to stderr, where the test reads
        p for p in env["PATH"].split(os.pathsep) if not Path(p, "notify-send").exists()
    )
    running = Daemon(env)
    try:
        running.wait_line(r"imgsync hotkey: listening for <ctrl>\+<alt>\+u")
        yield running
    finally:
        running.stop()


def link_url(link: str) -> str:
    assert link.startswith("![clipboard-") and link.endswith(")"), link
    return link[link.index("](") + 2 : -1]


def test_pressing_the_chord_puts_the_link_on_the_clipboard(
    control: Control, daemon: Daemon, x11: XDisplay
) -> None:
    png = png_bytes("hotkey-once")
    x11.put(png, "image/png")
    pressed = time.monotonic()
    x11.key("ctrl+alt+u")
    link = wait_for(lambda: (x11.text() or "").startswith("![") and x11.text(), LINK_DEADLINE_S)
    assert time.monotonic() - pressed <= LINK_DEADLINE_S
    assert control.fetch(link_url(link)) == png
    daemon.wait_line(r"imgsync: link copied: !\[clipboard-")
    assert daemon.stop() == 0
    assert "Traceback" not in "\n".join(daemon.seen)


def test_two_quick_presses_upload_once_each_never_at_once(
    control: Control, daemon: Daemon, x11: XDisplay
) -> None:
    control.config(latency_ms=150)  # every API call slower: the first clip takes a while
    png = png_bytes("hotkey-twice")
    x11.put(png, "image/png")
    x11.key("ctrl+alt+u")
    x11.key("ctrl+alt+u")
    events = [daemon.wait_line(r"press \d+: clip (started|finished)") for _ in range(4)]
    shapes = [re.search(r"press (\d+): clip (\w+)", line).groups() for line in events]  # type: ignore[union-attr]
    assert shapes == [("1", "started"), ("1", "finished"), ("2", "started"), ("2", "finished")]
    assert all("(ok)" in line for line in events if "finished" in line)
    first = daemon.wait_line(r"imgsync: link copied")
    second = daemon.wait_line(r"imgsync: link copied")
    assert link_url(first.split(": ", 2)[2]) == link_url(second.split(": ", 2)[2])
    assert control.created_md5s() == [control.created_md5s()[0]]  # uploaded once, then cached
    assert control.fetch(link_url(x11.text() or "")) == png


def test_a_press_with_nothing_on_the_clipboard_is_told(daemon: Daemon, x11: XDisplay) -> None:
    x11.key("ctrl+alt+u")
    daemon.wait_line(r"imgsync: clip failed: no image on the clipboard")


# ------------------------------------------------------------------------ one clip at a time


def test_presses_are_queued_and_run_one_at_a_time() -> None:
    running, most, told = 0, 0, []
    lock = threading.Lock()

    def slow_clip(content: object) -> ClipResult:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        raise NoImageOnClipboard()

    outcomes: list[PressOutcome] = []
    worker = ClipOnPress(
        lambda: None,
        slow_clip,
        NoNotifier(),
        lambda t, m: told.append((t, m)),
        on_outcome=outcomes.append,
    )
    worker.start()
    threads = [threading.Thread(target=worker.press) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: len(outcomes) == 5, 10)
    worker.stop(10)
    assert most == 1
    assert sorted(o.press for o in outcomes) == [1, 2, 3, 4, 5]
    assert told == [("imgsync: clip failed", "no image on the clipboard")] * 5


def test_presses_beyond_the_queue_are_dropped_and_told() -> None:
    release = threading.Event()

    def stuck(content: object) -> ClipResult:
        release.wait(10)
        raise NoImageOnClipboard()

    told: list[tuple[str, str]] = []
    started = threading.Event()
    reads: list[int] = []

    def read() -> None:
        reads.append(1)
        if len(reads) > 1:
            started.wait(10)  # the reader is stuck too (a clipboard that does not answer)

    worker = ClipOnPress(read, stuck, NoNotifier(), lambda t, m: told.append((t, m)), max_pending=2)
    worker.start()
    worker.press()  # read, then stuck in the worker
    worker.press()  # read stuck
    wait_for(lambda: len(reads) == 2, 5)
    for _ in range(3):  # two wait, the third is one too many
        worker.press()
    assert told == [("imgsync: clip failed", "too many presses waiting; this one was dropped")]
    started.set()
    release.set()
    worker.stop(10)


# -------------------------------------------------------------------------------- notifications


def test_notify_send_command_and_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log"
    fake_tool(
        tmp_path,
        "notify-send",
        "import sys\nopen(sys.argv[0] + '.log', 'a').write('\\x00'.join(sys.argv[1:]) + '\\n')\n",
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    notifier = system_notifier(platform="linux")
    assert isinstance(notifier, CommandNotifier)
    assert notifier.notify("imgsync: link copied", "![a](http://x/a.png)")
    log = tmp_path / "notify-send.log"
    assert log.read_text().rstrip("\n").split("\0") == [
        "--app-name=imgsync",
        "--expire-time=5000",
        "imgsync: link copied",
        "![a](http://x/a.png)",
    ]
    fake_tool(tmp_path, "notify-send", "import sys\nsys.exit(1)\n")  # no notification service
    assert notifier.notify("t", "m") is False
    assert isinstance(system_notifier(platform="linux", which=lambda name: None), NoNotifier)


def test_macos_notification_command() -> None:
    calls: list[list[str]] = []

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, b"", b"")

    assert system_notifier(platform="darwin", run=run).notify('say "hi"', "a\\b")
    assert calls == [["osascript", "-e", osascript_command('say "hi"', "a\\b")[2]]]
    assert calls[0][2] == 'display notification "a\\\\b" with title "say \\"hi\\""'
    assert notify_send_command("t", "m")[-2:] == ["t", "m"]


# ---------------------------------------------------------------------------------------- chords


def test_chords() -> None:
    assert normalize_chord("<ctrl>+<alt>+u") == "<ctrl>+<alt>+u"
    assert normalize_chord("ctrl+alt+u") == "<ctrl>+<alt>+u"
    assert normalize_chord("Ctrl + Shift + V") == "<ctrl>+<shift>+V"
    assert normalize_chord("<CMD>+u") == "<cmd>+u"


def test_check_chord_under_x(x11: XDisplay) -> None:
    assert check_chord("ctrl+alt+u") == "<ctrl>+<alt>+u"
    with pytest.raises(ConfigError, match="is not a key chord"):
        check_chord("<ctrl>+<nosuchkey>")


def test_without_pynput_the_hotkey_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynput", None)
    with pytest.raises(HotkeyUnavailable, match=r"pip install 'imgsync\[hotkey\]'") as caught:
        check_chord("ctrl+alt+u")
    assert caught.value.exit_code == 2


def test_without_a_desktop_the_daemon_does_not_start(config_path: Path, data_dir: Path) -> None:
    from click.testing import CliRunner

    from imgsync.cli import main

    env = {"IMGSYNC_CONFIG": str(config_path), "IMGSYNC_DATA_DIR": str(data_dir)}
    env.update(DISPLAY="", WAYLAND_DISPLAY="")
    result = CliRunner().invoke(main, ["hotkey"], env=env)
    assert result.exit_code == 2
    assert "neither DISPLAY nor WAYLAND_DISPLAY is set" in result.stderr
