"""``imgsync sync`` and ``imgsync demo`` as users run them: real subprocesses, real output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.cli.sync import print_sync_report, sync_exit_status, sync_report_json
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE
from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome, SyncReport

from ..jobs.helpers import write_config
from ..support import Control, write_note, write_png

TIMEOUT_S = 120
NOTE_KEYS = {"path", "changed", "images"}
IMAGE_KEYS = {"target", "kind", "status", "url", "error"}
TOTAL_KEYS = {"notes", "changed", "uploaded", "reused", "cached", "skipped", "failed"}
# What imgsync adds to the contract's shape ("extend them freely"): a note's own error and
# warnings, an image's line, and whether the run was a dry run.
NOTE_EXTRA = {"error", "warnings"}
IMAGE_EXTRA = {"line"}
TOP_EXTRA = {"dry_run"}
KINDS = {"local", "remote", "hosted", "data"}
STATUSES = {"uploaded", "reused", "cached", "migrated", "skipped", "failed"}


@pytest.fixture
def config_writer() -> Callable[..., Path]:
    """Configs with the sync tests' defaults."""
    return write_config


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgsync", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def check_shape(document: Any) -> None:
    assert set(document) == {"notes", "totals"} | TOP_EXTRA
    assert set(document["totals"]) == TOTAL_KEYS
    assert all(isinstance(v, int) for v in document["totals"].values())
    for note in document["notes"]:
        assert set(note) == NOTE_KEYS | NOTE_EXTRA
        assert isinstance(note["path"], str) and isinstance(note["changed"], bool)
        for image in note["images"]:
            assert set(image) == IMAGE_KEYS | IMAGE_EXTRA
            assert image["kind"] in KINDS and image["status"] in STATUSES


def test_sync_json_in_a_subprocess(
    control: Control, config_path: Path, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    write_png(vault / "img" / "a.png")
    write_note(vault / "a.md", "![a](img/a.png)\n")
    write_note(vault / "sub" / "b.md", "![a](../img/a.png) ![m](missing.png)\n")

    done = run(["--config", str(config_path), "sync", "--json", "vault"], env, tmp_path)

    assert done.returncode == 1, done.stderr  # the missing image
    document = json.loads(done.stdout)  # exactly one JSON document, nothing else
    assert done.stdout.count("\n") == 1 and done.stdout.endswith("}\n")
    check_shape(document)
    assert [n["path"] for n in document["notes"]] == ["vault/a.md", "vault/sub/b.md"]
    a, b = document["notes"]
    assert a["changed"] and b["changed"]
    assert [i["status"] for i in a["images"]] == ["uploaded"]
    assert [i["status"] for i in b["images"]] == ["uploaded", "failed"]
    assert b["images"][1]["error"] and b["images"][1]["url"] is None
    assert document["totals"] == {
        "notes": 2,
        "changed": 2,
        "uploaded": 2,
        "reused": 0,
        "cached": 0,
        "skipped": 0,
        "failed": 1,
    }
    assert "missing.png" in done.stderr  # the human report goes to stderr
    assert done.stderr.splitlines()[-1] == (
        "2 notes, 2 changed; image links: 2 uploaded, 0 reused, 0 cached, 0 skipped, 1 failed"
    )
    url = a["images"][0]["url"]
    assert (vault / "a.md").read_bytes() == f"![a]({url})\n".encode()

    # Again: nothing to do for a.md; b.md is looked at again for its missing image.
    again = run(["--config", str(config_path), "sync", "--json", "vault"], env, tmp_path)
    document = json.loads(again.stdout)
    check_shape(document)
    assert document["totals"]["changed"] == 0 and document["totals"]["uploaded"] == 0


def test_sync_without_credentials_is_a_usage_error_but_dry_run_needs_none(
    env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    write_png(vault / "a.png")
    note = vault / "a.md"
    original = write_note(note, "![a](a.png)\n")

    done = run(["--config", str(config), "sync", "vault"], env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "client_id" in done.stderr

    dry = run(["--config", str(config), "sync", "--dry-run", "vault"], env, tmp_path)
    assert dry.returncode == 0, dry.stderr
    # One line per image that would change: the rewrite it would get, not also "not uploaded".
    assert dry.stderr.splitlines() == [
        f"vault/a.md: would rewrite a.png -> <url of {(vault / 'a.png').resolve()}>",
        "dry run: 1 notes, 0 changed; image links: 0 uploaded, 0 reused, 0 cached, 1 skipped, "
        "0 failed",
    ]
    assert dry.stdout == ""
    assert note.read_bytes() == original


def test_refused_credentials_exit_3_and_write_nothing(
    control: Control, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    from ..support import CLIENT_SECRET

    config = write_config(tmp_path / "bad.toml", control.base_url)
    wrong = CLIENT_SECRET + "-wrong"
    config.write_text(config.read_text().replace(CLIENT_SECRET, wrong))
    write_png(vault / "a.png")
    note = vault / "a.md"
    original = write_note(note, "![a](a.png)\n")

    done = run(["--config", str(config), "sync", "--json", "vault"], env, tmp_path)

    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("imgsync: ")
    assert wrong not in done.stderr
    assert note.read_bytes() == original


def test_demo_in_a_subprocess(env: dict[str, str], tmp_path: Path) -> None:
    parent = tmp_path / "here"
    parent.mkdir()

    done = run(["demo", "--dir", str(parent)], env, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    folder = parent / "imgsync-demo"
    out = done.stdout
    assert f"Copied the sample notes to {folder}" in out
    emulator_url = out.split("image-bed emulator at ", 1)[1].split()[0]
    assert emulator_url.startswith("http://127.0.0.1:")
    assert "-![A sunset](images/sunset.jpg" in out  # the diff
    assert f"+![A sunset]({emulator_url}/" in out
    welcome = (folder / "Welcome.md").read_text(encoding="utf-8")
    # The inline, HTML, remote and reference-style images: all on the emulator now.
    assert welcome.count(emulator_url) == 4 and welcome.count("http://") == 4
    assert "REMOTE_URL" not in welcome
    assert "\n![not an image](images/sunset.jpg)\n" in welcome  # the code block is left alone
    embed = (folder / "Obsidian embed.md").read_text(encoding="utf-8")
    assert f"![300]({emulator_url}/" in embed and "![[" not in embed
    assert "nothing to upload, nothing to write:\n2 notes, 0 changed" in out
    assert not (tmp_path / "home" / ".config" / "imgsync").exists()

    # A second demo never overwrites the first.
    again = run(["demo", "--dir", str(parent)], env, tmp_path)
    assert again.returncode == 0
    assert (parent / "imgsync-demo-2" / "Welcome.md").exists()
    assert (folder / "Welcome.md").read_text(encoding="utf-8") == welcome


def test_a_no_op_re_sync_loads_neither_the_upload_engine_nor_the_parser(
    control: Control, config_path: Path, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    write_png(vault / "a.png")
    write_note(vault / "a.md", "![a](a.png)\n")
    write_note(vault / "b.md", "No image.\n")
    assert run(["--config", str(config_path), "sync", "vault"], env, tmp_path).returncode == 0
    # The rewritten note is proved by its content once, then trusted by its stat.
    write_note(vault / "a.md", (vault / "a.md").read_bytes())
    assert run(["--config", str(config_path), "sync", "vault"], env, tmp_path).returncode == 0

    args = ["-X", "importtime", "-m", "imgsync", "--config", str(config_path), "sync", "vault"]
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert done.returncode == 0, done.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {
        "mistune",
        "requests",
        "imgsync.engine.uploader",
        "imgsync.notes.markdown",
        "imgsync.notes.notefile",
        "imgsync.notes.resolve",
    }
    assert not (heavy & imported), heavy & imported
    assert done.stderr.splitlines()[-1] == (
        "2 notes, 0 changed; image links: 0 uploaded, 0 reused, 0 cached, 0 skipped, 0 failed"
    )


def image(status: str, *, unreachable: bool = False) -> ImageOutcome:
    return ImageOutcome("x.png", "local", status, unreachable=unreachable)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("notes", "status"),
    [
        pytest.param([], EXIT_OK, id="nothing"),
        pytest.param([NoteOutcome("/n.md", images=[image("uploaded")])], EXIT_OK, id="all-done"),
        pytest.param([NoteOutcome("/n.md", images=[image("skipped")])], EXIT_OK, id="skipped"),
        pytest.param([NoteOutcome("/n.md", error="binary file")], EXIT_PARTIAL, id="bad-note"),
        pytest.param(
            [NoteOutcome("/n.md", images=[image("failed"), image("uploaded")])],
            EXIT_PARTIAL,
            id="an-image-failed",
        ),
        pytest.param(
            [
                NoteOutcome("/a.md", images=[image("failed", unreachable=True)]),
                NoteOutcome("/b.md", images=[image("failed", unreachable=True), image("cached")]),
            ],
            EXIT_UNREACHABLE,
            id="every-failure-unreachable",
        ),
        pytest.param(
            [
                NoteOutcome("/a.md", images=[image("failed", unreachable=True)]),
                NoteOutcome("/b.md", images=[image("failed")]),
            ],
            EXIT_PARTIAL,
            id="unreachable-and-another-failure",
        ),
        pytest.param(
            [
                NoteOutcome("/a.md", images=[image("failed", unreachable=True)]),
                NoteOutcome("/b.md", error="binary file"),
            ],
            EXIT_PARTIAL,
            id="unreachable-and-a-bad-note",
        ),
    ],
)
def test_the_exit_status_of_a_sync(notes: list[NoteOutcome], status: int) -> None:
    # docs/contract.md: 0 all done; 4 when everything that failed failed because the service
    # could not be reached; else 1.
    assert sync_exit_status(SyncReport(notes)) == status


def test_the_json_of_a_report_shows_names_that_are_not_utf8_and_relative_paths() -> None:
    base = Path("/vault")
    note = NoteOutcome(
        "/vault/sub/bad\udcff.md",
        changed=True,
        images=[ImageOutcome("gone\udcfe.png", "local", "failed", error="no \udcfe", line=3)],
        warnings=["odd \udcff"],
    )
    outside = NoteOutcome("/elsewhere/n.md", error="no such file")

    document = sync_report_json(SyncReport([note, outside], dry_run=True), base)

    assert document == {
        "notes": [
            {
                "path": "sub/bad\\xff.md",
                "changed": True,
                "error": None,
                "warnings": ["odd \\xff"],
                "images": [
                    {
                        "target": "gone\\xfe.png",
                        "kind": "local",
                        "status": "failed",
                        "url": None,
                        "error": "no \\xfe",
                        "line": 3,
                    }
                ],
            },
            {
                "path": "/elsewhere/n.md",
                "changed": False,
                "error": "no such file",
                "warnings": [],
                "images": [],
            },
        ],
        "totals": {
            "notes": 2,
            "changed": 1,
            "uploaded": 0,
            "reused": 0,
            "cached": 0,
            "skipped": 0,
            "failed": 2,
        },
        "dry_run": True,
    }


def test_a_dry_run_shows_each_image_once(capsys: pytest.CaptureFixture[str]) -> None:
    would = ImageOutcome("a.png", "local", "skipped", error="dry run: not uploaded", line=1)
    would.would_upload = True
    note = NoteOutcome(
        "/vault/n.md",
        images=[
            would,
            ImageOutcome("data:,x", "data", "skipped", error="data URI (not asked)", line=2),
            ImageOutcome("m.png", "local", "failed", error="file not found", line=3),
        ],
        edits=[("a.png", "<url of /vault/a.png>")],
    )

    report = SyncReport([note], dry_run=True)
    print_sync_report(report, base=Path("/vault"), verbose=True, err=False)

    assert capsys.readouterr().out.splitlines() == [
        "n.md:2: data:,x: data URI (not asked)",
        "n.md:3: m.png: file not found",
        "n.md: would rewrite a.png -> <url of /vault/a.png>",
        "dry run: 1 notes, 0 changed; image links: 0 uploaded, 0 reused, 0 cached, 2 skipped, "
        "1 failed",
    ]
