"""Nothing outside the notes root is published unless asked; data URIs only when asked."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imgsync.cli.sync import sync_exit_status
from imgsync.errors import EXIT_OK

from ..support import Control, md5, write_note, write_png
from .helpers import snapshot


def outside_files(vault: Path, tmp_path: Path) -> dict[str, bytes]:
    """A "private" image in another folder (standing for /etc/passwd or ~/.ssh), reached by an
    absolute path, by ``../``, by a file:// URL and by a symlink inside the vault."""
    secret = tmp_path / "private" / "secret.png"
    data = write_png(secret, "secret")
    (vault / "link.png").symlink_to(secret)
    write_note(
        vault / "n.md",
        f"![abs]({secret})\n\n"
        "![up](../private/secret.png)\n\n"
        f"![url](file://{secret})\n\n"
        "![link](link.png)\n",
    )
    return {"secret": data}


def test_a_file_outside_the_root_is_not_uploaded_and_is_reported_with_a_warning(
    sync: Callable[..., Any], control: Control, vault: Path, tmp_path: Path
) -> None:
    data = outside_files(vault, tmp_path)["secret"]
    before = snapshot(vault)

    report = sync()

    assert md5(data) not in control.created_md5s()
    assert control.requests("/upload/v1/oss/file/create") == []
    (note,) = report.notes
    assert [i.status for i in note.images] == ["skipped"] * 4
    assert all("outside the root" in (i.error or "") for i in note.images)
    assert len(note.warnings) == 4 and all("outside the root" in w for w in note.warnings)
    assert not note.changed and sync_exit_status(report) == EXIT_OK
    assert snapshot(vault) == before


def test_allow_outside_root_uploads_them(
    sync: Callable[..., Any], control: Control, vault: Path, tmp_path: Path
) -> None:
    data = outside_files(vault, tmp_path)["secret"]

    report = sync(allow_outside_root=True)

    (note,) = report.notes
    # Four spellings of one file: one upload, shared by the four references.
    assert [i.status for i in note.images] == ["uploaded"] * 4
    assert control.created_md5s() == [md5(data)]
    urls = {i.url for i in note.images}
    assert len(urls) == 1
    assert note.changed and sync_exit_status(report) == EXIT_OK
    assert (vault / "link.png").is_symlink()  # the image link itself is left alone


def test_data_uris_are_skipped_unless_allowed(
    sync: Callable[..., Any], control: Control, vault: Path
) -> None:
    png = write_png(vault / "unused" / "x.png", "inline-data")
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    note = vault / "n.md"
    original = write_note(note, f"Before ![d]({uri}) after.\n")

    report = sync()
    image = report.notes[0].images[0]
    assert (image.kind, image.status) == ("data", "skipped")
    assert image.error and "data URI" in image.error
    assert control.created_md5s() == []
    assert note.read_bytes() == original

    report = sync(allow_data=True)
    image = report.notes[0].images[0]
    assert (image.kind, image.status) == ("data", "uploaded")
    assert control.created_md5s() == [md5(png)]
    assert control.fetch(image.url) == png
    assert note.read_bytes() == f"Before ![d]({image.url}) after.\n".encode()
