"""``imgsync sync`` and ``imgsync demo`` as users run them: exit statuses, stdout, stderr.

What is about the process itself (the demo as the README runs it, the JSON and the report as a
pipe or a file receives them, the lines streamed while the run goes on, a terminal's progress, the
modules a no-op re-sync imports) runs ``python -m imgsync`` in a subprocess; the rest runs the
same console-script group in this process (:func:`tests.support.imgsync_in_process`).
"""

from __future__ import annotations

import json
import os
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
from ..support import Control, imgsync_in_process, write_note, write_png

TIMEOUT_S = 120
NOTE_KEYS = {"path", "changed", "images"}
IMAGE_KEYS = {"target", "kind", "status", "url", "error"}
TOTAL_KEYS = {"notes", "changed", "uploaded", "reused", "cached", "skipped", "failed"}
# What imgsync adds to the contract's shape ("extend them freely"): a note's own error and
# warnings, when a note left unread retries its failed remote images, an image's line, and
# whether the run was a dry run.
NOTE_EXTRA = {"error", "warnings", "retry_after"}
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


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """:func:`run` in this process."""
    return imgsync_in_process(args, env, cwd=cwd)


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
    assert "missing.png" in done.stderr  # with --json, the human report goes to stderr
    assert done.stderr.splitlines()[-1] == (
        "2 notes, 2 changed, 0 notes failed; "
        "image links: 2 uploaded, 0 reused, 0 cached, 0 skipped, 1 failed"
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

    done = cli(["--config", str(config), "sync", "vault"], env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "client_id" in done.stderr

    dry = cli(["--config", str(config), "sync", "--dry-run", "vault"], env, tmp_path)
    assert dry.returncode == 0, dry.stderr
    # One line per image: a real run would upload it (there is no index to know it from).
    assert dry.stdout.splitlines() == [
        "vault/a.md:1: a.png: dry run: would upload (not in the local index)",
        "dry run: 1 note, 1 would change, 0 notes failed; image links: 0 uploaded, 0 reused, "
        "0 cached, 1 skipped, 0 failed; 1 image to upload",
    ]
    assert dry.stderr == ""
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

    done = cli(["--config", str(config), "sync", "--json", "vault"], env, tmp_path)

    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("imgsync: ")
    assert wrong not in done.stderr
    assert note.read_bytes() == original


@pytest.mark.slow(8)
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
    assert done.stdout.splitlines()[-1] == (
        "2 notes, 0 changed, 0 notes failed; "
        "image links: 0 uploaded, 0 reused, 0 cached, 0 skipped, 0 failed"
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
                "retry_after": None,
            },
            {
                "path": "/elsewhere/n.md",
                "changed": False,
                "error": "no such file",
                "warnings": [],
                "images": [],
                "retry_after": None,
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
    would = ImageOutcome("a.png", "local", "skipped", error="dry run: would upload", line=1)
    would.would_upload = True
    cached = ImageOutcome("c.png", "local", "cached", url="https://bed/c.png", line=4)
    note = NoteOutcome(
        "/vault/n.md",
        changed=True,
        images=[
            would,
            ImageOutcome("data:,x", "data", "skipped", error="data URI (not asked)", line=2),
            ImageOutcome("m.png", "local", "failed", error="file not found", line=3),
            cached,
        ],
        edits=[("c.png", "https://bed/c.png")],
    )

    report = SyncReport([note], dry_run=True)
    report.images_to_upload = 1
    print_sync_report(report, base=Path("/vault"), verbose=True, err=False)

    assert capsys.readouterr().out.splitlines() == [
        "n.md:1: a.png: dry run: would upload",
        "n.md:2: data:,x: data URI (not asked)",
        "n.md:3: m.png: file not found",
        "n.md: would rewrite c.png -> https://bed/c.png",
        "dry run: 1 note, 1 would change, 0 notes failed; image links: 0 uploaded, 0 reused, "
        "1 cached, 2 skipped, 1 failed; 1 image to upload",
    ]


# -- where the report goes, and what it says ---------------------------------------------------


def test_the_report_goes_to_stdout_and_warnings_to_stderr(
    control: Control, config_path: Path, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    write_png(vault / "img" / "a.png")
    outside = write_png(tmp_path / "elsewhere.png")
    write_note(vault / "a.md", f"![a](img/a.png)\n![o]({tmp_path / 'elsewhere.png'})\n")
    write_note(vault / "b.md", "![m](missing.png)\n")

    with open(tmp_path / "report.txt", "w") as report:  # imgsync sync vault > report.txt
        done = subprocess.run(
            [sys.executable, "-m", "imgsync", "--config", str(config_path), "sync", "vault"],
            env=env,
            cwd=tmp_path,
            stdout=report,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT_S,
        )

    assert done.returncode == 1
    # Each note's lines as it is done (b.md waits for no upload), then the summary.
    lines = (tmp_path / "report.txt").read_text().splitlines()
    assert sorted(lines[:-1]) == [
        "vault/a.md: links rewritten",
        "vault/b.md:1: missing.png: file not found: 'missing.png'",
    ]
    assert lines[-1] == (
        "2 notes, 1 changed, 0 notes failed; "
        "image links: 1 uploaded, 0 reused, 0 cached, 1 skipped, 1 failed"
    )
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("vault/a.md: warning: line 2: ") and "outside the root" in warning
    assert outside  # left where it is


def test_the_summary_counts_and_names_the_notes_that_failed(
    control: Control, config_path: Path, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    write_png(vault / "a.png")
    write_note(vault / "a.md", "![a](a.png)\n")
    with open(vault / "huge.md", "wb") as handle:  # sparse: cheap to make
        handle.write(b"![a](a.png)\n")
        handle.truncate(21 * 1024 * 1024)

    done = cli(["--config", str(config_path), "sync", "vault", "nonexistent"], env, tmp_path)

    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(lines[:-1]) == [
        "nonexistent: no such file or folder",
        "vault/a.md: links rewritten",
        "vault/huge.md: too big (21.0 MB): imgsync reads notes of up to 20 MB; left alone",
    ]
    assert lines[-1] == (
        "3 notes, 1 changed, 2 notes failed; "
        "image links: 1 uploaded, 0 reused, 0 cached, 0 skipped, 0 failed"
    )
    alone = cli(["--config", str(config_path), "sync", "/nonexistent"], env, tmp_path)
    assert alone.returncode == 1
    assert alone.stdout.splitlines() == [
        "/nonexistent: no such file or folder",
        "1 note, 0 changed, 1 note failed; "
        "image links: 0 uploaded, 0 reused, 0 cached, 0 skipped, 0 failed",
    ]


@pytest.mark.slow(3)
def test_each_note_is_reported_as_it_is_written_not_at_the_end(
    control: Control, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    images = 12
    for n in range(images):
        write_png(vault / f"{n:02}.png")
        write_note(vault / f"n{n:02}.md", f"![i]({n:02}.png)\n")
    config = write_config(tmp_path / "slow.toml", control.base_url, qps={"create": 4})
    process = subprocess.Popen(
        [sys.executable, "-m", "imgsync", "--config", str(config), "sync", "vault"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        creates_then = len(control.requests("/file/create"))
        rest, _err = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert first.startswith("vault/n") and first.endswith(".md: links rewritten\n")
    # The order of events: the first line came while most uploads had not started.
    assert creates_then <= images // 2
    assert rest.count("links rewritten") == images - 1
    assert process.returncode == 0


# -- the dry run --------------------------------------------------------------------------------


def test_a_dry_run_tells_the_truth_and_its_diff_patches_to_the_real_run(
    control: Control, config_path: Path, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    import shutil

    (vault / ".obsidian").mkdir()  # the notes root, wherever the sync starts
    write_png(vault / "img" / "a.png")
    write_png(vault / "img" / "b.png")
    write_note(vault / "seen.md", "![a](img/a.png) ![b](img/b.png)\n")
    assert cli(["--config", str(config_path), "sync", "vault"], env, tmp_path).returncode == 0
    # New notes whose images are all in the index now; one with nothing to change.
    notes = tmp_path / "vault" / "new"
    write_note(notes / "one.md", "\ufeff# One\r\n\r\n![a](../img/a.png)\r\nend")
    write_note(notes / "two words.md", "![[b.png#icon|300]] and ![a](../img/a.png)\n")
    write_note(notes / "three.md", "| t |\n|---|\n| ![[a.png\\|50]] |\n\n![b](../img/b.png)\n")
    write_note(notes / "plain.md", "No image.\n")
    requests_before = len(control.requests())
    data_before = sorted(p.name for p in (tmp_path / "data").iterdir())
    copy = tmp_path / "copy"
    shutil.copytree(notes, copy / "vault" / "new")

    dry = cli(["--config", str(config_path), "sync", "--dry-run", "vault/new"], env, tmp_path)

    assert dry.returncode == 0, dry.stderr
    urls = {
        i["target"]: i["url"]
        for n in json.loads(
            cli(
                ["--config", str(config_path), "sync", "--dry-run", "--json", "vault/new"],
                env,
                tmp_path,
            ).stdout
        )["notes"]
        for i in n["images"]
    }
    a_url, b_url = urls["../img/a.png"], urls["../img/b.png"]
    assert a_url.startswith(control.base_url) and b_url.startswith(control.base_url)
    lines = dry.stdout.splitlines()
    assert lines[-1] == (
        "dry run: 4 notes, 3 would change, 0 notes failed; "
        "image links: 0 uploaded, 0 reused, 5 cached, 0 skipped, 0 failed; 0 images to upload"
    )
    # Each image link once, with the link it would get.
    assert sorted(lines[:-1]) == sorted(
        [
            f"vault/new/one.md: would rewrite ../img/a.png -> {a_url}",
            f"vault/new/three.md: would rewrite ![[a.png\\|50]] -> {a_url}",
            f"vault/new/three.md: would rewrite ../img/b.png -> {b_url}",
            f"vault/new/two words.md: would rewrite ![[b.png#icon|300]] -> {b_url}#icon",
            f"vault/new/two words.md: would rewrite ../img/a.png -> {a_url}",
        ]
    )

    diff = subprocess.run(
        [
            sys.executable,
            "-m",
            "imgsync",
            "--config",
            str(config_path),
            "sync",
            "--dry-run",
            "--diff",
            "vault/new",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert diff.returncode == 0
    assert diff.stdout.count(b"\n+++ b/vault/new/") == 3 and diff.stdout.startswith(b"--- a/")
    assert diff.stderr.decode().splitlines()[-1] == lines[-1]  # the report, on stderr
    # Nothing was asked of the service, and nothing written.
    assert len(control.requests()) == requests_before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == data_before

    patched = subprocess.run(
        ["patch", "-p1", "--batch"],
        input=diff.stdout,
        cwd=copy,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert patched.returncode == 0, patched.stdout + patched.stderr
    real = cli(["--config", str(config_path), "sync", "vault/new"], env, tmp_path)
    assert real.returncode == 0 and real.stdout.count("links rewritten") == 3
    assert len(control.requests()) == requests_before  # all cached: still no request
    for note in notes.iterdir():
        assert (copy / "vault" / "new" / note.name).read_bytes() == note.read_bytes(), note.name


def test_diff_goes_with_dry_run_and_not_with_json(
    config_path: Path, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    for args in (["--diff"], ["--dry-run", "--diff", "--json"]):
        done = cli(["--config", str(config_path), "sync", *args, "vault"], env, tmp_path)
        assert done.returncode == 2 and "--diff" in done.stderr and done.stdout == ""


# -- hints and progress ---------------------------------------------------------------------------


def test_an_image_found_elsewhere_in_the_folder_synced_suggests_root(
    control: Control, config_path: Path, env: dict[str, str], tmp_path: Path
) -> None:
    # A vault copied without its .obsidian folder, synced one subfolder at a time.
    help_vault = tmp_path / "help"
    write_png(help_vault / "Attachments" / "status-bar-desktop.png")
    write_note(help_vault / "User interface" / "Status bar.md", "![[status-bar-desktop.png]]\n")

    done = cli(
        ["--config", str(config_path), "sync", "--root", "help/User interface", "help"],
        env,
        tmp_path,
    )

    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == (
        "help/User interface/Status bar.md:1: status-bar-desktop.png: file not found: "
        "'status-bar-desktop.png'; there is one at help/Attachments/status-bar-desktop.png: "
        "run with --root help to find it"
    )
    again = cli(["--config", str(config_path), "sync", "--root", "help", "help"], env, tmp_path)
    assert again.returncode == 0 and "links rewritten" in again.stdout


def test_progress_on_a_terminal_shows_notes_images_failures_and_time_left(
    control: Control, env: dict[str, str], tmp_path: Path, vault: Path
) -> None:
    import pty

    for n in range(6):
        write_png(vault / f"{n}.png")
        write_note(vault / f"n{n}.md", f"![i]({n}.png)\n")
    write_note(vault / "bad.md", "![m](missing.png)\n")
    config = write_config(tmp_path / "slow.toml", control.base_url, qps={"create": 4})
    leader, follower = pty.openpty()  # stderr is a terminal; stdout is not
    try:
        done = subprocess.run(
            [sys.executable, "-m", "imgsync", "--config", str(config), "sync", "vault"],
            env={**env, "COLUMNS": "120"},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=TIMEOUT_S,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other side is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)

    assert done.returncode == 1
    frames = [f for f in shown.decode().split("\r\x1b[K") if f]
    assert frames[-1] == "notes 7/7 (1 failed) · images 6/6"
    assert any(" s left" in frame for frame in frames), frames
    assert any(frame.startswith("notes ") and "+" in frame.split()[1] for frame in frames)
    assert b"Status" not in done.stdout and done.stdout.decode().endswith(
        "image links: 6 uploaded, 0 reused, 0 cached, 0 skipped, 1 failed\n"
    )


def test_the_progress_line_estimates_the_time_left_from_the_pace_of_uploads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from imgsync.cli.progress import Progress
    from imgsync.jobs.sync import SyncCounts

    now = [100.0]
    progress = Progress(enabled=True, clock=lambda: now[0])
    counts = SyncCounts(notes_found=10, notes_done=2, images=30, uploads=30)
    progress.update(counts)  # the first upload is seen now
    assert progress.text(counts, now[0]) == "notes 2/10+ · images 0/30"
    counts.walk_done, counts.uploads_done, counts.images_done = True, 10, 10
    counts.notes_failed, counts.images_failed = 1, 2
    now[0] += 20.0  # 10 uploads in 20 s: 20 left take about 40 s
    assert progress.text(counts, now[0]) == (
        "notes 2/10 (1 failed) · images 10/30 (2 failed) · about 40 s left"
    )
    counts.uploads = 100
    assert progress.text(counts, now[0]).endswith("about 3 min left")

    # A report line clears the progress line and draws it again after.
    capsys.readouterr()
    progress.update(counts)
    progress.echo("n.md: links rewritten", err=False)
    captured = capsys.readouterr()
    assert captured.out == "n.md: links rewritten\n"
    assert captured.err.count("\r\x1b[K") == 3 and captured.err.endswith("min left")
    progress.finish()
    assert capsys.readouterr().err == "\r\x1b[K" and not progress.shown
