"""``imgsync sync`` and remote images, as users run it: the policy (``[sync] remote``,
``--remote``), dead links remembered, ``--retry-failed``. The command line (run in this process:
:func:`tests.support.imgsync_in_process`) against the emulator, a web server on loopback, and the
emulator's request log for what was sent."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsync.engine.remote_policy import KEPT

from ..jobs.helpers import write_config
from ..support import Control, imgsync_in_process, serving_folder, write_note, write_png

OFFLINE_POST = "/api/v1/oss/offline/download"


@pytest.fixture
def config_writer() -> Callable[..., Path]:
    return write_config


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A web server on loopback serving a folder: (its base URL, the folder, the paths asked)."""
    folder = tmp_path / "web"
    folder.mkdir()
    with serving_folder(folder) as (base, hits):
        yield base, folder, hits


def sync_json(
    config: Path, env: dict[str, str], cwd: Path, *flags: str
) -> tuple[dict[str, Any], int]:
    proc = imgsync_in_process(["--config", str(config), "sync", "--json", *flags], env, cwd=cwd)
    return json.loads(proc.stdout), proc.returncode


def images_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["target"]: i for note in document["notes"] for i in note["images"]}


@pytest.mark.parametrize("how", ["config", "flag"])
def test_keep_makes_no_request_for_remote_images_and_leaves_their_links(
    how: str,
    control: Control,
    make_config: Any,
    env: dict[str, str],
    tmp_path: Path,
    web: tuple[str, Path, list[str]],
) -> None:
    base, folder, hits = web
    write_png(folder / "cat.png", "remote cat")
    vault = tmp_path / "vault"
    write_png(vault / "local.png", "a local one")
    remote_link = f"{base}/cat.png"
    note = vault / "a.md"
    write_note(note, f"![cat]({remote_link})\n![here](local.png)\n")
    config = make_config(sync={"remote": "keep"} if how == "config" else None)
    flags = ["--remote=keep"] if how == "flag" else []

    document, status = sync_json(config, env, tmp_path, *flags, "vault")

    images = images_of(document)
    assert (images[remote_link]["status"], images[remote_link]["error"]) == ("skipped", KEPT)
    assert images["local.png"]["status"] == "uploaded"
    assert status == 0
    text = note.read_text()
    assert text.startswith(f"![cat]({remote_link})\n![here](http")  # only the local link moved
    assert control.requests(OFFLINE_POST) == [] and hits == []


@pytest.mark.slow(3)
def test_a_dead_link_gets_one_task_then_none_until_retry_failed(
    control: Control, make_config: Any, env: dict[str, str], tmp_path: Path
) -> None:
    control.config(offline_retries=0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/gone.png"
    vault = tmp_path / "vault"
    note = vault / "a.md"
    original = write_note(note, f"# Links\n\n![gone]({dead})\n")
    config = make_config()

    first, status = sync_json(config, env, tmp_path, "vault")
    assert status == 1
    assert images_of(first)[dead]["error"] == "download failed: 127.0.0.1 refused the connection"
    assert len(control.requests(OFFLINE_POST, method="POST")) == 1
    log = control.requests()

    # The note's only unfinished link is in its back-off: the note is stamped until then, and
    # the next run does not read it, but reports it as waiting for that retry (exit 1).
    second, status = sync_json(config, env, tmp_path, "vault")
    assert status == 1 and images_of(second) == {}
    assert second["totals"]["notes"] == 1 and second["totals"]["changed"] == 0
    (waiting,) = second["notes"]
    assert isinstance(waiting["retry_after"], str) and waiting["path"] == "vault/a.md"
    assert control.requests() == log  # not one request: no second task, no token, nothing
    text = imgsync_in_process(["--config", str(config), "sync", "vault"], env, cwd=tmp_path)
    assert text.returncode == 1, text.stderr
    assert (
        f"vault/a.md: not read (unchanged): remote images in it failed earlier; retry after "
        f"{waiting['retry_after']}, or now with --retry-failed"
    ) in text.stdout
    assert "1 note waiting to retry remote images that failed" in text.stdout
    assert control.requests() == log

    # Read again for another reason (an edit), the note says why its link is left, still with
    # no request; --remote=keep, which answers the link otherwise, reads the note too.
    write_note(note, original.decode() + "\nEdited.\n")
    edited, status = sync_json(config, env, tmp_path, "vault")
    image = images_of(edited)[dead]
    assert status == 1 and image["status"] == "failed"
    assert image["error"].startswith(
        "failed earlier (download failed: 127.0.0.1 refused the connection); retry after "
    )
    assert image["error"].endswith(", or now with --retry-failed")
    assert control.requests() == log
    kept, status = sync_json(config, env, tmp_path, "--remote=keep", "vault")
    assert status == 0 and images_of(kept)[dead]["error"] == KEPT
    assert control.requests() == log
    original = note.read_bytes()

    third, _status = sync_json(config, env, tmp_path, "--retry-failed", "vault")
    assert images_of(third)[dead]["error"] == "download failed: 127.0.0.1 refused the connection"
    assert len(control.requests(OFFLINE_POST, method="POST")) == 2
    assert note.read_bytes() == original


@pytest.fixture
def make_config(control: Control, tmp_path: Path) -> Callable[..., Path]:
    """A config for the emulator, loopback downloads allowed, plus an optional [sync] table."""

    def make(sync: dict[str, str] | None = None) -> Path:
        path = write_config(
            tmp_path / "config.toml", control.base_url, upload={"allow_private_urls": True}
        )
        if sync:
            lines = [f'{key} = "{value}"' for key, value in sync.items()]
            path.write_text(path.read_text() + "\n[sync]\n" + "\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    return make
