"""The simple-note decider against the parser: whenever it decides, its answer is the parser's.

find_images skips mistune for a note the scanner can decide alone (imgsync.notes.markdown.simple).
The differential tests here take every CommonMark example, every edge-case row, the fragments of
the property and fuzz tests and generated notes, and wherever the simple path decides, compare
its whole ScanResult (spans, kinds, targets, alt texts, line numbers, warnings, consistent) with
the parser's path. The rule tests pin both sides of the line: notes that must be decided without
a parse, and notes that must go to the parser.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgsync.notes.markdown as markdown
from imgsync.notes.markdown import ScanResult, find_images
from imgsync.notes.markdown.scan import propose
from imgsync.notes.markdown.simple import decide_simple
from tests.notes.markdown.test_edge_cases import CASES
from tests.notes.markdown.test_fuzz import FOUND, PIECES
from tests.notes.markdown.test_property import ANY_SEPARATORS, BLOCK_SEPARATORS, FRAGMENTS
from tests.support import examples

SPEC = json.loads(Path(__file__).with_name("commonmark.json").read_text(encoding="utf-8"))


def both_paths(text: str) -> tuple[bool, ScanResult, ScanResult]:
    """Whether the simple path decides ``text``, find_images's result, and the parser's result."""
    decided: list[bool] = []

    def recording(body: str, candidates: list) -> object:
        decision = decide_simple(body, candidates)
        decided.append(decision is not None)
        return decision

    with mock.patch.object(markdown, "_decide_simple", recording):
        result = find_images(text)
    with mock.patch.object(markdown, "_decide_simple", lambda body, candidates: None):
        parsed = find_images(text)
    return bool(decided and decided[0]), result, parsed


def assert_same_when_decided(text: str) -> bool:
    decided, result, parsed = both_paths(text)
    if decided:
        assert result == parsed, text
    return decided


# -------------------------------------------------------------------------- the differential tests


def test_every_commonmark_example_the_simple_path_decides_is_decided_as_the_parser_does() -> None:
    decided, wrong = [], []
    for example in SPEC:
        simple, result, parsed = both_paths(example["markdown"])
        if simple:
            decided.append(example["example"])
            if result != parsed:
                wrong.append(example["example"])
    assert wrong == []
    assert len(decided) >= 15  # the simple path takes some: the comparison is not empty


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_edge_case_row(case) -> None:
    assert_same_when_decided(case.text)


@pytest.mark.parametrize("text", [*FRAGMENTS, *(param.values[0] for param in FOUND)])
def test_every_fragment(text: str) -> None:
    assert_same_when_decided(text)


def test_the_edge_case_rows_are_mostly_decided() -> None:
    decided = sum(both_paths(case.text)[0] for case in CASES)
    assert decided >= len(CASES) // 2


# Pieces of notes of the kinds the simple path admits, and of the kinds that send a note to the
# parser, so that generated notes fall on both sides of the line and along it.
INLINE = [
    "word",
    "two words",
    "*em*",
    "_em_",
    "**b**",
    "`code`",
    "``a`b``",
    "`",
    "[link](http://a.b/c)",
    "![img](x.png)",
    '![a b](<my pic.png> "t")',
    "![c](y.png 't')",
    "![d](z(1).png)",
    "![e]()",
    "![f](<>)",
    "![r1][ref]",
    "![ref]",
    "![ref][]",
    "[text][ref]",
    "[ref]",
    "[other][nope]",
    '<img src="h.png">',
    "<img src='i.png' alt=\"q\">",
    "<IMG SRC=j.png>",
    "![[e.png]]",
    "![[n]]",
    "![[f.png|30]]",
    "<https://a.b>",
    "<a@b.c>",
    "[",
    "]",
    "!",
    "(",
    ")",
    "<span>",
    "[![m](moon.jpg)](/uri)",
    "![o ![p](q.png)](r.png)",
    "[a [b](c) d](e)",
    '![x](a.png\n"t")',
    "![y](\nb.png)",
    "&amp;",
    "café",
    "![z](my_pic.png)",
    "[ ]",
    "![*e*][ref]",
    "`![no](no.png)`",
    "`<img src=no.png>`",
    "![a](x.png)(y)",
]
HAZARDS = ["\\", "<!-- c -->", "<a href=x>", "\t", "<", "|", "[ref]: late.png", ">", "#"]
LINE_STARTS = ["", "", "", "", "# ", "- ", "* ", "1. ", "2. ", "> ", "[ref]: ", "[Ref]: "]
LINE_HAZARDS = ["    ", "  ", "| ", "```\n", "~~~\n", "---\n", "***\n", "=\n", '<img src="b">\n']
DEFINITIONS = ["[ref]: d.png", "[Ref]: <e f.png> 'g'", "[other]: h.png (t)", "[ref]: i.png"]


# Each strategy is made once, here, not inside the drawing functions: a strategy made anew on
# every draw is validated anew each time, which cost these tests more than the notes' checks.
LINE_COUNTS = st.integers(1, 10)
ONE_IN_TEN = st.integers(0, 9)
A_DEFINITION = st.sampled_from(DEFINITIONS)
GLUES = st.sampled_from([" ", ""])
NOTE_PARTS = {
    hazards: (
        st.lists(st.sampled_from(INLINE + HAZARDS if hazards else INLINE), max_size=5),
        st.sampled_from(LINE_STARTS + LINE_HAZARDS if hazards else LINE_STARTS),
        st.sampled_from(["\n", "\n\n", "\n\n", "\r\n"] if hazards else ["\n", "\n\n"]),
    )
    for hazards in (False, True)
}


@st.composite
def notes(draw: st.DrawFn, hazards: bool) -> str:
    """Notes from lines of the pieces above (with ``hazards``: of any shape, line endings
    included)."""
    pieces, starts, endings = NOTE_PARTS[hazards]
    lines = []
    for _ in range(draw(LINE_COUNTS)):
        if draw(ONE_IN_TEN) == 0:
            lines.append(draw(A_DEFINITION))
            continue
        lines.append(draw(starts) + draw(GLUES).join(draw(pieces)))
    return "".join(line + draw(endings) for line in lines)


WORDS = st.lists(st.sampled_from(INLINE), min_size=1, max_size=4)
BLOCK_LINES = st.integers(1, 3)
HEADINGS = st.sampled_from(["# ", "## ", "###### "])
LIST_MARKERS = st.sampled_from(["- ", "* ", "1. ", "3) "])
QUOTE_ENDS = st.sampled_from([False, True])
DEFINITION_BLOCKS = st.lists(A_DEFINITION, min_size=1)
INFO_STRINGS = st.sampled_from(["", "py"])
TAG_LINES = st.lists(st.sampled_from(['<img src="t.png">', "<img src=u.png/>"]))
SHAPES = ("definitions", "fence", "heading", "list", "paragraph", "quote", "table", "tags")
SHAPE_LISTS = st.lists(st.sampled_from(SHAPES), min_size=1, max_size=6)
BLOCK_GAPS = st.sampled_from(["\n\n", "\n\n", "\n\n", "\n"])


@st.composite
def blocks(draw: st.DrawFn) -> str:
    """Notes made of whole blocks of the shapes the simple path reads (paragraphs, headings,
    lists, quotes, definitions, fenced code, tables, tag lines), mostly a blank line apart."""

    def text() -> str:
        return " ".join(draw(WORDS))

    def lines(prefix: str) -> list[str]:
        return [prefix + text() for _ in range(draw(BLOCK_LINES))]

    shapes = {
        "paragraph": lambda: lines(""),
        "heading": lambda: [draw(HEADINGS) + text()],
        "list": lambda: lines(draw(LIST_MARKERS)),
        "quote": lambda: lines("> ") + ([">", *lines("> ")] if draw(QUOTE_ENDS) else []),
        "definitions": lambda: draw(DEFINITION_BLOCKS),
        "fence": lambda: ["```" + draw(INFO_STRINGS), *lines(""), "```"],
        "table": lambda: ["| a | b |", "|---|---|", f"| {text()} | c |"],
        "tags": lambda: draw(TAG_LINES),
    }
    parts = []
    for shape in draw(SHAPE_LISTS):
        parts.append("\n".join(shapes[shape]()) or "x")
        parts.append(draw(BLOCK_GAPS))
    return "".join(parts)


@pytest.mark.slow(4)
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks())
def test_generated_block_notes(text: str) -> None:
    assert_same_when_decided(text)


@pytest.mark.slow(4)
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notes(hazards=False))
def test_generated_simple_notes(text: str) -> None:
    assert_same_when_decided(text)


@pytest.mark.slow(5)
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notes(hazards=True))
def test_generated_notes_with_hazards(text: str) -> None:
    assert_same_when_decided(text)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(BLOCK_SEPARATORS + ANY_SEPARATORS)),
        min_size=1,
        max_size=8,
    ).map(lambda parts: "".join(f + s for f, s in parts))
)
def test_generated_fragment_documents(text: str) -> None:
    assert_same_when_decided(text)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_generated_punctuation(text: str) -> None:
    assert_same_when_decided(text)


def test_generated_simple_notes_are_often_decided() -> None:
    # The comparisons above are only worth something where the simple path decides: a fixed
    # sample of blocks made of the same pieces must be decided often (a third of it is; the
    # notes not decided hold no image, or a construct the simple path leaves to the parser).
    rnd = random.Random(7)
    texts = [
        "\n\n".join(
            rnd.choice(LINE_STARTS) + " ".join(rnd.choice(INLINE) for _ in range(rnd.randint(0, 4)))
            for _ in range(rnd.randint(1, 8))
        )
        + "\n\n"
        + rnd.choice(DEFINITIONS)
        + "\n"
        for _ in range(300)
    ]
    decided = sum(assert_same_when_decided(text) for text in texts)
    assert decided >= len(texts) // 4


# -------------------------------------------------------------------------- where the line runs

DECIDED = {
    "paragraphs": "# Title\n\nText with ![a](x.png) and *more*.\n\nAnd `code ![b](no.png)` here.\n",
    "every-kind": (
        'Intro ![a](a.png "t") ![b](<b c.png>) ![r][ref] <img src="d.png" width=3> ![[e.png|30]]\n'
        "\n[ref]: r.png\n"
    ),
    "fenced-code": "Before:\n```python\nx = '![no](no.png)'\n```\n\n![yes](yes.png)\n",
    "list-and-quote": "- item ![a](a.png)\n- [ ] task ![b](b.png)\n\n> quoted ![c](c.png)\n",
    "table-apart": "| a | b |\n|---|---|\n| `c` | [d](e) |\n\n![x](x.png)\n",
    "tag-lines": '<img src="a.png" />\n<IMG SRC=b.png>\n\ntext\n',
    "crlf": "# T\r\n\r\n![a](a.png)\r\n\r\n[r]: b.png\r\n\r\n![r]\r\n",
    "image-in-link": "[![m](moon.jpg)](/uri) and ![o ![p](q.png)](r.png)\n",
    "shared-definition": "![a][r] and [a link][r]\n\n[r]: x.png\n",
}

UNDECIDED = {
    "indented-code": "Text\n\n    ![a](code.png)\n",
    "list-continuation": "- item\n\n  ![a](x.png)\n",
    "html-block": "<div>\n![a](x.png)\n</div>\n",
    "comment-over-blank-lines": "<!--\n\n![a](x.png)\n\n-->\n",
    "fence-inside-html-block": "<div>\ntext\n```\n<img src=a.png>\n```\n</div>\n",
    "lazy-continuation": "> quote\n![a](x.png)\n",
    "setext-heading": "Title\n=-=\n![a](x.png)\n",
    "title-on-next-line": '[r]: x.png\n"title"\n\n![r]\n',
    "escape": "![a](x\\(1\\).png)\n",
    "footnote": "Text[^1] ![a](x.png)\n\n[^1]: note\n",
    "multi-line-label": "[a\nb]: x.png\n\n![a b]\n",
    "anchor-tag": '<a href="x">![a](x.png)</a>\n',
    "link-to-the-definition-in-a-table": "| [t][r] |\n|---|\n\n![a][r]\n\n[r]: x.png\n",
    "alt-with-markup": "![*a*][r]\n\n[r]: x.png\n",
    "type-7-html-block": '<img src="a.png">\n![b](b.png)\n',
    "ordered-list-interrupting": "Text\n2. ![a](x.png)\n",
}


@pytest.mark.parametrize("text", DECIDED.values(), ids=DECIDED.keys())
def test_simple_notes_are_decided_without_a_parse(monkeypatch, text: str) -> None:
    expected = both_paths(text)[2]
    monkeypatch.setattr(markdown, "_parse", lambda marked: pytest.fail("parsed"))
    assert find_images(text) == expected
    assert expected.consistent and expected.refs


@pytest.mark.parametrize("text", UNDECIDED.values(), ids=UNDECIDED.keys())
def test_other_notes_go_to_the_parser(text: str) -> None:
    assert decide_simple(text, propose(text)) is None
    assert not both_paths(text)[0]
