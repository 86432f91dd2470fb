"""A unified diff of a note's bytes and the bytes a rewrite gives, that ``patch`` applies exactly.

``imgsync sync --dry-run --diff`` shows what a real run would write as a diff; saved to a file and
applied with ``patch -p1`` it must give the very bytes the real run writes. So the diff is made
from the bytes, not from text read in text mode: lines are split at ``\\n`` only (a CRLF line
keeps its ``\\r``, a form feed or U+2028 inside a line is not a line break, as it is for
``str.splitlines``), bytes that are not UTF-8 pass through as they are, and a last line without a
line ending is marked ``\\ No newline at end of file``, as diff(1) does. A file name holding a
space ends with a tab, so that ``patch`` reads the whole name.

Pure: no filesystem.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

__all__ = ["CONTEXT_LINES", "unified_diff"]

#: Unchanged lines shown around each change, as diff -u shows them.
CONTEXT_LINES = 3

NO_NEWLINE = b"\\ No newline at end of file\n"


def unified_diff(
    old: bytes, new: bytes, *, old_name: str, new_name: str, context: int = CONTEXT_LINES
) -> bytes:
    """The unified diff turning ``old`` into ``new`` (b"" when they are equal), with headers
    ``--- old_name`` and ``+++ new_name`` (names may hold bytes that are not UTF-8, escaped by
    ``surrogateescape``)."""
    if old == new:
        return b""
    a, b = _lines(old), _lines(new)
    out = [b"--- " + _name(old_name) + b"\n", b"+++ " + _name(new_name) + b"\n"]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        old_range = _range(first[1], last[2])
        new_range = _range(first[3], last[4])
        out.append(f"@@ -{old_range} +{new_range} @@\n".encode())
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(_prefixed(b" ", a[i1:i2]))
                continue
            if tag in ("replace", "delete"):
                out.extend(_prefixed(b"-", a[i1:i2]))
            if tag in ("replace", "insert"):
                out.extend(_prefixed(b"+", b[j1:j2]))
    return b"".join(out)


def _lines(data: bytes) -> list[bytes]:
    """``data`` split after each ``\\n`` (the last line may have none)."""
    lines = data.split(b"\n")
    out = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _prefixed(prefix: bytes, lines: list[bytes]) -> Iterator[bytes]:
    for line in lines:
        if line.endswith(b"\n"):
            yield prefix + line
        else:
            yield prefix + line + b"\n" + NO_NEWLINE


def _range(start: int, stop: int) -> str:
    """A hunk's range as diff -u writes it: 1-based start, then the length unless it is 1 (an
    empty range starts at the line before)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def _name(name: str) -> bytes:
    data = name.encode("utf-8", "surrogateescape")
    return data + b"\t" if b" " in data else data
