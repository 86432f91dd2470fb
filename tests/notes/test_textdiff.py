"""The dry run's diff: what ``patch -p1`` applies to give exactly the bytes a real run writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from imgsync.notes.textdiff import unified_diff

needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) not installed")


CASES = {
    "lf": (b"# A\n\n![a](x.png)\n\ntext\n", b"# A\n\n![a](https://bed/x.png)\n\ntext\n"),
    "crlf-and-bom": (
        b"\xef\xbb\xbf# A\r\n![a](x.png)\r\nend\r\n",
        b"\xef\xbb\xbf# A\r\n![a](https://bed/x.png)\r\nend\r\n",
    ),
    "no-final-newline": (b"a\n![a](x.png)", b"a\n![a](https://bed/x.png)"),
    "not-utf8-and-odd-breaks": (
        b"caf\xe9\x0c\n\xe2\x80\xa8 ![a](x.png)\x0b\n",
        b"caf\xe9\x0c\n\xe2\x80\xa8 ![a](https://bed/x.png)\x0b\n",
    ),
    "far-apart": (
        b"".join(b"line %d\n" % i for i in range(40)).replace(b"line 3\n", b"![a](x.png)\n")
        + b"![b](y.png)\n",
        b"".join(b"line %d\n" % i for i in range(40)).replace(
            b"line 3\n", b"![a](https://bed/x.png)\n"
        )
        + b"![b](https://bed/y.png)\n",
    ),
    "last-line-gains-nothing": (b"x\n![a](y.png)\nz", b"x\n![a](u)\nz"),
}


def test_equal_bytes_give_no_diff() -> None:
    assert unified_diff(b"a\n", b"a\n", old_name="a/n.md", new_name="b/n.md") == b""


def test_the_shape_is_diff_u() -> None:
    diff = unified_diff(*CASES["lf"], old_name="a/n.md", new_name="b/n.md")
    assert diff.decode() == (
        "--- a/n.md\n+++ b/n.md\n@@ -1,5 +1,5 @@\n # A\n \n"
        "-![a](x.png)\n+![a](https://bed/x.png)\n \n text\n"
    )
    far = unified_diff(*CASES["far-apart"], old_name="a/n.md", new_name="b/n.md")
    assert far.count(b"\n@@ ") == 2  # two hunks, three lines of context each


@needs_patch
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", ["n.md", "my note.md", "笔记.md"])
def test_patch_p1_gives_the_new_bytes(tmp_path: Path, case: str, name: str) -> None:
    old, new = CASES[case]
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / name).write_bytes(old)
    diff = unified_diff(old, new, old_name=f"a/notes/{name}", new_name=f"b/notes/{name}")

    done = subprocess.run(
        ["patch", "-p1", "--batch"], input=diff, cwd=tmp_path, capture_output=True, timeout=30
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / name).read_bytes() == new
