"""A sync changes the link destinations of a note and not one other byte, nor its mode or kind."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imgsync.cli.sync import sync_exit_status, sync_report_json
from imgsync.errors import EXIT_OK

from ..support import write_note, write_png


@pytest.mark.parametrize(
    "template",
    [
        pytest.param(b"# T\r\n\r\n![i](x.png)\r\nend\r\n", id="crlf"),
        pytest.param(b"\xef\xbb\xbf# T\n\n![i](x.png)\n", id="bom"),
        pytest.param(b"caf\xe9 \xff\xfe\n\n![i](x.png) \x80 tail\n", id="invalid-utf8"),
        pytest.param(b"# T\n\n![i](x.png)", id="no-final-newline"),
        pytest.param(b"\xef\xbb\xbfa\r\nb\n\n![i](x.png)\r", id="bom-mixed-endings"),
        pytest.param(
            '---\ntitle: ![fm](x.png)\n---\n\n中文 ![图](x.png "标题")\n'.encode(),
            id="front-matter-and-unicode",
        ),
    ],
)
def test_only_the_destination_changes(
    sync: Callable[..., Any], vault: Path, template: bytes
) -> None:
    write_png(vault / "x.png")
    note = vault / "n.md"
    write_note(note, template)

    report = sync()

    assert sync_exit_status(report) == EXIT_OK, sync_report_json(report)
    (image,) = report.notes[0].images
    assert image.status == "uploaded"
    # Exactly one occurrence outside the front matter is replaced.
    head, sep, tail = template.rpartition(b"](x.png")
    assert note.read_bytes() == head + sep.replace(b"x.png", image.url.encode()) + tail


def test_the_file_mode_is_kept(sync: Callable[..., Any], vault: Path) -> None:
    write_png(vault / "x.png")
    note = vault / "n.md"
    write_note(note, "![i](x.png)\n")
    os.chmod(note, 0o640)

    report = sync()

    assert report.notes[0].changed
    assert stat.S_IMODE(note.stat().st_mode) == 0o640
    assert note.read_bytes() == f"![i]({report.notes[0].images[0].url})\n".encode()
    assert not [p for p in vault.iterdir() if p.name.endswith(".imgsync-tmp")]


def test_a_symlinked_note_stays_a_link_and_its_target_is_rewritten(
    sync: Callable[..., Any], vault: Path, tmp_path: Path
) -> None:
    write_png(vault / "img" / "x.png")
    target = vault / "real" / "target.md"
    # Relative to where the note is opened (the link), as an editor showing link.md sees it.
    write_note(target, "![i](img/x.png)\n")
    os.chmod(target, 0o600)
    link = vault / "link.md"
    link.symlink_to(Path("real") / "target.md")

    report = sync(link)

    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "target.md")
    (outcome,) = report.notes
    assert outcome.changed
    url = outcome.images[0].url
    assert target.read_bytes() == f"![i]({url})\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # The whole folder again: the link and its target are the same note, nothing more to do.
    again = sync()
    assert not any(n.changed for n in again.notes)
    assert link.is_symlink()
