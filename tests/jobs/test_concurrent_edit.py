"""A note edited while its images upload keeps the edit and still gets its links rewritten."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgsync.cli.sync import sync_exit_status
from imgsync.errors import EXIT_OK

from ..support import COMPLETE_PATH, CREATE_PATH, Control, md5, wait_for, write_note, write_png

DEADLINE_S = 30.0


def test_an_edit_made_during_the_upload_is_kept(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    image = write_png(vault / "img" / "x.png")
    write_png(vault / "img" / "new.png")
    note = vault / "n.md"
    write_note(note, "# Title\n\nFirst line.\n\n![x](img/x.png)\n")
    # The completion of the upload is held back a little, so the edit lands while it is in flight.
    control.faults([{"match": COMPLETE_PATH, "nth": 1, "times": 1, "action": "delay:1"}])
    edited = threading.Event()
    failures: list[BaseException] = []

    def user() -> None:
        try:
            wait_for(lambda: control.requests(CREATE_PATH), timeout=DEADLINE_S)
            text = note.read_bytes()
            text = text.replace(b"First line.", b"First line, edited.")
            text += b"\nA paragraph typed during the upload, with ![n](img/new.png).\n"
            note.write_bytes(text)  # in place, as many editors save
            edited.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    def upload_finished(_result: Any) -> None:
        # The rewrite comes after this; it must not start before the user's edit is on disk.
        assert edited.wait(DEADLINE_S), "the edit did not happen"

    editor = threading.Thread(target=user)
    editor.start()
    try:
        report = sync(on_image=upload_finished)
    finally:
        editor.join(DEADLINE_S)
    assert not failures, failures
    assert control.requests(COMPLETE_PATH)[0]["fault"] == "delay:1"
    assert control.created_md5s() == [md5(image)]

    (outcome,) = report.notes
    assert sync_exit_status(report) == EXIT_OK and outcome.changed
    url = outcome.images[0].url
    expected = (
        "# Title\n\nFirst line, edited.\n\n"
        f"![x]({url})\n"
        "\nA paragraph typed during the upload, with ![n](img/new.png).\n"
    )
    assert note.read_bytes() == expected.encode()

    # The image added by the edit was not part of this run; the note is not marked clean, so
    # the next run uploads it.
    again = sync()
    (outcome,) = again.notes
    assert not outcome.unchanged_since_last_sync
    statuses = {i.target: i.status for i in outcome.images}
    assert statuses["img/new.png"] == "uploaded"
    assert b"img/new.png" not in note.read_bytes()
    assert b"First line, edited." in note.read_bytes()
