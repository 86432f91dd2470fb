"""A note whose only unfinished links are dead remote images in their back-off is stamped clean
until the first back-off ends: re-syncs skip it unread and send nothing, then it is read (and the
link tried) again once due, or at once under ``--retry-failed``. A note with a failed local image
is never stamped. Real runs against the emulator, a web server on loopback, real files."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.config import Settings
from imgsync.jobs.sync import Syncer
from imgsync.store.cache import Cache

from ..support import Control, age_backoffs, write_file, write_note, write_png
from .helpers import snapshot


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> Any:
    """The web server is on loopback: opt in to imgsync's own download of what it serves."""
    return make_settings(upload={"allow_private_urls": True})


@pytest.fixture
def dead_link(control: Control, web: tuple[str, Path]) -> str:
    """A remote image link that fails (the web server has no such file) and fails fast."""
    control.config(offline_retries=0)
    base, _folder = web
    return f"{base}/gone.png"


def stamp_and_attempt(settings: Settings, note: Path, url: str) -> tuple[int | None, Any]:
    """The note's stamp's recheck time (None: no stamp), and what is remembered of ``url``."""
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:
        stamp = cache.notes.get(note)
        return (None if stamp is None else stamp.recheck_ns), cache.attempts.get(url)


def test_a_note_with_only_a_dead_link_in_back_off_is_not_read_again_until_due(
    sync: Callable[..., Any],
    control: Control,
    vault: Path,
    settings: Settings,
    dead_link: str,
    parses: list[str],
) -> None:
    write_png(vault / "here.png")
    note = vault / "a.md"
    write_note(note, f"# A\n\n![gone]({dead_link})\n![here](here.png)\n")

    first = sync()
    images = {i.target: i for i in first.notes[0].images}
    assert images[dead_link].status == "failed" and images["here.png"].status == "uploaded"
    recheck_ns, attempt = stamp_and_attempt(settings, note, dead_link)
    assert attempt.failures == 1
    # Stamped clean until the dead link's back-off ends.
    assert recheck_ns == attempt.next_try_ns > 0

    # (1) The next run neither reads nor parses it, and sends nothing.
    parses.clear()
    log = control.requests()
    after_first = snapshot(vault)
    second = sync()
    assert parses == []
    assert [n.unchanged_since_last_sync for n in second.notes] == [True]
    assert control.requests() == log
    assert snapshot(vault) == after_first

    # (2) Once the back-off has passed, the note is read and the link tried again.
    assert age_backoffs(settings.data_dir, (attempt.next_try_ns - attempt.last_try_ns) / 1e9) == 1
    aged = stamp_and_attempt(settings, note, dead_link)[1]
    third = sync()
    assert len(parses) >= 1
    (outcome,) = third.notes
    assert not outcome.unchanged_since_last_sync
    (gone,) = [i for i in outcome.images if i.target == dead_link]
    assert gone.status == "failed" and not gone.error.startswith("failed earlier")
    recheck_ns, attempt = stamp_and_attempt(settings, note, dead_link)
    assert attempt.failures == 2
    assert recheck_ns == attempt.next_try_ns  # stamped again, to the longer back-off
    assert attempt.next_try_ns - attempt.last_try_ns > aged.next_try_ns - aged.last_try_ns
    assert snapshot(vault) == after_first


def test_retry_failed_reads_a_note_stamped_for_its_dead_link_and_tries_it(
    sync: Callable[..., Any],
    vault: Path,
    settings: Settings,
    dead_link: str,
    parses: list[str],
) -> None:
    note = vault / "a.md"
    original = write_note(note, f"![gone]({dead_link})\n")
    sync()
    recheck_ns, attempt = stamp_and_attempt(settings, note, dead_link)
    assert recheck_ns == attempt.next_try_ns > 0 and attempt.failures == 1

    # (3) --retry-failed does not trust that stamp: the note is read, the link tried now.
    parses.clear()
    retrying = dataclasses.replace(
        settings, sync=dataclasses.replace(settings.sync, retry_failed=True)
    )
    report = Syncer(retrying, root=vault).run([vault])
    assert len(parses) == 1
    (outcome,) = report.notes
    assert not outcome.unchanged_since_last_sync
    (gone,) = outcome.images
    assert gone.status == "failed" and not gone.error.startswith("failed earlier")
    recheck_ns, attempt = stamp_and_attempt(settings, note, dead_link)
    assert attempt.failures == 2
    # Under --retry-failed no answer is settled: the stamp is forgotten, the next run reads it...
    assert recheck_ns is None
    parses.clear()
    assert not sync().notes[0].unchanged_since_last_sync
    assert len(parses) == 1
    # ...and stamps it again until the new back-off ends.
    recheck_ns, attempt = stamp_and_attempt(settings, note, dead_link)
    assert recheck_ns == attempt.next_try_ns
    assert note.read_bytes() == original


@pytest.mark.parametrize("local", ["missing", "not-an-image"])
def test_a_note_with_a_failed_local_image_is_never_stamped(
    sync: Callable[..., Any],
    control: Control,
    vault: Path,
    settings: Settings,
    dead_link: str,
    parses: list[str],
    local: str,
) -> None:
    if local == "not-an-image":
        write_file(vault / "broken.png", b"not an image at all\n" * 10)
    note = vault / "a.md"
    original = write_note(note, f"![gone]({dead_link})\n![broken](broken.png)\n")

    first = sync()
    assert {i.target: (i.kind, i.status) for i in first.notes[0].images} == {
        dead_link: ("remote", "failed"),
        "broken.png": ("local", "failed"),
    }
    assert stamp_and_attempt(settings, note, dead_link)[0] is None

    # (4) Looked at again on every run (the dead link answered from its back-off, no request).
    parses.clear()
    log = control.requests()
    second = sync()
    assert len(parses) == 1
    (outcome,) = second.notes
    assert not outcome.unchanged_since_last_sync
    (gone,) = [i for i in outcome.images if i.target == dead_link]
    assert gone.error.startswith("failed earlier")
    assert control.requests() == log
    assert stamp_and_attempt(settings, note, dead_link)[0] is None
    assert note.read_bytes() == original
