"""Guards against slow scanning: one parse per note, none for a note without images, and
hostile inputs that finish.

The timing itself (finding images within 1.5x a bare mistune parse) is measured by
benchmarks/find_images.py, never asserted here: machines running the tests are shared and noisy.
"""

from __future__ import annotations

import pytest

import imgsync.notes.markdown as markdown
from imgsync.notes.markdown import find_images


def sample_note(paragraphs: int = 300) -> str:
    parts = []
    for i in range(paragraphs):
        kind = i % 10
        if kind == 0:
            parts.append(f'Text with ![pic {i}](img/pic{i}.png "title") and *emphasis*.')
        elif kind == 1:
            parts.append(f"```python\nprint('![x](y{i}.png)')\n```")
        elif kind == 2:
            parts.append(f"- item\n- item ![a](a{i}.jpg)\n  continued [link](https://x.example)")
        elif kind == 3:
            parts.append(f'<img src="assets/{i}.png" style="zoom:50%">')
        elif kind == 4:
            parts.append(f"![[embed{i}.png|300]] and ![ref][r{i}]\n\n[r{i}]: refs/{i}.png")
        else:
            parts.append("Lorem ipsum dolor sit amet, [consectetur](x) adipiscing elit. " * 3)
    return "\n\n".join(parts) + "\n"


def test_one_parse_per_note(monkeypatch) -> None:
    calls = []
    real_parse = markdown._parse

    def counting_parse(text: str):
        calls.append(len(text))
        return real_parse(text)

    monkeypatch.setattr(markdown, "_parse", counting_parse)
    result = find_images(sample_note())
    assert result.consistent and len(result.refs) > 100
    assert len(calls) == 1


def test_notes_without_images_are_not_parsed(monkeypatch) -> None:
    monkeypatch.setattr(markdown, "_parse", lambda text: pytest.fail("parsed"))
    result = find_images("# Title\n\nNo pictures, a [link](x.md) and `code`.\n")
    assert result.refs == [] and result.consistent


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("![" * 50_000, id="unclosed-image-openers"),
        pytest.param("![" * 5_000 + "a" + "](x.png)" * 5_000, id="deeply-nested"),
        pytest.param("![a](<" + "<!--" * 30_000 + ">)", id="unclosed-comments"),
        pytest.param("![a " + '<a b="' * 30_000 + "](x.png)", id="unclosed-quotes"),
        pytest.param(" ".join(f"![a](i{i}.png)" for i in range(20_000)), id="one-long-line"),
        pytest.param("![a " + "` `` " * 20_000 + "](x.png)", id="backtick-runs"),
    ],
)
def test_hostile_input_is_scanned(text: str) -> None:
    # No time bound here (timings belong in benchmarks/): a quadratic scan of these inputs takes
    # minutes and shows up as a suite that does not finish, which CI's time limit catches.
    result = find_images(text)
    assert all(text[r.span[0] : r.span[1]] == r.raw for r in result.refs)
