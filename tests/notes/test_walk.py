"""Which files below the paths given are notes, in which order, and what is reported instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgsync.notes.walk import SKIP_DIRS, iter_notes, walk_note_batches, walk_notes


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"# note\n")
    return path


def test_notes_below_a_folder_in_a_stable_order(tmp_path: Path) -> None:
    notes = [
        touch(tmp_path / "a.md"),
        touch(tmp_path / "b.MARKDOWN"),
        touch(tmp_path / "sub" / "A.Md"),
        touch(tmp_path / "sub" / "deeper" / "c.markdown"),
    ]
    touch(tmp_path / ".hidden.md")
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "md")
    for folder in SKIP_DIRS:
        touch(tmp_path / folder / "x.md")
        touch(tmp_path / "sub" / folder / "y.md")

    found = list(iter_notes([tmp_path]))

    assert found == [(note, tmp_path, None) for note in notes]


def test_walk_notes_yields_absolute_path_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = touch(tmp_path / "sub" / "n.md")
    monkeypatch.chdir(tmp_path)
    assert list(walk_notes([Path("sub")])) == [(str(note), Path("sub"), None)]


def test_batches_are_the_notes_of_one_folder_each_and_a_problem_alone(tmp_path: Path) -> None:
    a, b = touch(tmp_path / "a.md"), touch(tmp_path / "b.md")
    c = touch(tmp_path / "sub" / "c.md")
    touch(tmp_path / "empty" / "notes.txt")  # a folder with no note: no batch
    missing = tmp_path / "missing.md"

    batches = list(walk_note_batches([tmp_path, missing, a]))

    assert batches == [
        ([str(a), str(b)], tmp_path, None),
        ([str(c)], tmp_path, None),
        ([str(missing)], missing, "no such file"),
    ]  # ``a`` again: met already, left out
    assert [(k, g, p) for keys, g, p in batches for k in keys] == list(
        walk_notes([tmp_path, missing, a])
    )


def test_a_note_reached_twice_is_yielded_once(tmp_path: Path) -> None:
    a, b = touch(tmp_path / "a.md"), touch(tmp_path / "b.md")
    found = [note for note, _given, _problem in iter_notes([a, tmp_path, a, tmp_path / "b.md"])]
    assert found == [a, b]


@pytest.mark.parametrize(
    ("name", "kind", "problem"),
    [
        pytest.param("n.md", None, "no such file", id="missing-note"),
        pytest.param("n", None, "no such file or folder", id="missing-other"),
        # A broken link named like a note is a note: reading it reports the link.
        pytest.param("n.md", "link", None, id="broken-link"),
        pytest.param("n", "fifo", "not a note or folder", id="fifo"),
    ],
)
def test_a_path_given_that_is_no_note_is_yielded_with_its_problem(
    tmp_path: Path, name: str, kind: str | None, problem: str | None
) -> None:
    path = tmp_path / name
    if kind == "link":
        path.symlink_to(tmp_path / "gone.md")
    elif kind == "fifo":
        os.mkfifo(path)
    assert list(iter_notes([path])) == [(path, path, problem)]


def test_a_name_the_system_refuses_is_reported(tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 5000)
    ((note, given, problem),) = iter_notes([too_long])
    assert (note, given) == (too_long, too_long)
    assert problem is not None and problem.startswith("cannot be examined: ")


def test_a_folder_that_cannot_be_listed_is_reported_and_the_rest_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = touch(tmp_path / "good.md")
    locked = tmp_path / "locked"
    touch(locked / "hidden.md")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if not isinstance(path, int) and os.fspath(path) == str(locked):  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", os.fspath(path))  # type: ignore[arg-type]
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)  # as for another user's folder (tests run as root)

    found = list(iter_notes([tmp_path]))

    assert found == [
        (good, tmp_path, None),
        (locked, tmp_path, "cannot list this folder: Permission denied"),
    ]
