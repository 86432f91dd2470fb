"""Safe note I/O on real files: byte fidelity, atomic writes, concurrent edits, bad notes."""

from __future__ import annotations

import errno
import functools
import os
import stat
from pathlib import Path

import pytest

import imgsync.notes.notefile as notefile
from imgsync.errors import ImgsyncError, ItemError
from imgsync.notes.markdown import find_images, rewrite
from imgsync.notes.notefile import NoteChanged, NoteError, read_note, update_note, write_note

NEW_URL = "https://img.example/x.png"


def rewrite_images(text: str) -> str:
    """The transform a sync applies: every local image to NEW_URL."""
    result = find_images(text)
    assert result.consistent
    return rewrite(text, {ref: NEW_URL for ref in result.refs if not ref.target.startswith("http")})


def fingerprint(path: Path) -> tuple[bytes, int, int, int]:
    """What a write must not change: the bytes, the mtime, the inode and the mode."""
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode)


def leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(notefile.TEMP_SUFFIX))


# ------------------------------------------------------------------------------------------------
# byte fidelity


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        pytest.param(
            b"a\r\n![i](x.png)\r\nb\r\n",
            b"a\r\n![i](" + NEW_URL.encode() + b")\r\nb\r\n",
            id="crlf",
        ),
        pytest.param(
            b"\xef\xbb\xbf# T\n![i](x.png)\n",
            b"\xef\xbb\xbf# T\n![i](" + NEW_URL.encode() + b")\n",
            id="bom",
        ),
        pytest.param(
            b"caf\xe9 \xff\xfe\n![i](x.png) \x80\n",
            b"caf\xe9 \xff\xfe\n![i](" + NEW_URL.encode() + b") \x80\n",
            id="invalid-utf8",
        ),
        pytest.param(b"![i](x.png)", b"![i](" + NEW_URL.encode() + b")", id="no-final-newline"),
        pytest.param(
            b"mixed\r\nends\n![i](x.png)\r",
            b"mixed\r\nends\n![i](" + NEW_URL.encode() + b")\r",
            id="mixed-line-endings",
        ),
    ],
)
def test_a_rewrite_changes_only_the_destination(
    tmp_path: Path, original: bytes, expected: bytes
) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(original)
    note, changed = update_note(path, lambda note: rewrite_images(note.text))
    assert changed
    assert path.read_bytes() == expected
    assert note.raw == expected
    assert leftovers(tmp_path) == []


def test_read_note_fields(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"\xef\xbb\xbfhello \xff")
    note = read_note(path)
    assert (note.path, note.bom, note.text) == (path, True, "hello \udcff")
    assert note.raw == path.read_bytes()
    assert (note.stat.st_size, note.stat.st_ino) == (len(note.raw), path.stat().st_ino)


def test_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"![i](x.png)\n")
    path.chmod(0o751)
    update_note(path, lambda note: rewrite_images(note.text))
    assert stat.S_IMODE(path.stat().st_mode) == 0o751


def test_writes_go_through_a_symlink_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "store" / "real.md"
    target.parent.mkdir()
    target.write_bytes(b"![i](x.png)\n")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    _, changed = update_note(link, lambda note: rewrite_images(note.text))
    assert changed
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"![i](" + NEW_URL.encode() + b")\n"
    assert leftovers(tmp_path) == [] and leftovers(target.parent) == []


def test_a_note_in_a_symlinked_folder_is_replaced_in_the_folder_it_leads_to(
    tmp_path: Path,
) -> None:
    real = tmp_path / "store" / "real.md"
    real.parent.mkdir()
    real.write_bytes(b"![i](x.png)\n")
    (tmp_path / "linked").symlink_to(real.parent)
    _, changed = update_note(tmp_path / "linked" / "real.md", lambda n: rewrite_images(n.text))
    assert changed
    assert (tmp_path / "linked").is_symlink() and not real.is_symlink()
    assert real.read_bytes() == b"![i](" + NEW_URL.encode() + b")\n"
    assert leftovers(real.parent) == []


def test_no_change_means_no_write(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"![i](https://elsewhere.example/x.png)\r\n")
    past = 1_000_000_000_000_000_000
    os.utime(path, ns=(past, past))
    note, changed = update_note(path, lambda note: rewrite_images(note.text))
    assert not changed
    assert path.stat().st_mtime_ns == past
    assert write_note(note, note.text) is False


def test_a_second_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"![a](x.png) ![[b.png|300]] <img src='c.png'>\n")
    _, first = update_note(path, lambda note: rewrite_images(note.text))
    after_first = path.stat()
    _, second = update_note(path, lambda note: rewrite_images(note.text))
    assert (first, second) == (True, False)
    assert path.stat().st_mtime_ns == after_first.st_mtime_ns
    assert path.stat().st_ino == after_first.st_ino


# ------------------------------------------------------------------------------------------------
# failures while writing


NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
BROKEN_DISK = OSError(errno.EIO, os.strerror(errno.EIO))
REAL_FDOPEN = os.fdopen


class FailingTempFile:
    """Stands in for ``os.fdopen`` of the temp file: its handle fails as on a full or broken disk.

    ``where``: "write" (nothing written), "half-write" (half the bytes, then an I/O error) or
    "close" (the last buffered bytes cannot be written when the file is closed).
    """

    def __init__(self, where: str, fd: int, *args: object, **kwargs: object) -> None:
        self.where = where
        self.handle = REAL_FDOPEN(fd, *args, **kwargs)

    def __enter__(self) -> FailingTempFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.handle.close()
        if self.where == "close" and exc_info[0] is None:
            raise NO_SPACE

    def write(self, data: bytes) -> int:
        if self.where == "write":
            raise NO_SPACE
        if self.where == "half-write":
            self.handle.write(data[: len(data) // 2])
            raise BROKEN_DISK
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()

    def fileno(self) -> int:
        return self.handle.fileno()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("fsync", "No space left"),
        ("fchmod", "No space left"),
        ("replace", "No space left"),
        ("exchange", "No space left"),
        ("write", "No space left"),
        ("half-write", "Input/output error"),
        ("close", "No space left"),
    ],
)
def test_a_failure_mid_write_leaves_the_note_intact_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, message: str
) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"![i](x.png)\n")
    path.chmod(0o640)
    before = fingerprint(path)

    def refuse(*_args: object) -> None:
        raise NO_SPACE

    if where == "replace":
        # Where names cannot be exchanged (not Linux, or a filesystem that refuses), the rewrite
        # takes the note's place with os.replace.
        monkeypatch.setattr(notefile.swap, "exchange", lambda *_args: False)
        monkeypatch.setattr(notefile.os, where, refuse)
    elif where == "exchange":
        monkeypatch.setattr(notefile.swap, "exchange", refuse)
    elif where in ("fsync", "fchmod"):
        monkeypatch.setattr(notefile.os, where, refuse)
    else:
        monkeypatch.setattr(notefile.os, "fdopen", functools.partial(FailingTempFile, where))
    with pytest.raises(NoteError, match=message):
        update_note(path, lambda note: rewrite_images(note.text))
    monkeypatch.undo()

    assert fingerprint(path) == before
    assert os.listdir(tmp_path) == ["note.md"]


# ------------------------------------------------------------------------------------------------
# concurrent edits are never overwritten


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(b"![i](x.png)\nabc\nthe user typed this\n", id="longer"),
        pytest.param(b"![i](x.png)\nxyz\n", id="same-size-and-mtime"),
    ],
)
def test_an_edit_between_read_and_write_is_detected(tmp_path: Path, edit: bytes) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"![i](x.png)\nabc\n")
    note = read_note(path)
    path.write_bytes(edit)
    if len(edit) == len(note.raw):  # only the content can tell
        os.utime(path, ns=(note.stat.st_atime_ns, note.stat.st_mtime_ns))
    with pytest.raises(NoteChanged):
        write_note(note, rewrite_images(note.text))
    assert path.read_bytes() == edit
    assert leftovers(tmp_path) == []


def test_update_note_redoes_the_pass_on_the_new_text(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"![i](x.png)\n")
    calls = []

    def transform(note):
        calls.append(note.text)
        if len(calls) == 1:  # the user saves while the images upload
            path.write_bytes(b"# Added\n![i](x.png)\n")
        return rewrite_images(note.text)

    note, changed = update_note(path, transform)
    assert changed and len(calls) == 2
    assert path.read_bytes() == b"# Added\n![i](" + NEW_URL.encode() + b")\n"
    assert note.raw == path.read_bytes()


def test_update_note_gives_up_on_a_note_that_keeps_changing(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"![i](x.png)\n")
    counter = iter(range(100))

    def transform(note):
        path.write_bytes(b"![i](x.png)\nedit %d\n" % next(counter))
        return rewrite_images(note.text)

    with pytest.raises(NoteChanged, match="kept changing"):
        update_note(path, transform, attempts=3)
    assert path.read_bytes() == b"![i](x.png)\nedit 2\n"
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# bad notes: one clear error per note


def bad_notes(folder: Path) -> dict[str, Path]:
    notes = {}
    notes["binary"] = folder / "image.md"
    notes["binary"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    notes["utf16"] = folder / "utf16.md"
    notes["utf16"].write_bytes("![i](x.png)\n".encode("utf-16"))
    notes["big"] = folder / "big.md"
    with open(notes["big"], "wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them
    notes["broken"] = folder / "broken.md"
    notes["broken"].symlink_to(folder / "gone.md")
    notes["folder"] = folder / "folder.md"
    notes["folder"].mkdir()
    notes["missing"] = folder / "missing.md"
    notes["loop"] = folder / "loop.md"
    notes["loop"].symlink_to(folder / "loop.md")
    return notes


EXPECTED_REASONS = {
    "binary": "binary file (contains NUL bytes)",
    "utf16": "UTF-16/UTF-32 text",
    "big": "too big",
    "broken": "broken symlink",
    "folder": "not a regular file",
    "missing": "no such file",
    "loop": "unreadable",
}


def test_bad_notes_are_reported_one_by_one(tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_bytes(b"![i](x.png)\n")
    reports: dict[str, str] = {}
    for name, path in bad_notes(tmp_path).items():
        with pytest.raises(NoteError) as caught:
            read_note(path)
        error = caught.value
        assert isinstance(error, ItemError) and isinstance(error, ImgsyncError)
        assert error.path == path and str(error).startswith(str(path))
        reports[name] = error.reason
    for name, reason in reports.items():
        assert reason.startswith(EXPECTED_REASONS[name]), (name, reason)
    assert read_note(good).text == "![i](x.png)\n"  # the others are unaffected


def test_a_note_over_the_limit_is_told_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    with open(path, "wb") as handle:  # sparse: cheap to make
        handle.truncate(25 * 1024 * 1024)
    with pytest.raises(NoteError) as caught:
        read_note(path)
    assert caught.value.reason == (
        "too big (25.0 MB): imgsync reads notes of up to 20 MB; left alone"
    )


def test_the_size_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes(b"x" * 100)
    with pytest.raises(NoteError, match="too big"):
        read_note(path, max_bytes=99)
    assert len(read_note(path, max_bytes=100).raw) == 100


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_note(tmp_path: Path) -> None:
    path = tmp_path / "secret.md"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(NoteError, match="permission denied"):
        read_note(path)


def test_an_unreadable_note_injected(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "secret.md"
    path.write_bytes(b"x")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(notefile, "open", denied, raising=False)
    with pytest.raises(NoteError, match="unreadable: permission denied"):
        read_note(path)
