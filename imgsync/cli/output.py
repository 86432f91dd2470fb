"""What every command's output shares: JSON on stdout, names that may not be UTF-8, paths shown
relative to where the user stands."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click


def echo_json(document: object) -> None:
    """Print one JSON document on stdout, readable as UTF-8 where the console allows it.

    A console in a legacy code page (Windows pipes, old locales), or a name holding bytes that
    are not UTF-8, gets the same JSON in ASCII with \\u escapes rather than no JSON at all.
    """
    import json

    text = json.dumps(document, ensure_ascii=False)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(document)
    click.echo(text)


def printable(text: str) -> str:
    """``text`` with every lone surrogate spelled out, so it can be printed and put in JSON.

    File names and notes are decoded with ``surrogateescape``: a byte that is not UTF-8 (a name
    from an old system, a note with a stray Latin-1 byte) becomes a lone surrogate, which no
    output encoding accepts. It is shown as ``\\xNN``, as Python shows such bytes.
    """
    return text if text.isascii() else _SURROGATE_RE.sub(_spell_surrogate, text)


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _spell_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def shown(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` where it lies below it, else as it is."""
    if base is not None:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            pass
    return str(path)
