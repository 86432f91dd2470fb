"""Fuzzing find_images with Markdown punctuation: it never raises, every span is exact, and the
notes fuzzing once got wrong are found as mistune finds them.

A random note made of ``![]()<>`\\`` and friends is mostly nonsense, but it is where the scanner's
code-span, escape and raw-HTML handling meets the parser's. Whatever the text, find_images must
return a ScanResult (``consistent=False`` only where scanner and parser really disagree) and never
raise; a ref's span must hold exactly its raw text.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgsync.notes.markdown import RewriteError, find_images, rewrite
from tests.support import examples

PIECES = [
    *"![]()<>`\\\"'*_ \n:|#-=~@",
    "\t",
    "\r\n",
    "\n\n",
    "    ",
    "> ",
    "- ",
    "1. ",
    "```",
    "~~~",
    "a",
    "x.png",
    "![",
    "](",
    "![[",
    "]]",
    "<img src=",
    "<a>",
    "<!--",
    "-->",
    "<!A ",
    "b@c.d",
    "http://x",
    "&amp;",
    "[b]: y.png\n",
    "[b]",
]

notes = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notes)
def test_find_images_never_raises_and_spans_are_exact(text: str) -> None:
    result = find_images(text)
    for ref in result.refs:
        assert text[ref.span[0] : ref.span[1]] == ref.raw
    if result.consistent and result.refs:
        mapping = {ref: f"https://img.example/{i}.png" for i, ref in enumerate(result.refs)}
        with contextlib.suppress(RewriteError):  # refused: the note stays as it is
            rewrite(text, mapping)


# Notes fuzzing found, with the images mistune finds in them.
FOUND = [
    # "<!" starts a declaration only before upper-case letters and a space (mistune), so "<!x" is
    # text and the "]" after it closes the image
    pytest.param("![see <!x](y.png) >", [("inline", "y.png")], id="not-a-declaration"),
    # an e-mail autolink binds tighter than the brackets, and its backtick opens no code span
    pytest.param("![x <a`b@c.d> ](p.png) `", [("inline", "p.png")], id="email-autolink"),
    # an unquoted attribute value takes no "!" (mistune): "<b c=d!](y.png) >" is no tag
    pytest.param("![x <b c=d!](y.png) >](z.png)", [("inline", "y.png")], id="not-a-tag"),
    # the first "<img" is no tag (it is in a code span); the one inside its quoted "value" is
    pytest.param("`<img alt='` <img src=b.png> `'`", [("html", "b.png")], id="img-in-a-failed-tag"),
    # a definition's destination and an <img src> end at one place, so their markers follow each
    # other; the line is no definition, and the <img> is meant
    pytest.param("[b]:<img src=x.png>_<", [("html", "x.png")], id="definition-or-img"),
    # a marker at the end of an inline destination lands in an embed of a note: not an image
    pytest.param("![](![[note |x]]", [], id="marker-in-a-note-embed"),
    # "<img src=>" is no tag; the marker of the angle destination would make one
    pytest.param("![a](<img src=> x", [], id="marker-makes-an-img-tag"),
]


@pytest.mark.parametrize(("text", "refs"), FOUND)
def test_notes_fuzzing_found(text: str, refs: list[tuple[str, str]]) -> None:
    result = find_images(text)
    assert result.consistent, result.warnings
    assert [(ref.kind, ref.target) for ref in result.refs] == refs
