"""Property tests over documents built from the edge-case fragments.

For any document: every byte outside the replaced spans is kept, the rescanned note points at the
new URLs (and only there), and a second run has nothing left to do.

The rendered HTML before and after a rewrite may differ only in ``<img src>``, and in the ``href``
of a text link that uses a reference definition an image uses too: the rules say to rewrite that
(first matching) definition anyway and warn (docs/markdown-rules.md), so such a link moves with
the image.
"""

from __future__ import annotations

import re
from typing import Any

import mistune
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imgsync.notes.markdown import ImageRef, RewriteError, encode_url, find_images, rewrite
from tests.support import examples

HOST = "https://img.example/h/"

FRAGMENTS = [
    # images
    '![a](x.png "t")',
    "![a](x.png 't')",
    "![a](x.png (t))",
    '![a](\n  nl.png\n  "t")',
    "![b](<my pic.png>)",
    "![a](<b)c.png>)",
    "![c](a\\(1\\).png)",
    "![d](foo(bar).png)",
    "![foo [bar](/x) *baz*](n.png)",
    "![a `]` b](code.png)",
    "[![m](moon.jpg)](/uri)",
    "![r1][b] and ![r2][] and ![B]",
    "[b]: ref.png\n[B]: first.png 'title'",
    "[q]:\n  <next line.png>\n\n![q]",
    "- item\n\n    ![l](list.png)",
    "> ![q](quoted.png)",
    '<img src="a.png">',
    "<IMG SRC='b.png'>",
    "<img src=c.png>",
    '<img src="t.png" style="zoom:50%">',
    '<div align="center">\n<img src="d.png" width="300">\n</div>',
    "![e](my%20pic.png)",
    "![z](图片.png)",
    "![amp](a&amp;b.png)",
    "![w](C:\\pics\\a.png)",
    "![w](<C:\\My Pics\\a.png>)",
    "![f](file:///tmp/a.png)",
    "![d](data:image/png;base64,iVBORw0KGgo=)",
    "![r](https://example.com/r.png)",
    "![r](//cdn.example.com/s.png)",
    "![[a.png]]",
    "![[b.png|300]]",
    "![[c.png#x]]",
    "| a | b |\n|---|---|\n| ![[t.png\\|300]] | ![t](cell.png) |",
    "![e]()",
    "![e](<>)",
    "caf\udce9 \udcff ![bad](bad\udcfe.png)",  # invalid UTF-8 bytes, kept as surrogates
    # not images
    "![a](foo(bar.png)",
    "![a](my pic.png)",
    "\\![a](esc.png)",
    "!\\[b](esc2.png)",
    "`![a](inline-code.png)`",
    "```\n![a](fenced.png)\n```",
    "~~~\n![a](tilde.png)\n~~~",
    "    ![a](indented.png)",
    "<!-- ![a](comment.png) <img src=comment2.png> -->",
    "<div>\n![a](in-html.png)\n</div>",
    "![[Note]] ![[doc.pdf]]",
    "[link](page.md) [ref link][b]",
    "plain *text* with _emphasis_ and a [bracket",
    "# Heading ![h](heading.png)",
]

BLOCK_SEPARATORS = ["\n\n", "\n\n\n"]
ANY_SEPARATORS = ["", " ", "\n", "\n\n", "x", "*", "`", "> ", "- ", "|", "]", "(", "\\"]

SHARED_HREF = "SHARED-WITH-AN-IMAGE"


class SharedLinkRenderer(mistune.HTMLRenderer):
    """HTML, with the destination of every link that uses a reference definition an image uses too
    rendered as :data:`SHARED_HREF`: rewriting the definition for the image rightly moves it."""

    shared: frozenset[str] = frozenset()

    def __call__(self, tokens: Any, state: Any) -> str:
        tokens = list(tokens)  # the inline parse is lazy: run it to see every link and image
        self.shared = shared_labels(tokens)
        return super().__call__(tokens, state)

    def render_token(self, token: dict[str, Any], state: Any) -> str:
        if token["type"] == "link" and token.get("ref") in self.shared:
            token = {**token, "attrs": {**token["attrs"], "url": SHARED_HREF}}
        return super().render_token(token, state)


def shared_labels(tokens: list[dict[str, Any]]) -> frozenset[str]:
    """The (normalised) reference labels that both an image and a text link use."""
    used: dict[str, set[str]] = {"image": set(), "link": set()}

    def visit(level: list[dict[str, Any]]) -> None:
        for token in level:
            if token["type"] in used and "ref" in token:
                used[token["type"]].add(token["ref"])
            visit(token.get("children") or [])

    visit(tokens)
    return frozenset(used["image"] & used["link"])


PLUGINS = ["table", "footnotes"]
plain_render = mistune.create_markdown(renderer=SharedLinkRenderer(escape=False), plugins=PLUGINS)
plain_parse = mistune.create_markdown(renderer=None, plugins=PLUGINS)
SRC_RE = re.compile(r"""(<img\b[^>]*?\bsrc=)("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)


def without_surrogates(text: str) -> str:
    """Undecodable bytes shown as U+FFFD (mistune cannot encode lone surrogates)."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def render(text: str) -> str:
    """HTML with every ``<img src>``, and the ``href`` of each link that shares an image's
    reference definition, normalised (see :class:`SharedLinkRenderer`)."""
    return SRC_RE.sub(r"\1SRC", plain_render(without_surrogates(text)))


def documents(separators: list[str]) -> st.SearchStrategy[str]:
    pieces = st.lists(
        st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(separators)), min_size=1, max_size=8
    )
    line_endings = st.sampled_from(["\n", "\r\n"])
    return st.builds(
        lambda parts, ending: "".join(f + s for f, s in parts).replace("\n", ending),
        pieces,
        line_endings,
    )


def new_url(index: int, ref: ImageRef) -> str:
    # Some URLs need encoding or escaping, to exercise "encoded once" in every context.
    return f"{HOST}{index}.png" if index % 3 else f"{HOST}{index} (v&w).png"


def plan(text: str) -> dict[ImageRef, str]:
    """What a sync would do: every reference not yet on the image bed gets a new URL."""
    refs = find_images(text).refs
    return {
        ref: new_url(index, ref)
        for index, ref in enumerate(refs)
        if ref.target and not ref.target.startswith(HOST)
    }


def check_rewrite(text: str, mapping: dict[ImageRef, str], new_text: str) -> None:
    """Bytes outside the replaced spans are identical; the rescan finds the new URLs there."""
    after = find_images(new_text)
    assert after.consistent, after.warnings
    old_refs = find_images(text).refs
    assert len(after.refs) == len(old_refs)
    old_pos = new_pos = 0
    for old, new in zip(old_refs, after.refs, strict=True):
        start, end = old.span
        kept = text[old_pos:start]
        assert new_text.startswith(kept, new_pos), "bytes before a span changed"
        new_pos += len(kept)
        if old in mapping:
            assert new.target == encode_url(mapping[old])
            if old.kind == "embed":
                assert new_text.startswith("![", new_pos) and new.kind == "inline"
                new_pos = new.span[1] + 1  # the closing parenthesis of ![alt](url)
            else:
                assert new.span[0] == new_pos, "the new destination is not where the old one was"
                new_pos = new.span[1]
        else:
            assert new.span == (new_pos, new_pos + len(old.raw)) and new.raw == old.raw
            new_pos = new.span[1]
        old_pos = end
    assert new_text[new_pos:] == text[old_pos:], "bytes after the last span changed"


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(BLOCK_SEPARATORS))
# Found by hypothesis: a text link and images share the definition [b] (the link moves too).
@pytest.mark.slow(3)
@example(
    "![r1][b] and ![r2][] and ![B]\n\n[b]: ref.png\n[B]: first.png 'title'\n\n"
    "[link](page.md) [ref link][b]\n\n"
)
def test_block_documents_rewrite_exactly_and_idempotently(text: str) -> None:
    result = find_images(text)
    assert result.consistent, result.warnings
    # find_images flags a definition exactly when an image and a text link share it
    shared = shared_labels(plain_parse(without_surrogates(text)))
    assert any(ref.shared_with_link for ref in result.refs) == bool(shared)
    mapping = plan(text)
    new_text = rewrite(text, mapping)
    check_rewrite(text, mapping, new_text)
    if not any(ref.kind == "embed" for ref in mapping):  # embeds become images: renders differ
        assert render(new_text) == render(text)
    assert plan(new_text) == {}  # a second run finds nothing to do
    assert rewrite(new_text, plan(new_text)) == new_text
    assert new_text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape") == (
        new_text
    )


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(ANY_SEPARATORS))
def test_any_documents_never_rewrite_outside_spans(text: str) -> None:
    result = find_images(text)
    if not result.consistent:
        return  # the caller leaves such a note alone; nothing to check
    for ref in result.refs:
        assert text[ref.span[0] : ref.span[1]] == ref.raw
    mapping = plan(text)
    try:
        new_text = rewrite(text, mapping)
    except RewriteError:
        return  # refused: the note stays as it is
    check_rewrite(text, mapping, new_text)
    assert plan(new_text) == {}
