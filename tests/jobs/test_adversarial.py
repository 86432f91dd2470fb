"""Attacks on ``imgsync sync`` with real files, the emulator and real subprocesses.

The house rules under test: a note is either left byte-identical or correctly rewritten (never
truncated, never written over a newer edit or a user's protection); a failed image is reported and
leaves its link alone; only image files inside the root are uploaded; bad input gets a clear message
and a documented exit status, never a traceback and never damage.

Self-contained on purpose (the shared test helpers are being reorganised): only fixtures are taken
by name from the conftests (``sync``, ``vault``, ``settings``, ``emulator``, ``config_path``,
``data_dir``); the emulator's control plane is spoken to directly.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from imgsync.cli.sync import sync_exit_status
from imgsync.errors import EXIT_OK, EXIT_PARTIAL
from imgsync.notes.notefile import TEMP_SUFFIX

from ..support import png_bytes as png

CREATE = "/upload/v1/oss/file/create"
DEADLINE_S = 30.0
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


# ------------------------------------------------------------------------------------ helpers


def put(path: Path, data: bytes | str) -> bytes:
    """Write a file (folders made) with an mtime a minute ago, so no stamp is distrusted."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    then = time.time() - 60
    os.utime(path, (then, then))
    return raw


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def fingerprint(path: Path) -> tuple[bytes, int, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode)


def leftovers(*folders: Path) -> list[Path]:
    """imgsync's temporary files and folders below ``folders``."""
    return [
        p
        for folder in folders
        for p in folder.rglob("*")
        if p.name.endswith(TEMP_SUFFIX) or p.name.startswith("imgsync-")
    ]


class Bed:
    """The emulator's control plane, spoken to directly."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False

    def faults(self, rules: list[dict[str, Any]]) -> None:
        resp = self.http.post(
            f"{self.base_url}/_emulator/faults", json={"rules": rules}, timeout=30
        )
        assert resp.status_code == 200, resp.text

    def requests(self, part: str = "") -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.base_url}/_emulator/requests", timeout=30)
        assert resp.status_code == 200
        return [r for r in resp.json()["requests"] if part in r["path"]]

    def created_md5s(self) -> list[str]:
        return [r["json"]["etag"] for r in self.requests(CREATE)]

    def files(self) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.base_url}/_emulator/state", timeout=30)
        return [f for f in resp.json()["files"] if f.get("type") == 0]

    def fetch(self, url: str) -> bytes:
        resp = self.http.get(url, timeout=30)
        assert resp.status_code == 200, url
        return resp.content


@pytest.fixture
def bed(settings: Any, emulator: Any) -> Bed:
    """The control plane of the emulator ``settings`` point at (reset by the conftest)."""
    return Bed(emulator.base_url)


def wait_for(condition: Callable[[], Any], timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """A subprocess environment: no IMGSYNC_* of the caller's, a home and a TMPDIR of our own."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("IMGSYNC_", "XDG_"))}
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    return {**keep, "HOME": str(home), "TMPDIR": str(tmp), "IMGSYNC_DATA_DIR": str(data_dir)}


def imgsync(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "imgsync", "--config", str(config), *args]


# --------------------------------------------------------------------- notes the user protected


@pytest.mark.parametrize("how", ["mode", "folder", "hard link"])
def test_a_protected_note_is_reported_left_alone_and_its_images_not_uploaded(
    sync: Callable[..., Any], vault: Path, bed: Bed, how: str
) -> None:
    put(vault / "img" / "shared.png", png("shared"))
    own = put(vault / "img" / "own.png", png("own"))
    note = vault / "locked" / "n.md"
    put(note, "# kept\n\n![s](../img/shared.png) ![o](../img/own.png)\n")
    free = vault / "free.md"
    put(free, "![s](img/shared.png)\n")
    if how == "mode":
        note.chmod(0o444)
    elif how == "folder":
        note.parent.chmod(0o555)
    else:
        os.link(note, vault / "locked-too.md.bak")
    before = fingerprint(note)
    try:
        report = sync()
    finally:
        note.parent.chmod(0o755)

    outcomes = {o.path.name: o for o in report.notes}
    locked = outcomes["n.md"]
    assert fingerprint(note) == before
    assert not locked.changed and locked.error is not None
    assert {"mode": "read-only", "folder": "folder", "hard link": "hard links"}[how] in locked.error
    assert "left alone" in locked.error
    # Nothing was uploaded for it: its own image stayed home.
    assert md5(own) not in bed.created_md5s()
    # The rest of the run went on, and the failure shows in the exit status.
    assert outcomes["free.md"].changed
    assert sync_exit_status(report) == EXIT_PARTIAL
    assert not leftovers(vault)


def test_a_note_protected_or_removed_while_its_images_upload_is_left_alone(
    sync: Callable[..., Any], vault: Path
) -> None:
    put(vault / "img" / "a.png", png("a"))
    names = ["deleted", "dir", "readonly", "linked", "kept"]
    for name in names:
        put(vault / f"{name}.md", f"# {name}\n\n![a](img/a.png)\n")
    done = threading.Event()

    def meanwhile(_result: Any) -> None:
        # Runs once the upload is done, before any note is rewritten.
        if done.is_set():
            return
        done.set()
        (vault / "deleted.md").unlink()
        (vault / "dir.md").unlink()
        (vault / "dir.md").mkdir()
        (vault / "readonly.md").chmod(0o444)
        os.link(vault / "linked.md", vault / "linked-backup")

    before = {n: (vault / f"{n}.md").read_bytes() for n in ("readonly", "linked")}
    report = sync(on_image=meanwhile)

    outcomes = {o.path.stem: o for o in report.notes}
    assert "no such file" in (outcomes["deleted"].error or "")
    assert "not a regular file" in (outcomes["dir"].error or "")
    assert (vault / "dir.md").is_dir() and not any((vault / "dir.md").iterdir())
    for name in ("readonly", "linked"):
        assert (vault / f"{name}.md").read_bytes() == before[name]
        assert "left alone" in (outcomes[name].error or "")
    assert outcomes["kept"].changed
    assert sync_exit_status(report) == EXIT_PARTIAL
    assert not leftovers(vault)


def test_a_full_disk_during_the_rewrite_leaves_every_note_intact(
    sync: Callable[..., Any], vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imgsync.notes.notefile as notefile

    put(vault / "img" / "a.png", png("a"))
    notes = [vault / f"n{i}.md" for i in range(3)]
    for note in notes:
        put(note, f"{note.name}\r\n![a](img/a.png)\r\n")
    before = [fingerprint(n) for n in notes]

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # Only the note writer's fsync fails (the cache and the token store write too, elsewhere).
    fake_os = types.SimpleNamespace(
        **{k: getattr(os, k) for k in dir(os) if not k.startswith("__")}
    )
    fake_os.fsync = no_space
    monkeypatch.setattr(notefile, "os", fake_os)

    report = sync()

    assert [fingerprint(n) for n in notes] == before
    assert all("No space left" in (o.error or "") for o in report.notes)
    assert sync_exit_status(report) == EXIT_PARTIAL
    assert not leftovers(vault)


# ----------------------------------------------------------------------------- names and links


def test_a_name_the_file_system_refuses_fails_its_link_and_the_rest_is_synced(
    sync: Callable[..., Any], vault: Path
) -> None:
    put(vault / "img" / "a.png", png("a"))
    long_name = "x" * 300 + ".png"
    put(vault / "long.md", f"![l]({long_name})\n![a](img/a.png)\n")
    put(vault / "other.md", "![a](img/a.png)\n")

    report = sync()

    outcomes = {o.path.name: o for o in report.notes}
    assert all(o.changed for o in outcomes.values())
    (failed,) = [i for i in outcomes["long.md"].images if i.status == "failed"]
    assert failed.target == long_name and "too long" in (failed.error or "")
    assert f"![l]({long_name})\n" in (vault / "long.md").read_text()
    assert sync_exit_status(report) == EXIT_PARTIAL


def test_a_symlinked_note_outside_the_root_is_rewritten_only_where_unambiguous(
    sync: Callable[..., Any], vault: Path, tmp_path: Path, bed: Bed
) -> None:
    outside = tmp_path / "outside"
    put(vault / "img" / "a.png", png("vault a"))
    elsewhere = put(outside / "img" / "a.png", png("outside a"))
    put(vault / "img" / "b.png", png("b"))
    real = outside / "n.md"
    put(real, "![a](img/a.png)\n![b](img/b.png)\n")
    link = vault / "n.md"
    link.symlink_to(real)

    report = sync()

    (outcome,) = report.notes
    by_target = {i.target: i for i in outcome.images}
    # img/a.png is a different picture next to the link and next to the file: not guessed.
    assert by_target["img/a.png"].status == "failed"
    assert "symlink" in (by_target["img/a.png"].error or "")
    # img/b.png exists next to the link only: the note is rewritten through the link.
    url = by_target["img/b.png"].url
    assert url and real.read_text() == f"![a](img/a.png)\n![b]({url})\n"
    assert link.is_symlink()
    assert md5(elsewhere) not in bed.created_md5s()


def test_symlink_loops_among_folders_end_the_walk(sync: Callable[..., Any], vault: Path) -> None:
    put(vault / "img" / "a.png", png("a"))
    put(vault / "a" / "n.md", "![a](../img/a.png)\n")
    (vault / "a" / "loop").symlink_to("..")
    (vault / "self").symlink_to(".")
    (vault / "b").mkdir()
    (vault / "b" / "c").symlink_to(vault / "b")

    report = sync()

    assert [o.path.relative_to(vault).as_posix() for o in report.notes] == ["a/n.md"]
    assert report.notes[0].changed and sync_exit_status(report) == EXIT_OK
    # Given the loop itself, it is walked as the folder it is.
    again = sync(vault / "self" / "self")
    assert len(again.notes) == 1 and not again.notes[0].changed


def test_nothing_outside_the_root_leaks_through_symlinked_folders_or_dot_dot(
    sync: Callable[..., Any], vault: Path, tmp_path: Path, bed: Bed
) -> None:
    outside = tmp_path / "outside"
    secrets = [
        put(outside / "secret.png", png("secret")),
        put(tmp_path / "leak.png", png("leak")),
        put(outside / "deep" / "id_rsa.png", png("key")),
    ]
    (vault / "door").symlink_to(outside)
    (vault / "img").mkdir()
    (vault / "img" / "evil.png").symlink_to(outside / "secret.png")
    (vault / "img" / "deep").symlink_to(outside / "deep")
    note = vault / "n.md"
    text = (
        "![1](door/secret.png)\n![2](door/../leak.png)\n![3](img/evil.png)\n"
        "![4](img/deep/id_rsa.png)\n![5](img/../door/deep/../secret.png)\n![6](id_rsa.png)\n"
        f"![7]({tmp_path}/vault/door/secret.png)\n![8](file://{outside}/secret.png)\n"
    )
    put(note, text)

    report = sync()

    assert note.read_text() == text
    assert not bed.requests(CREATE)
    assert not {md5(s) for s in secrets} & set(bed.created_md5s())
    (outcome,) = report.notes
    assert all(i.status in ("skipped", "failed") for i in outcome.images)


def test_a_data_uri_of_a_non_image_is_refused_and_left_alone(
    sync: Callable[..., Any], vault: Path, bed: Bed
) -> None:
    import base64

    html = base64.b64encode(b"<html><body>hello</body></html>").decode()
    text = (
        f"![h](data:image/png;base64,{html})\n"
        "![t](data:text/plain,hello%20world)\n"
        "![b](data:image/png;base64,!!!not-base64)\n"
    )
    note = vault / "n.md"
    put(note, text)

    report = sync(allow_data=True)

    assert note.read_text() == text
    assert [i.status for i in report.notes[0].images] == ["failed"] * 3
    assert not bed.requests(CREATE)
    assert sync_exit_status(report) == EXIT_PARTIAL


def test_a_folder_whose_name_needs_escaping(sync: Callable[..., Any], vault: Path) -> None:
    folder = vault / "my notes [draft] #1 %20 (x) & <y>"
    put(folder / "my pics" / "a b.png", png("ab"))
    note = folder / "n o#te%.md"
    put(note, "![1](<my pics/a b.png>)\n![2](my%20pics/a%20b.png)\n")

    report = sync()

    (outcome,) = report.notes
    assert outcome.changed and sync_exit_status(report) == EXIT_OK
    url = outcome.images[0].url
    assert note.read_text() == f"![1](<{url}>)\n![2]({url})\n"


def test_a_root_that_does_not_hold_the_note_uploads_nothing(
    sync: Callable[..., Any], vault: Path, tmp_path: Path, bed: Bed
) -> None:
    elsewhere = tmp_path / "elsewhere"
    put(elsewhere / "img" / "a.png", png("a"))
    note = elsewhere / "n.md"
    put(note, "![a](img/a.png)\n")
    before = fingerprint(note)

    report = sync(note, root=vault)

    assert fingerprint(note) == before
    assert not bed.requests(CREATE)
    (outcome,) = report.notes
    assert outcome.images[0].status == "skipped"
    assert any("outside the root" in w for w in outcome.warnings)


# ------------------------------------------------------------------------------ the command line


def test_undecodable_names_are_shown_not_crashed_on(
    vault: Path, config_path: Path, env: dict[str, str], bed: Bed
) -> None:
    put(vault / "img" / "a.png", png("a"))
    bad = Path(os.fsdecode(bytes(vault) + b"/bad\xff.md"))
    put(bad, b"![a](img/a.png)\n![g](gone\xfe.png)\n")

    for extra in (["--json"], []):
        done = subprocess.run(
            imgsync(config_path, "sync", *extra, str(vault)),
            env=env,
            capture_output=True,
            timeout=60,
        )
        stderr = done.stderr.decode("utf-8", "replace")
        assert done.returncode == EXIT_PARTIAL, stderr
        assert "internal error" not in stderr and "Traceback" not in stderr
        if extra:
            document = json.loads(done.stdout)
            (note,) = document["notes"]
            assert note["changed"] and note["error"] is None
            assert note["path"].endswith("bad\\xff.md")
            assert note["images"][1]["target"] == "gone\\xfe.png"
            assert document["totals"]["failed"] == 1
        else:  # the report, on stdout
            stdout = done.stdout.decode("utf-8")
            assert "bad\\xff.md" in stdout and "gone\\xfe.png" in stdout
    assert bad.read_bytes().endswith(b"![g](gone\xfe.png)\n")


def test_json_reaches_a_console_that_is_not_utf8(
    vault: Path, config_path: Path, env: dict[str, str]
) -> None:
    # Windows pipes and old locales: stdout in a legacy code page that has no Chinese.
    put(vault / "图.png", png("tu"))
    put(vault / "笔记.md", "![a](图.png)\n![b](缺.png)\n")

    done = subprocess.run(
        imgsync(config_path, "sync", "--dry-run", "--json", str(vault)),
        env={**env, "PYTHONIOENCODING": "cp1252"},
        capture_output=True,
        timeout=60,
    )

    stderr = done.stderr.decode("cp1252", "replace")
    assert done.returncode == EXIT_PARTIAL, stderr
    assert "internal error" not in stderr
    (note,) = json.loads(done.stdout)["notes"]
    assert note["path"].endswith("笔记.md")
    assert [i["target"] for i in note["images"]] == ["图.png", "缺.png"]


def _start_slow_sync(
    vault: Path, config_path: Path, env: dict[str, str], bed: Bed, delay: float
) -> tuple[subprocess.Popen[bytes], dict[Path, tuple[bytes, int, int, int]]]:
    """A sync of a few notes (a data URI among them) whose uploads hang ``delay`` s at the
    service; returns once one of them is in flight."""
    for i in range(4):
        put(vault / "img" / f"{i}.png", png(str(i)))
        put(
            vault / f"n{i}.md",
            f"# {i}\n\n![a](img/{i}.png)\n![d](data:image/png;base64,iVBORw0KGgo=)\n",
        )
    before = {p: fingerprint(p) for p in vault.glob("*.md")}
    bed.faults([{"match": CREATE, "times": -1, "action": f"delay:{delay}"}])
    process = subprocess.Popen(
        imgsync(config_path, "sync", "--allow-data-uri", str(vault)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: bed.requests(CREATE) or process.poll() is not None)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    assert process.poll() is None, process.communicate()
    return process, before


def _check_intact(
    vault: Path, env: dict[str, str], before: dict[Path, tuple[bytes, int, int, int]]
) -> None:
    assert {p: fingerprint(p) for p in vault.glob("*.md")} == before
    assert not leftovers(vault, Path(env["TMPDIR"]))


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGINT, EXIT_SIGINT), (signal.SIGTERM, EXIT_SIGTERM)],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_while_uploads_run_leaves_notes_intact_and_no_temp_file(
    vault: Path, config_path: Path, env: dict[str, str], bed: Bed, sig: int, status: int
) -> None:
    process, before = _start_slow_sync(vault, config_path, env, bed, delay=2)
    process.send_signal(sig)
    _out, err = process.communicate(timeout=DEADLINE_S)

    stderr = err.decode("utf-8", "replace")
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    _check_intact(vault, env, before)


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(
    vault: Path, config_path: Path, env: dict[str, str], bed: Bed
) -> None:
    delay = 20.0
    process, before = _start_slow_sync(vault, config_path, env, bed, delay=delay)
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stderr is not None
    stderr = process.stderr

    def read() -> None:
        with stderr:  # closed at the end of the output, when the process has gone
            for line in stderr:
                lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.monotonic()

    process.send_signal(signal.SIGINT)
    # The first Ctrl-C says what it waits for; the user presses again, as people do.
    first = lines.get(timeout=DEADLINE_S).decode()
    assert "stopping" in first
    deadline = time.monotonic() + DEADLINE_S
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.2)
    process.wait(timeout=DEADLINE_S)

    assert time.monotonic() - started < delay / 2
    assert process.returncode == EXIT_SIGINT
    reader.join(DEADLINE_S)
    rest = b"".join(list(lines.queue)).decode()
    assert "Traceback" not in rest
    _check_intact(vault, env, before)


def test_two_syncs_of_one_vault_at_once(
    vault: Path, config_path: Path, env: dict[str, str], bed: Bed, sync: Callable[..., Any]
) -> None:
    images = {f"img/{i}.png": put(vault / "img" / f"{i}.png", png(f"two {i}")) for i in range(5)}
    names = list(images)
    for n in range(12):
        body = "".join(f"line {k}\n![x]({names[(n + k) % 5]})\n" for k in range(3))
        put(vault / f"n{n:02}.md", f"# note {n}\r\n{body}")
    # Slow creates, so that both runs are uploading at the same time.
    bed.faults([{"match": CREATE, "times": -1, "action": "delay:0.3"}])

    runs = [
        subprocess.Popen(
            imgsync(config_path, "sync", "--json", str(vault)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    documents = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == EXIT_OK, err.decode()
        documents.append(json.loads(out))

    # Every link was rewritten, to the right picture; nothing else changed.
    for n in range(12):
        text = (vault / f"n{n:02}.md").read_bytes().decode()
        assert text.startswith(f"# note {n}\r\nline 0\n![x](http")
        for k in range(3):
            url = text.split(f"line {k}\n![x](")[1].split(")")[0]
            assert bed.fetch(url) == images[names[(n + k) % 5]]
    # Each note was rewritten by one run, or by both when their last checks fell together (the
    # window notefile documents): then both wrote the same bytes, and no edit of anyone's was lost.
    assert sum(d["totals"]["changed"] for d in documents) >= 12
    # One file per picture on the bed; the cache is sound: a third run has nothing to do.
    assert sorted(f["etag"] for f in bed.files()) == sorted(md5(b) for b in images.values())
    assert not leftovers(vault)
    bed.faults([])
    third = sync()
    assert sync_exit_status(third) == EXIT_OK and not any(o.changed for o in third.notes)


# ------------------------------------------------------------------------------- the paths given


def test_an_empty_path_is_a_usage_error_not_the_current_folder(
    tmp_path: Path, config_path: Path, env: dict[str, str], bed: Bed
) -> None:
    # `imgsync sync "$NOTES"` with NOTES unset must not sync whatever folder the shell is in.
    here = tmp_path / "here"
    put(here / "a.png", png("here"))
    note = here / "n.md"
    put(note, "![a](a.png)\n")
    before = fingerprint(note)

    done = subprocess.run(
        imgsync(config_path, "sync", ""), env=env, cwd=here, capture_output=True, timeout=60
    )

    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert "empty" in stderr and "Traceback" not in stderr
    assert fingerprint(note) == before
    assert not bed.requests(CREATE)


def test_a_path_the_system_refuses_is_reported_and_the_rest_synced(
    sync: Callable[..., Any], vault: Path
) -> None:
    put(vault / "img" / "a.png", png("a"))
    put(vault / "n.md", "![a](img/a.png)\n")
    too_long = vault / ("x" * 5000)

    report = sync(too_long, vault / "n.md")

    refused, synced = report.notes
    assert "too long" in (refused.error or "").lower()
    assert synced.changed
    assert sync_exit_status(report) == EXIT_PARTIAL


def test_a_folder_that_cannot_be_listed_is_reported(
    sync: Callable[..., Any], vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(vault / "img" / "a.png", png("a"))
    put(vault / "n.md", "![a](img/a.png)\n")
    locked = vault / "locked"
    put(locked / "hidden.md", "![a](../img/a.png)\n")
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if not isinstance(path, int) and os.fspath(path) == str(locked):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # as for another user's folder (we run as root)
    report = sync()

    problems = {o.path: o.error for o in report.notes if o.error}
    assert problems == {locked: f"cannot list this folder: {os.strerror(errno.EACCES)}"}
    assert [o.changed for o in report.notes if not o.error] == [True]
    assert sync_exit_status(report) == EXIT_PARTIAL


# ------------------------------------------------------------------ addresses on the user's side


def test_an_image_only_this_machine_can_reach_is_not_published(
    sync: Callable[..., Any], vault: Path, tmp_path: Path, bed: Bed
) -> None:
    import functools
    import http.server

    from ..loopback import LoopbackServer

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

    private = tmp_path / "lan"
    camera = put(private / "snapshot.png", png("what the camera sees"))
    handler = functools.partial(Quiet, directory=str(private))
    server = LoopbackServer(handler).start()
    # The real service cannot reach the user's own network: its migration fails.
    bed.faults([{"match": "/offline/download", "times": -1, "action": "code:1"}])
    note = vault / "shared.md"
    text = f"![cam]({server.url}/snapshot.png)\n"
    put(note, text)
    try:
        report = sync()
    finally:
        server.stop()

    assert md5(camera) not in bed.created_md5s()
    assert note.read_text() == text
    (image,) = report.notes[0].images
    assert image.status == "failed"
    assert "loopback" in image.error and "upload.allow_private_urls = true" in image.error


def test_an_image_whose_name_is_not_utf8_is_uploaded(sync: Callable[..., Any], vault: Path) -> None:
    put(Path(os.fsdecode(bytes(vault) + b"/caf\xe9.png")), png("latin-1 name"))
    note = vault / "n.md"
    put(note, b"![c](caf%E9.png)\n")

    report = sync()

    (image,) = report.notes[0].images
    assert image.status == "uploaded", image.error
    assert note.read_bytes() == f"![c]({image.url})\n".encode()
