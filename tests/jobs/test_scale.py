"""A notes folder of realistic size: 2,000 notes, 10,000 references to 100 shared images.

The scale is in the notes and their references (issue 4: 2,000 notes, 10,000 references, shared
images); the uploads are only what lets them be rewritten. 100 images, each linked from about
100 places, keep every note waiting on uploads in flight while costing a third of the requests
that 300 did (many uploads at once are the subject of tests/engine and benchmarks/).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.cli.sync import sync_exit_status
from imgsync.errors import EXIT_OK

from ..support import Control, md5, write_note, write_png
from .helpers import snapshot

NOTES = 2_000
REFS_PER_NOTE = 5
IMAGES = 100
FOLDERS = 20


def make_vault(vault: Path) -> dict[str, bytes]:
    rnd = random.Random(20_000)
    images = {f"i{n:03d}.png": write_png(vault / "img" / f"i{n:03d}.png") for n in range(IMAGES)}
    names = sorted(images)
    for n in range(NOTES):
        picks = [rnd.choice(names) for _ in range(REFS_PER_NOTE)]
        lines = [f"# Note {n}", "", "Some *text* with a [link](https://example.com/page).", ""]
        lines.append(f"![first](../img/{picks[0]})")
        lines.append(f'An image with a title: ![second](../img/{picks[1]} "title {n}").')
        lines.append(f'<img src="../img/{picks[2]}" alt="third" style="zoom:50%;" />')
        lines.append(f"![[{picks[3]}|200]]")
        lines.append("![fifth][ref]")
        lines += ["", "```", f"![in code](../img/{picks[4]})", "```", ""]
        lines.append(f"[ref]: ../img/{picks[4]}")
        write_note(vault / f"folder{n % FOLDERS:02d}" / f"note {n:04d}.md", "\n".join(lines) + "\n")
    return images


@pytest.mark.slow(18)
def test_two_thousand_notes_sync_and_a_second_run_does_nothing(
    make_settings: Callable[..., Any], control: Control, vault: Path
) -> None:
    from imgsync.jobs.sync import Syncer

    settings = make_settings(upload={"concurrency": 8})
    images = make_vault(vault)

    first = Syncer(settings, root=vault).run([vault])

    assert sync_exit_status(first) == EXIT_OK
    totals = first.totals()
    assert totals["notes"] == NOTES and totals["changed"] == NOTES
    assert totals["uploaded"] == NOTES * REFS_PER_NOTE
    created = control.created_md5s()
    assert len(created) == len(set(created))  # each image once
    used = {i.url for n in first.notes for i in n.images}
    assert set(created) <= {md5(data) for data in images.values()}
    assert len(used) == len(set(created))
    sample = first.notes[123]
    text = sample.path.read_text(encoding="utf-8")
    assert all(image.url in text for image in sample.images)
    assert "](../img/" in text  # the code block is not touched
    log = control.requests()
    after = snapshot(vault)

    second = Syncer(settings, root=vault).run([vault])

    assert sync_exit_status(second) == EXIT_OK
    assert all(n.unchanged_since_last_sync for n in second.notes)
    assert second.totals()["changed"] == 0
    assert control.requests() == log
    assert snapshot(vault) == after  # bytes and mtimes
