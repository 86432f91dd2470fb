"""``imgsync watch`` as the job runs it: real filesystem events on a temp vault (native observer
and polling, each test both ways), the emulator's request log to count uploads, and waits on
conditions with deadlines.

The command itself (signals, the folder lock between processes, JSON lines, the system's watch
limit) is tested in tests/cli/test_watch_cli.py; 1,000 notes in tests/jobs/test_watch_load.py.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.engine.remote_policy import FIRST_RETRY_S
from imgsync.engine.results import CACHED, FAILED, UPLOADED
from imgsync.jobs.watch import Watcher
from imgsync.jobs.watch_lock import AlreadyWatched
from imgsync.notes.notefile import TEMP_SUFFIX

from ..support import Control, md5, png_bytes, serving_folder, wait_for, write_png
from .watch_helpers import (
    DEADLINE_S,
    Watching,
    atomic_save,
    start_watching,
    vim_save,
    write_slowly,
)

CREATE = "/upload/v1/oss/file/create"


def creates(control: Control) -> list[str]:
    """The md5 of every create request: one per image that went up (or was reused)."""
    return control.created_md5s()


def rewritten(note: Path, *targets: str) -> bool:
    """Whether the note no longer names any of ``targets`` and links the image bed instead."""
    text = note.read_text(encoding="utf-8")
    return all(f"({t})" not in text for t in targets) and "/dl/" in text


def wait_rewritten(note: Path, *targets: str) -> str:
    """Wait until the note on disk is rewritten. The pass that wrote it is told (``NoteSynced``)
    only after its write, when the pass ends: a test that then looks at the watcher's events
    waits for them with ``w.barrier()`` first."""
    wait_for(lambda: rewritten(note, *targets), DEADLINE_S)
    return note.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------ start-up


def test_start_up_syncs_what_changed_while_nobody_watched(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    image = write_png(vault / "img" / "a.png")
    note = vault / "old.md"
    note.write_bytes(b"# before the watcher\n\n![a](img/a.png)\n")

    w = watching()

    assert rewritten(note, "img/a.png")
    (startup,) = w.synced(note)
    assert startup.trigger == "startup" and startup.outcome.changed
    assert creates(control) == [md5(image)]


# ---------------------------------------------------------------------- editor saves of every kind


@pytest.mark.parametrize(
    "save",
    [
        pytest.param(atomic_save, id="atomic"),
        pytest.param(vim_save, id="vim"),
        pytest.param(lambda note, data: note.write_bytes(data), id="in-place"),
    ],
)
def test_each_kind_of_save_is_processed_exactly_once(
    watching: Callable[..., Watching],
    vault: Path,
    control: Control,
    save: Callable[[Path, bytes], None],
) -> None:
    image = write_png(vault / "img" / "a.png")
    note = vault / "n.md"
    note.write_bytes(b"# draft\n")
    w = watching()
    before = len(w.synced(note))

    save(note, b"# draft\n\n![a](img/a.png)\n")

    wait_rewritten(note, "img/a.png")
    w.barrier()
    passes = w.synced(note)[before:]
    assert len(passes) == 1 and passes[0].outcome.changed
    assert creates(control) == [md5(image)]
    assert not [p for p in vault.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def test_a_burst_of_20_in_place_writes_is_processed_once(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    image = write_png(vault / "img" / "a.png")
    note = vault / "n.md"
    w = watching()

    text = b"# typing\n\n![a](img/a.png)\n"
    for i in range(20):  # an editor's autosave, or a script appending line by line
        text += b"line %d\n" % i
        note.write_bytes(text)
        time.sleep(0.01)

    body = wait_rewritten(note, "img/a.png")
    w.barrier()
    assert len(w.synced(note)) == 1
    assert body.endswith("line 19\n")
    assert creates(control) == [md5(image)]


# -------------------------------------------------------------------------------------- no loops


def test_its_own_rewrite_triggers_no_second_pass(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    w = watching()
    images = [write_png(vault / "img" / f"{n}.png") for n in ("a", "b", "c")]
    note = vault / "n.md"

    note.write_bytes(b"![a](img/a.png) ![b](img/b.png)\n\n![c](img/c.png)\n")

    wait_rewritten(note, "img/a.png", "img/b.png", "img/c.png")
    w.barrier()
    w.barrier()  # and once more: nothing came of the barrier's own pass either
    (only,) = w.synced(note)
    assert only.outcome.changed
    assert sorted(creates(control)) == sorted(md5(i) for i in images)  # one upload per image
    assert len(control.puts()) == 3


def test_re_saving_the_old_text_rewrites_it_again_from_the_cache_with_no_upload(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    write_png(vault / "img" / "a.png")
    note = vault / "n.md"
    old = b"# note\n\n![a](img/a.png)\n"
    note.write_bytes(old)
    w = watching()
    first = note.read_bytes()
    assert first != old
    requests_before = len(control.requests())

    atomic_save(note, old)  # the editor still had the old text open, and saves it

    wait_for(lambda: note.read_bytes() == first, DEADLINE_S)
    again = w.wait_synced(note, 2)[-1]
    assert again.outcome.changed and [i.status for i in again.outcome.images] == [CACHED]
    assert control.requests()[requests_before:] == []  # not a single request


# --------------------------------------------------------------------------- the user's edits win


def test_an_edit_made_while_an_upload_is_in_flight_survives_and_its_images_are_rewritten(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    watching()
    write_png(vault / "img" / "a.png")
    write_png(vault / "img" / "b.png")
    note = vault / "n.md"
    control.faults([{"match": "", "method": "PUT", "nth": 1, "times": 1, "action": "delay:1.5"}])

    note.write_bytes(b"# note\n\n![a](img/a.png)\n")
    wait_for(lambda: control.puts(), DEADLINE_S)  # a.png's bytes are on their way
    atomic_save(note, b"# note\n\n![a](img/a.png)\n\nTyped meanwhile. ![b](img/b.png)\n")

    body = wait_rewritten(note, "img/a.png", "img/b.png")
    assert "Typed meanwhile." in body
    assert body.count("/dl/") == 2


# ------------------------------------------------------------------------- images pasted by editors


def test_a_note_saved_before_its_image_exists_is_synced_once_with_no_failure(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    w = watching()
    note = vault / "pasted.md"

    note.write_bytes(b"![shot](img/Pasted image.png)\n".replace(b" image", b"%20image"))
    time.sleep(0.5)  # the editor writes the pasted image half a second after the note
    image = write_png(vault / "img" / "Pasted image.png", old=False)

    wait_rewritten(note, "img/Pasted%20image.png")
    w.barrier()
    (only,) = w.synced(note)
    assert [i.status for i in only.outcome.images] == [UPLOADED]
    assert not w.failures(note)
    assert creates(control) == [md5(image)]


def test_an_image_still_being_written_is_not_uploaded_half_done(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    w = watching()
    image_path = vault / "img" / "big.png"
    image_path.parent.mkdir(parents=True, exist_ok=True)
    data = png_bytes("big") + b"\x00" * 200_000
    note = vault / "n.md"
    note.write_bytes(b"![big](img/big.png)\n")

    # Written in pieces over about three debounce times: a look in between sees it changing.
    write_slowly(image_path, data, chunks=6, pause=lambda: time.sleep(0.1))

    wait_rewritten(note, "img/big.png")
    w.barrier()
    assert not w.failures(note)
    assert creates(control) == [md5(data)]
    url = note.read_text().split("(", 1)[1].rstrip(")\n")
    assert control.fetch(url) == data


def test_an_image_that_appears_after_the_grace_period_is_synced_then(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    w = watching(image_grace=0.3)
    note = vault / "n.md"

    note.write_bytes(b"![late](img/late.png)\n")
    (missing,) = w.wait_synced(note)
    assert [i.status for i in missing.outcome.images] == [FAILED]
    assert missing.retry_in is None  # nothing to retry: the user's to fix, or a file to come
    image = write_png(vault / "img" / "late.png", old=False)

    wait_rewritten(note, "img/late.png")
    w.barrier()  # the pass that rewrote the note is told once it ends, after its write
    assert w.synced(note)[-1].trigger == "image"
    assert creates(control) == [md5(image)]


def test_a_note_deleted_or_moved_away_while_queued_is_dropped_quietly(
    watching: Callable[..., Watching], vault: Path, tmp_path: Path, control: Control
) -> None:
    w = watching(debounce=0.5)
    write_png(vault / "img" / "a.png")
    deleted, moved = vault / "deleted.md", vault / "moved.md"
    for note in (deleted, moved):
        note.write_bytes(b"![a](img/a.png)\n")

    deleted.unlink()
    os.rename(moved, tmp_path / "elsewhere.md")

    w.barrier()
    assert w.synced(deleted) == [] and w.synced(moved) == []
    assert creates(control) == []
    assert (tmp_path / "elsewhere.md").read_bytes() == b"![a](img/a.png)\n"


def test_a_note_moved_into_the_folder_is_synced(
    watching: Callable[..., Watching], vault: Path, tmp_path: Path
) -> None:
    w = watching()
    write_png(vault / "img" / "a.png")
    outside = tmp_path / "drafts" / "n.md"
    outside.parent.mkdir()
    outside.write_bytes(b"![a](../vault/img/a.png)\n")

    os.rename(outside, vault / "n.md")

    wait_rewritten(vault / "n.md", "../vault/img/a.png")
    w.barrier()  # the pass that rewrote the note is told once it ends, after its write
    assert len(w.synced(vault / "n.md")) == 1


def test_temp_swap_and_backup_files_and_editor_folders_are_ignored(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    w = watching()
    write_png(vault / "img" / "a.png")
    ignored = [
        vault / ".obsidian" / "workspace.md",
        vault / ".git" / "COMMIT.md",
        vault / ".trash" / "deleted.md",
        vault / "sub" / ".trash" / "old.md",
        vault / "n.md~",
        vault / ".n.md.swp",
        vault / "4913",
        vault / ".goutputstream-XYZ12",
        vault / "n.md___jb_tmp___",
        vault / "#n.md#",
        vault / "~$n.md",
    ]
    for path in ignored:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"![a](img/a.png)\n")

    w.barrier()
    for path in ignored:
        assert w.synced(path) == [], path
        assert path.read_bytes() == b"![a](img/a.png)\n"
    assert creates(control) == []


# ---------------------------------------------------------------------------------------- robust


def test_a_failed_image_is_retried_with_backoff_not_in_a_hot_loop(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    w = watching(retry_initial=0.5, retry_max=10.0)
    write_png(vault / "img" / "a.png")
    note = vault / "n.md"
    control.faults([{"match": "", "method": "PUT", "nth": 1, "times": 1000, "action": "http:500"}])

    note.write_bytes(b"![a](img/a.png)\n")
    w.wait_synced(note, 2)  # the first pass and one retry fail
    control.faults([])  # the service recovers

    wait_rewritten(note, "img/a.png")
    w.barrier()
    passes = w.synced(note)
    assert [p.trigger for p in passes] == ["change", "retry", "retry"]
    assert [p.retry_in for p in passes] == [0.5, 1.0, None]  # twice as long each time
    failed = [p for p in passes if p.outcome.images[0].status == FAILED]
    assert len(failed) == 2 and "500" in (failed[0].outcome.images[0].error or "")


def test_a_dead_remote_link_waits_for_its_own_back_off_not_the_watchers_retries(
    make_settings: Callable[..., Any], vault: Path, tmp_path: Path, control: Control, observer: str
) -> None:
    # Loopback links are the user's to publish here, so imgsync fetches them itself: the web
    # server's log counts every try of the dead link.
    settings = make_settings(upload={"allow_private_urls": True})
    image = write_png(vault / "img" / "a.png")
    (tmp_path / "web").mkdir()
    control.faults([{"match": "", "method": "PUT", "nth": 1, "times": 1000, "action": "http:500"}])
    with serving_folder(tmp_path / "web") as (base, hits):
        dead = f"{base}/gone.png"
        w = start_watching(settings, vault, observer, retry_initial=0.5, retry_max=10.0)
        try:
            note = vault / "n.md"
            note.write_bytes(f"![a](img/a.png) ![gone]({dead})\n".encode())
            (first,) = w.wait_synced(note)  # both fail: the upload refused, the link dead (404)
            control.faults([])  # the service recovers; the link stays dead
            tried = list(hits)

            wait_rewritten(note, "img/a.png")
            w.barrier()
        finally:
            w.watcher.stop()
            assert w.watcher.join(DEADLINE_S) and w.watcher.failure is None

    first, *retries = w.synced(note)
    assert [i.status for i in first.outcome.images] == [FAILED, FAILED]
    assert first.retry_in == 0.5  # the refused upload is retried on the watcher's backoff
    assert retries and {p.trigger for p in retries} == {"retry"}
    last = retries[-1]
    assert [i.status for i in last.outcome.images] == [UPLOADED, FAILED]
    assert (last.outcome.images[1].error or "").startswith("failed earlier (")
    # Only the dead link is left: the next retry is when its back-off ends, not in 1 s.
    assert last.retry_in is not None and last.retry_in > FIRST_RETRY_S - 60
    assert tried and set(tried) == {"/gone.png"}
    assert hits == tried  # tried by the first pass only; the retries answered it from its failure
    assert creates(control)[-1] == md5(image)
    assert f"![gone]({dead})" in note.read_text()


def test_the_native_observer_failing_with_enospc_falls_back_to_polling(
    settings, vault: Path, control: Control
) -> None:
    # The system-wide fs.inotify.max_user_watches is not the test's to lower: the failure is
    # injected at the observer-start seam, where inotify reports it (tests/cli/test_watch_cli.py
    # makes it happen for real, in a user namespace of its own).
    def exhausted() -> object:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    events: list[object] = []
    watcher = Watcher(
        settings, [vault], on_event=events.append, debounce=0.2, native_factory=exhausted
    )
    watcher.start()
    w = Watching(watcher, events, vault)
    try:
        w.wait_ready()
        assert watcher.observer == "polling"
        assert "max_user_watches" in (w.started().fallback or "")
        write_png(vault / "img" / "a.png")
        (vault / "n.md").write_bytes(b"![a](img/a.png)\n")
        wait_rewritten(vault / "n.md", "img/a.png")
    finally:
        watcher.stop()
        assert watcher.join(DEADLINE_S) and watcher.failure is None


def test_a_second_watcher_of_the_same_folder_is_refused_naming_the_first(
    watching: Callable[..., Watching], settings, vault: Path
) -> None:
    watching()
    second = Watcher(settings, [vault / "."], on_event=lambda _e: None)
    with pytest.raises(AlreadyWatched) as caught:
        second.start()
    assert caught.value.pid == os.getpid()
    assert f"pid {os.getpid()}" in str(caught.value)


def test_stopping_waits_for_the_pass_in_flight(
    watching: Callable[..., Watching], vault: Path, control: Control
) -> None:
    w = watching()
    write_png(vault / "img" / "a.png")
    note = vault / "n.md"
    control.faults([{"match": "", "method": "PUT", "nth": 1, "times": 1, "action": "delay:1"}])
    note.write_bytes(b"![a](img/a.png)\n")
    wait_for(lambda: control.puts(), DEADLINE_S)

    stopper = threading.Thread(target=w.watcher.stop)
    stopper.start()
    assert w.watcher.join(DEADLINE_S)

    assert rewritten(note, "img/a.png")  # the pass in flight finished, note written whole
