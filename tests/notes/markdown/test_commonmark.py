"""The CommonMark 0.31.2 spec examples: rewriting every image changes nothing but ``<img src>``.

Each example is scanned; every reference found is pointed at a fresh URL; the original and the
rewritten example are rendered with mistune (plain CommonMark). The two renderings must be equal
once ``src`` values are blanked, and every ``src`` left in the rewritten rendering must be one of
the fresh URLs: an image the scanner missed would keep its old ``src`` and fail. Examples without
images must yield no reference and stay byte-identical.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import mistune
import pytest

from imgsync.notes.markdown import find_images, rewrite

SPEC_PATH = Path(__file__).with_name("commonmark.json")
EXAMPLES = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
FRESH = "https://img.example/fresh/"

# <img ... src=VALUE ...> in any quoting, as raw HTML passes through the renderer as written.
SRC_RE = re.compile(r"""(<img\b[^>]*?\bsrc=)("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)

render = mistune.create_markdown(escape=False)


def blank_src(html: str) -> str:
    return SRC_RE.sub(r"\1SRC", html)


def srcs(html: str) -> list[str]:
    return [value.strip("\"'") for _prefix, value in SRC_RE.findall(html)]


def test_the_vendored_spec_is_complete() -> None:
    assert len(EXAMPLES) == 652
    assert sum("<img" in example["html"] for example in EXAMPLES) == 23


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: str(example["example"]))
def test_rewriting_every_image_changes_only_img_src(example: dict) -> None:
    text = example["markdown"]
    result = find_images(text)
    assert result.consistent, result.warnings

    mapping = {ref: f"{FRESH}{index}.png" for index, ref in enumerate(result.refs)}
    new_text = rewrite(text, mapping)

    before, after = render(text), render(new_text)
    assert blank_src(after) == blank_src(before)
    assert all(src.startswith(FRESH) for src in srcs(after)), (new_text, after)
    assert len(srcs(after)) == len(srcs(before))
    if not srcs(before):
        assert result.refs == []
        assert new_text == text


def test_exactly_the_image_examples_have_references() -> None:
    with_refs = {
        example["example"] for example in EXAMPLES if find_images(example["markdown"]).refs
    }
    with_img = {example["example"] for example in EXAMPLES if "<img" in example["html"]}
    assert with_refs == with_img


@pytest.mark.parametrize(
    "markdown",
    [
        '![[foo]]\n\n[[foo]]: /url "title"\n',
        '!\\[foo]\n\n[foo]: /url "title"\n',
        '\\![foo]\n\n[foo]: /url "title"\n',
    ],
)
def test_named_non_images_stay_byte_identical(markdown: str) -> None:
    assert any(example["markdown"] == markdown for example in EXAMPLES)
    result = find_images(markdown)
    assert result.refs == []
    assert rewrite(markdown, {}) == markdown
