"""Adversarial notes, at the level of one note file and one reference: permissions, links, names
the file system refuses, and a pathological line.

A full or broken disk is in test_notefile.py; the sync-level attacks (the emulator, subprocesses,
signals) are in tests/jobs/test_adversarial.py.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from imgsync.notes.markdown import definitions as mddefinitions
from imgsync.notes.markdown import destinations as mddestinations
from imgsync.notes.markdown import find_images
from imgsync.notes.notefile import TEMP_SUFFIX, NoteError, read_note, update_note, write_note
from imgsync.notes.resolve import Resolver

NOTE = b"# t\n\n![a](img/a.png)\n"
REWRITTEN = "# t\n\n![a](https://bed.example/a.png)\n"


def make_note(path: Path, data: bytes = NOTE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def fingerprint(path: Path) -> tuple[bytes, int, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode)


def ref_of(markdown: str):  # noqa: ANN201 - an ImageRef
    (ref,) = find_images(markdown).refs
    return ref


# ------------------------------------------------------------------------- notes the user protects


Undo = Callable[[], None]


def read_only(mode: int) -> Callable[[Path], Undo]:
    def protect(note: Path) -> Undo:
        note.chmod(mode)
        return lambda: None

    return protect


def in_a_read_only_folder(note: Path) -> Undo:
    note.parent.chmod(0o555)
    return lambda: note.parent.chmod(0o755)


def immutable(note: Path) -> Undo:
    try:
        subprocess.run(["chattr", "+i", str(note)], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pytest.skip("chattr +i is not available here")

    def undo() -> None:
        subprocess.run(["chattr", "-i", str(note)], check=False, timeout=10)

    return undo


def hard_linked(note: Path) -> Undo:
    # A replace gives the note a new inode: the other name would keep the old text and the two
    # would silently drift apart from then on.
    other = note.parent.parent / "elsewhere" / "same.md"
    other.parent.mkdir()
    os.link(note, other)
    return lambda: None


@pytest.mark.parametrize(
    ("protect", "read_first", "message"),
    [
        # An atomic replace needs only the folder to be writable: without a check, a note the
        # user made read-only would be replaced (with its read-only mode restored, so nobody
        # notices).
        pytest.param(read_only(0o444), False, "read-only", id="mode-0o444"),
        pytest.param(read_only(0o400), False, "read-only", id="mode-0o400"),
        pytest.param(read_only(0o555), False, "read-only", id="mode-0o555"),
        # chmod keeps the mtime: only a fresh look before the write sees it.
        pytest.param(read_only(0o444), True, "read-only", id="made-read-only-after-the-read"),
        pytest.param(in_a_read_only_folder, False, "folder is read-only", id="folder"),
        pytest.param(immutable, False, "not writable", id="immutable"),
        pytest.param(hard_linked, False, "2 hard links", id="hard-link"),
    ],
)
def test_a_protected_note_is_not_replaced(
    tmp_path: Path, protect: Callable[[Path], Undo], read_first: bool, message: str
) -> None:
    note = make_note(tmp_path / "notes" / "n.md")
    read = read_note(note) if read_first else None
    undo = protect(note)
    try:
        before = fingerprint(note)
        with pytest.raises(NoteError, match=message):
            write_note(read or read_note(note), REWRITTEN)
        assert fingerprint(note) == before
        assert not temp_files(tmp_path)
    finally:
        undo()


def test_a_writable_note_keeps_its_mode_when_rewritten(tmp_path: Path) -> None:
    note = make_note(tmp_path / "n.md")
    note.chmod(0o640)
    assert write_note(read_note(note), REWRITTEN)
    assert note.read_text() == REWRITTEN
    assert stat.S_IMODE(note.stat().st_mode) == 0o640


# ------------------------------------------------------------------- a note that vanishes at once


def test_a_note_deleted_right_after_its_rewrite_is_no_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = make_note(tmp_path / "n.md")
    real_replace = os.replace

    def replace_then_delete(src: str, dst: str) -> None:
        real_replace(src, dst)
        os.unlink(dst)  # the user (or a sync tool) deletes it at once

    monkeypatch.setattr(os, "replace", replace_then_delete)
    written, changed = update_note(note, lambda n: REWRITTEN)
    assert changed and written.text == REWRITTEN
    assert not temp_files(tmp_path)


# -------------------------------------------------------------- references the file system refuses


def test_an_image_name_longer_than_the_file_system_allows_is_reported(tmp_path: Path) -> None:
    resolver = Resolver(tmp_path)
    note = make_note(tmp_path / "n.md")
    for target in ("x" * 300 + ".png", "d/" + "y" * 5000 + "/a.png", "/" + "z" * 300 + ".png"):
        resolved = resolver.resolve(note, ref_of(f"![a]({target})\n"))
        assert resolved.skip_reason is not None and resolved.path is None, target
        assert "too long" in resolved.skip_reason.lower() or "not found" in resolved.skip_reason


# ------------------------------------------------------------------------------- symlinked notes


def test_a_symlinked_note_whose_names_mean_other_files_next_to_its_target_is_not_guessed(
    tmp_path: Path,
) -> None:
    # vault/link.md -> outside/real.md. "img/a.png" is vault/img/a.png seen from the link (as a
    # vault app shows the note) but outside/img/a.png seen from the file itself (as an editor
    # opening it there shows it): two different pictures. Rewriting either way would change
    # what one of the two views shows; so the reference is reported and left alone.
    vault, outside = tmp_path / "vault", tmp_path / "outside"
    make_note(vault / "img" / "a.png", b"\x89PNG vault")
    make_note(outside / "img" / "a.png", b"\x89PNG outside")
    real = make_note(outside / "real.md", b"![a](img/a.png)\n")
    link = vault / "link.md"
    link.symlink_to(real)

    resolved = Resolver(vault).resolve(link, ref_of("![a](img/a.png)\n"))

    assert resolved.skip_reason is not None
    assert "symlink" in resolved.skip_reason
    assert str(vault / "img" / "a.png") in resolved.skip_reason
    assert str(outside / "img" / "a.png") in resolved.skip_reason


def test_a_symlinked_note_whose_names_agree_resolves_as_before(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    image = make_note(vault / "img" / "a.png", b"\x89PNG vault")
    make_note(vault / "pics" / "b.png", b"\x89PNG b")
    real = make_note(vault / "real" / "target.md", b"![a](img/a.png)\n")
    link = vault / "link.md"
    link.symlink_to(Path("real") / "target.md")
    resolver = Resolver(vault)

    # Next to the link only (the target's folder has no img/): the root-relative lookup agrees.
    resolved = resolver.resolve(link, ref_of("![a](img/a.png)\n"))
    assert resolved.skip_reason is None and resolved.path == image.resolve()
    # Next to the target only: that is the file meant.
    make_note(real.parent / "only-here.png", b"\x89PNG here")
    resolved = resolver.resolve(link, ref_of("![h](only-here.png)\n"))
    assert resolved.skip_reason is None
    assert resolved.path == (real.parent / "only-here.png").resolve()


# -------------------------------------------------------------------------- a pathological line


class CountingPattern:
    """Stands in for one of the scanner's compiled patterns: counts its calls and the characters
    they cover, the work of the scanner's loops (deterministic, unlike a time on a shared
    machine)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.calls = 0
        self.covered = 0

    def match(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        self.calls += 1
        found = self.pattern.match(text, pos, endpos)
        if found is not None:
            self.covered += found.end() - pos
        return found


UNITS = 3000  # the quadratic scan did ~4.5 million pattern calls on the shortest line below


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("![a](" * UNITS, id="unclosed-destinations"),
        pytest.param("![a](b(" * UNITS, id="unclosed-parentheses"),
        pytest.param("![a](\\(" * UNITS, id="escaped-parentheses"),
        pytest.param("![a]( b(" * UNITS, id="after-a-space"),
        pytest.param("![a](<" * UNITS, id="unclosed-angles"),
        pytest.param('![a](b "' * UNITS, id="unclosed-titles"),
        pytest.param("![a]\n" + "[x]: <" * UNITS, id="definitions"),
        pytest.param("![a](" + "\\(" * UNITS * 2, id="escape-run"),
        pytest.param(("![a](b(" * 100 + "\n") * (UNITS // 100), id="many-lines"),
        pytest.param('![a](b(![a](<![a](b "<img src="![[\\(' * (UNITS // 4), id="mixed"),
    ],
)
def test_a_long_line_of_unclosed_images_scans_in_linear_time(
    monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    # Each destination of such a line holds all the later ones up to its end; a scan that reads
    # each of them to the end of the line again is quadratic (80 KB took 30 s, 1 MB hours, and
    # `imgsync sync` waited on it). Bounded here by the work of the destination loops.
    bare = CountingPattern(mddestinations._BARE_DEST_RUN_RE)
    angle = CountingPattern(mddestinations._ANGLE_DEST_RUN_RE)
    monkeypatch.setattr(mddestinations, "_BARE_DEST_RUN_RE", bare)
    monkeypatch.setattr(mddestinations, "_ANGLE_DEST_RUN_RE", angle)

    scan = find_images(line)

    assert scan.refs == [] and scan.consistent
    for pattern in (bare, angle):
        assert pattern.calls <= len(line) and pattern.covered <= len(line)


@pytest.mark.parametrize(
    ("text", "raws"),
    [
        ("![a](x(![b](y.png)).png)", ["x(![b](y.png)).png"]),  # the inner "(" closes: one image
        ("![a](x(![b](y.png).png)", ["y.png"]),  # the outer does not: the inner image only
        ("![a](x\\(![b](y.png)).png)", ["x\\(![b](y.png)"]),  # an escaped "(" opens nothing
        ("![b](y(z).png) ![a](x(![c](y(z).png)).png)", ["y(z).png", "x(![c](y(z).png)).png"]),
        ("[r]: x(![b](y.png))\n\n![r]", ["x(![b](y.png))"]),
    ],
)
def test_destinations_inside_destinations_are_located_as_before(text: str, raws: list[str]) -> None:
    # The scan reads a destination nested in another once and remembers it (for the lines
    # above): what it remembers must be what reading it on its own gives.
    scan = find_images(text)
    assert scan.consistent
    assert [ref.raw for ref in scan.refs] == raws
    assert all(text[ref.span[0] : ref.span[1]] == ref.raw for ref in scan.refs)


def test_a_line_of_definitions_after_a_long_prefix_is_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every "]:" of a line is checked against a definition starting the line: the line start is
    # matched once, not once per "]:" (each match reads the whole "- - - ..." prefix again).
    definition = CountingPattern(mddefinitions._DEF_RE)
    monkeypatch.setattr(mddefinitions, "_DEF_RE", definition)
    text = "![a]\n" + ("x" * 1000 + "\n") * 5 + "- " * 5000 + "[x]:" * 5000

    scan = find_images(text)

    assert scan.refs == [] and scan.consistent
    assert definition.calls <= text.count("\n") + 1


def test_a_long_line_of_real_images_is_scanned_whole() -> None:
    line = "".join(f"![a{i}](img/x{i}.png) text [l](u) `c` " for i in range(5000))
    scan = find_images(line)
    assert scan.consistent and len(scan.refs) == 5000


# ------------------------------------------------------------ a save in the last microseconds


def _exchange_here(folder: Path) -> bool:
    from imgsync.notes.swap import exchange_supported

    return exchange_supported(folder)


needs_exchange = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="the write window is closed with Linux's renameat2(RENAME_EXCHANGE); elsewhere a save "
    "landing in it is overwritten, as the README says",
)


def save_as_the_user(how: str, note: Path, edited: bytes) -> None:
    """The user saves ``edited`` over ``note``: a temp file renamed over it, or in place."""
    if how == "rename":  # most editors
        side = note.parent / ".n.md.editor-swap"
        side.write_bytes(edited)
        os.rename(side, note)
    else:  # others write the file in place
        with open(note, "r+b") as handle:
            handle.write(edited)
            handle.truncate()


EDITED = b"# t, edited\n\n![a](img/a.png)\n\nTyped in the last microsecond.\n"


def rewrite_a(text: str) -> str:
    return text.replace("img/a.png", "https://bed.example/a.png")


@needs_exchange
@pytest.mark.parametrize("how", ["rename", "in place"])
def test_a_save_landing_between_the_last_check_and_the_replace_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # The window the last check leaves open, made as wide as a test needs: the user saves right
    # after imgsync has checked the note and before its rewrite takes the note's place. The
    # rewrite is swapped in, the file swapped out is the user's, so it is swapped back and the
    # pass redone on the user's text.
    import imgsync.notes.notefile as notefile

    if not _exchange_here(tmp_path):
        pytest.skip("this filesystem refuses RENAME_EXCHANGE")
    note = make_note(tmp_path / "n.md")
    real_check = notefile._ensure_unchanged
    saved: list[bool] = []

    def check_then_save(read: object, target: Path) -> None:
        real_check(read, target)
        if saved:
            return
        saved.append(True)
        save_as_the_user(how, note, EDITED)

    monkeypatch.setattr(notefile, "_ensure_unchanged", check_then_save)
    written, changed = update_note(note, lambda n: rewrite_a(n.text))

    expected = EDITED.replace(b"img/a.png", b"https://bed.example/a.png")
    assert changed and note.read_bytes() == expected == written.raw
    assert not temp_files(tmp_path)


@needs_exchange
@pytest.mark.parametrize("how", ["rename", "in place"])
def test_a_save_landing_right_after_the_swap_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # After the swap the user's save goes to the note's name (a rename replaces the rewrite, an
    # in-place write writes into it): the user's bytes are what the note holds, never lost.
    import imgsync.notes.swap as swap

    if not _exchange_here(tmp_path):
        pytest.skip("this filesystem refuses RENAME_EXCHANGE")
    note = make_note(tmp_path / "n.md")
    real_exchange = swap.exchange
    calls: list[int] = []

    def exchange_then_save(first: str, second: str) -> bool:
        swapped = real_exchange(first, second)
        calls.append(1)
        if len(calls) == 1:
            save_as_the_user(how, note, EDITED)
        return swapped

    monkeypatch.setattr(swap, "exchange", exchange_then_save)
    update_note(note, lambda n: rewrite_a(n.text))

    assert note.read_bytes() == EDITED
    assert not temp_files(tmp_path)


@needs_exchange
def test_a_user_save_that_cannot_be_swapped_back_is_kept_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user saves between the last check and the swap, and the swap back then fails (a full
    # disk, a folder made read-only at that instant): the user's version stays under the
    # temporary name, which the error names. Nothing typed is deleted.
    import imgsync.notes.notefile as notefile
    import imgsync.notes.swap as swap

    if not _exchange_here(tmp_path):
        pytest.skip("this filesystem refuses RENAME_EXCHANGE")
    note = make_note(tmp_path / "n.md")
    real_check, real_exchange = notefile._ensure_unchanged, swap.exchange
    calls: list[int] = []

    def check_then_save(read: object, target: Path) -> None:
        real_check(read, target)
        save_as_the_user("rename", note, EDITED)

    def exchange_once(first: str, second: str) -> bool:
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_exchange(first, second)

    monkeypatch.setattr(notefile, "_ensure_unchanged", check_then_save)
    monkeypatch.setattr(swap, "exchange", exchange_once)
    with pytest.raises(NoteError, match="it is kept as") as caught:
        write_note(read_note(note), rewrite_a(NOTE.decode()))

    (kept,) = temp_files(tmp_path)
    assert kept.read_bytes() == EDITED
    assert str(kept) in str(caught.value)
