"""``imgsync watch`` as users run it: real processes, real signals, JSON lines, the lock between
two watchers, a manual ``imgsync sync`` beside the watcher, and the system's inotify limit reached
for real (in a user namespace of the test's own, where the limit is the test's to set)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsync.notes.notefile import TEMP_SUFFIX

from ..support import CLIENT_SECRET, Control, md5, png_bytes, wait_for, write_config

DEADLINE_S = 60.0
WATCH_CONFIG = "\n[watch]\ndebounce = 0.2\nimage_grace = 2.0\nretry_initial = 1.0\n"


@pytest.fixture
def config_writer() -> Callable[..., Path]:
    def write(path: Path, base_url: str, **sections: Any) -> Path:
        write_config(path, base_url, **sections)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(WATCH_CONFIG)
        return path

    return write


class WatchProcess:
    """``imgsync watch --json`` in a subprocess; its JSON events and stderr lines as they come."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, is_json: bool) -> None:
        with stream:  # closed at the end of the output, when the process has gone
            for line in stream:
                if is_json:
                    self.events.append(json.loads(line))
                else:
                    self.stderr.append(line.rstrip("\n"))

    def wait_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            assert self.process.poll() is None or kind == "stopped", self.output()
            for event in self.events:
                if event["event"] == kind and all(event.get(k) == v for k, v in fields.items()):
                    return event
            return None

        return wait_for(found, DEADLINE_S)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.stop_reading()

    def stop_reading(self) -> int:
        """Wait for the process to end and its output to be read to the end (and closed)."""
        code = self.process.wait(timeout=DEADLINE_S)
        for reader in self._readers:
            reader.join(timeout=DEADLINE_S)
        return code

    def output(self) -> str:
        return "\n".join(self.stderr)


@pytest.fixture
def start_watch(
    config_path: Path, env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WatchProcess]]:
    started: list[WatchProcess] = []

    def start(*args: str, prefix: tuple[str, ...] = ()) -> WatchProcess:
        command = [*prefix, sys.executable, "-m", "imgsync", "--config", str(config_path)]
        process = WatchProcess([*command, "watch", "--json", *args], env, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
        process.stop_reading()


def note_with_images(vault: Path, name: str, *tags: str) -> tuple[Path, bytes]:
    for tag in tags:
        (vault / "img").mkdir(parents=True, exist_ok=True)
        (vault / "img" / f"{tag}.png").write_bytes(png_bytes(tag))
    body = f"# {name}\n\n" + "\n".join(f"![{t}](img/{t}.png)" for t in tags) + "\n"
    note = vault / f"{name}.md"
    note.write_bytes(body.encode())
    return note, body.encode()


def fully_rewritten(note: Path) -> bool:
    text = note.read_text()
    return "](img/" not in text and "/dl/" in text


# ------------------------------------------------------------------------------ the command


@pytest.mark.parametrize("poll", [False, True], ids=["native", "poll"])
def test_watch_prints_a_line_per_note_json_events_and_stops_cleanly_on_sigterm(
    start_watch: Callable[..., WatchProcess], vault: Path, control: Control, poll: bool
) -> None:
    note_with_images(vault, "before", "a")
    watch = start_watch(*(["--poll"] if poll else []), str(vault))
    started = watch.wait_event("started")
    assert started["observer"] == ("polling" if poll else "native")
    assert started["pid"] == watch.process.pid and started["fallback"] is None
    assert watch.wait_event("ready")["totals"]["uploaded"] == 1

    note, _ = note_with_images(vault, "new", "b")
    event = watch.wait_event("note", path="vault/new.md")

    assert event["trigger"] == "change" and event["changed"] and event["error"] is None
    assert [i["status"] for i in event["images"]] == ["uploaded"]
    assert fully_rewritten(note)
    assert watch.stop() == 0
    assert watch.events[-1] == {"event": "stopped", "signal": "SIGTERM", "in_flight": "finished"}
    assert "vault/new.md: links rewritten (1 uploaded)" in watch.stderr
    assert watch.stderr[-1] == "imgsync: watch stopped"
    everything = watch.output() + json.dumps(watch.events)
    assert "Traceback" not in everything and CLIENT_SECRET not in everything


def test_a_second_watcher_of_the_same_folder_exits_2_naming_the_first(
    start_watch: Callable[..., WatchProcess], vault: Path, control: Control
) -> None:
    first = start_watch(str(vault))
    first.wait_event("ready")

    second = start_watch(str(vault / "." / ""))
    code = second.process.wait(timeout=DEADLINE_S)
    second.stop()

    assert code == 2
    assert f"already watched by another imgsync watch (pid {first.process.pid})" in (
        second.output()
    )
    assert first.process.poll() is None  # the first goes on
    assert first.stop() == 0


@pytest.mark.slow(4)
@pytest.mark.parametrize(
    ("delay", "grace", "in_flight"),
    [
        pytest.param(1.0, 5.0, "finished", id="uploads-finish-within-the-grace"),
        pytest.param(10.0, 0.3, "abandoned", id="uploads-outlast-the-grace"),
    ],
)
def test_sigterm_during_an_upload_leaves_every_note_untouched_or_fully_rewritten(
    start_watch: Callable[..., WatchProcess],
    config_path: Path,
    vault: Path,
    tmp_path: Path,
    control: Control,
    delay: float,
    grace: float,
    in_flight: str,
) -> None:
    with open(config_path, "a", encoding="utf-8") as handle:
        handle.write(f"stop_grace = {grace}\n")
    watch = start_watch(str(vault))
    watch.wait_event("ready")
    control.faults(
        [{"match": "", "method": "PUT", "nth": 1, "times": 1000, "action": f"delay:{delay}"}]
    )
    drafts = tmp_path / "drafts"
    made = dict(note_with_images(drafts, f"n{i}", f"i{i}a", f"i{i}b", "shared") for i in range(6))
    os.rename(drafts, vault / "drafts")  # one folder event: the six notes are in one pass
    notes = {vault / "drafts" / note.name: body for note, body in made.items()}
    wait_for(control.puts, DEADLINE_S)  # their uploads are in flight

    assert watch.stop() == 0

    assert watch.events[-1]["event"] == "stopped"
    assert watch.events[-1]["in_flight"] == in_flight
    for note, original in notes.items():
        assert note.read_bytes() == original or fully_rewritten(note), note.read_text()
    if in_flight == "finished":
        assert all(fully_rewritten(note) for note in notes)
    assert not [p for p in vault.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def test_a_manual_sync_while_the_watcher_works_leaves_every_note_correct_and_uploads_once(
    start_watch: Callable[..., WatchProcess],
    config_path: Path,
    env: dict[str, str],
    vault: Path,
    tmp_path: Path,
    control: Control,
) -> None:
    watch = start_watch(str(vault))
    watch.wait_event("ready")
    control.faults([{"match": "", "method": "PUT", "nth": 1, "times": 1000, "action": "delay:0.2"}])
    drafts = tmp_path / "drafts"
    notes = dict(note_with_images(drafts, f"n{i}", f"own{i}", "shared") for i in range(10))
    os.rename(drafts, vault / "drafts")  # a folder of notes arrives: one pass takes them all
    wait_for(control.puts, DEADLINE_S)  # the watcher's pass is uploading

    manual = subprocess.run(
        [sys.executable, "-m", "imgsync", "--config", str(config_path), "sync", str(vault)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )

    assert manual.returncode == 0, manual.stderr
    moved = {vault / "drafts" / note.name: body for note, body in notes.items()}
    wait_for(lambda: all(fully_rewritten(note) for note in moved), DEADLINE_S)
    assert watch.stop() == 0
    for note, original in moved.items():
        heading = original.split(b"\n", 1)[0]
        assert note.read_bytes().startswith(heading + b"\n\n![own")
    images = [png_bytes(f"own{i}") for i in range(10)] + [png_bytes("shared")]
    assert sorted(control.created_md5s()) == sorted(md5(i) for i in images)  # each once
    assert len(control.puts()) == len(images)


# ------------------------------------------------------------- the system's watch limit, for real


def _user_namespace(limit: int) -> tuple[str, ...]:
    """A command prefix that runs in a new user namespace whose inotify watch limit is ``limit``
    (the limit is per user namespace since Linux 4.9; the machine's own is left alone)."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        pytest.skip("needs unshare(1) on Linux")
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "sh", "-c",
         "echo 1 > /proc/sys/user/max_inotify_watches"],
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot make a user namespace here: {probe.stderr.decode().strip()}")
    script = f'echo {limit} > /proc/sys/user/max_inotify_watches && exec "$@"'
    return (unshare, "--user", "--map-root-user", "sh", "-c", script, "sh")


@pytest.mark.parametrize(
    ("limit", "where"),
    [
        pytest.param(0, "the watched folder itself", id="at-start"),
        pytest.param(3, "sub-folders (watchdog says nothing)", id="sub-folders"),
    ],
)
def test_running_out_of_inotify_watches_falls_back_to_polling_and_says_so_once(
    start_watch: Callable[..., WatchProcess], vault: Path, control: Control, limit: int, where: str
) -> None:
    for i in range(6):
        (vault / f"sub{i}").mkdir()
    watch = start_watch(str(vault), prefix=_user_namespace(limit))

    started = watch.wait_event("started")
    watch.wait_event("ready")
    assert started["observer"] == "polling", where
    assert "max_user_watches" in started["fallback"]
    note, _ = note_with_images(vault / "sub5", "deep", "d")
    wait_for(lambda: fully_rewritten(note), DEADLINE_S)
    assert watch.stop() == 0
    said = [line for line in watch.stderr if "max_user_watches" in line]
    assert len(said) == 1 and "polling" in said[0]


def test_running_out_of_watches_while_watching_falls_back_and_catches_up(
    start_watch: Callable[..., WatchProcess], vault: Path, control: Control
) -> None:
    # Enough watches for the folders there are at start (the vault and two sub-folders), not for
    # the folders made afterwards.
    for i in range(2):
        (vault / f"sub{i}").mkdir()
    watch = start_watch(str(vault), prefix=_user_namespace(3))
    assert watch.wait_event("started")["observer"] == "native"
    watch.wait_event("ready")

    for i in range(3):
        (vault / f"new{i}").mkdir()
    note, _ = note_with_images(vault / "new2", "late", "l")

    watch.wait_event("fallback")
    wait_for(lambda: fully_rewritten(note), DEADLINE_S)
    assert watch.wait_event("ready", trigger="catch-up")
    assert watch.stop() == 0
    assert len([line for line in watch.stderr if "max_user_watches" in line]) == 1
