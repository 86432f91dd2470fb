"""``imgsync demo``: the whole main job on a copy of bundled sample notes, against the emulator.

The sample notes hold one of each kind of image reference imgsync handles (inline, reference-style,
HTML ``<img>``, an Obsidian embed, a remote image, and an image inside a code block that must stay).
The demo copies them into a new folder, starts the emulator in-process and a small local web server
for the "remote" image, runs ``sync`` with a data folder of its own (so the user's real cache and
token are never touched), and returns what a person wants to see: the diff and the links.
"""

from __future__ import annotations

import difflib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from imgsync.config import AccountSettings, Settings
from imgsync.errors import UsageError
from imgsync.jobs.sync import Syncer
from imgsync.jobs.sync_report import SyncReport

DEMO_FOLDER_NAME = "imgsync-demo"
# How many numbered folder names to try before giving up (imgsync-demo, imgsync-demo-2, ...).
MAX_FOLDER_TRIES = 100
REMOTE_PLACEHOLDER = "REMOTE_URL"
REMOTE_IMAGE = "cat.gif"


@dataclass
class DemoResult:
    folder: Path
    report: SyncReport
    second: SyncReport
    diffs: dict[Path, str]
    base_url: str


def choose_folder(parent: Path) -> Path:
    """A new folder under ``parent``: never reuse (and so never overwrite) an existing one."""
    for n in range(1, MAX_FOLDER_TRIES + 1):
        candidate = parent / (DEMO_FOLDER_NAME if n == 1 else f"{DEMO_FOLDER_NAME}-{n}")
        if not candidate.exists():
            return candidate
    raise UsageError(f"{parent}: too many {DEMO_FOLDER_NAME}* folders; remove some and retry")


def copy_samples(target: Path, remote_base: str) -> list[Path]:
    """Copy the bundled notes to ``target`` (a new folder); point the remote image at our server."""
    source = resources.files("imgsync") / "demo_data" / "notes"
    with resources.as_file(source) as src:
        shutil.copytree(src, target)
    notes = sorted(target.rglob("*.md"))
    for note in notes:
        data = note.read_bytes()
        if REMOTE_PLACEHOLDER.encode() in data:
            url = f"{remote_base}/{REMOTE_IMAGE}"
            note.write_bytes(data.replace(REMOTE_PLACEHOLDER.encode(), url.encode()))
    return notes


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


@contextmanager
def remote_image_server() -> Iterator[str]:
    """Serve the bundled "remote" image on loopback, as if it were somewhere on the web."""
    source = resources.files("imgsync") / "demo_data" / "remote"
    with resources.as_file(source) as folder:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def demo_settings(base: Settings, base_url: str, folder: Path) -> Settings:
    """The user's settings, pointed at the emulator, with a data folder inside the demo folder."""
    return replace(
        base,
        account=AccountSettings(base_url=base_url, client_id="demo", client_secret="demo"),
        upload=replace(base.upload, hosted_prefixes=()),
        data_dir=folder / ".imgsync-data",
    )


def run_demo(base: Settings, parent: Path, emulator_base_url: str) -> DemoResult:
    """Copy the samples under ``parent`` and sync them against the emulator at the given URL."""
    folder = choose_folder(parent)
    with remote_image_server() as remote_base:
        notes = copy_samples(folder, remote_base)
        before = {note: note.read_text(encoding="utf-8") for note in notes}
        settings = demo_settings(base, emulator_base_url, folder)
        report = Syncer(settings, root=folder).run([folder])
        second = Syncer(settings, root=folder).run([folder])
    diffs = {}
    for note, old in before.items():
        new = note.read_text(encoding="utf-8")
        if new != old:
            name = note.relative_to(folder).as_posix()
            diffs[note] = "".join(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    fromfile=f"a/{name}",
                    tofile=f"b/{name}",
                    n=0,
                )
            )
    return DemoResult(
        folder=folder, report=report, second=second, diffs=diffs, base_url=emulator_base_url
    )
