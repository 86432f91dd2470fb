"""Every row of the edge-case table in docs/markdown-rules.md, with the exact bytes expected.

Each case gives a note, the references the scanner must find (kind, target), the new URL for some
targets, and the exact text after the rewrite. Resolution-related rows (encodings, data URIs,
remote, Obsidian lookup, Typora) are also covered end to end in test_resolve.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from imgsync.notes.markdown import ImageRef, find_images, format_destination, rewrite

H = "https://img.example/"


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    refs: list[tuple[str, str]]  # (kind, target) in document order
    urls: dict[str, str] = field(default_factory=dict)  # target -> new URL
    expected: str | None = None  # None: the text must stay byte-identical


def apply(text: str, urls: dict[str, str]) -> str:
    result = find_images(text)
    assert result.consistent, result.warnings
    mapping = {ref: urls[ref.target] for ref in result.refs if ref.target in urls}
    return rewrite(text, mapping)


CASES = [
    # titles: the destination changes, the title and spacing stay -------------------------------
    Case(
        "title-double",
        '![a](x.png "t")',
        [("inline", "x.png")],
        {"x.png": H + "1.png"},
        '![a](https://img.example/1.png "t")',
    ),
    Case(
        "title-single",
        "![a](x.png 't')",
        [("inline", "x.png")],
        {"x.png": H + "1.png"},
        "![a](https://img.example/1.png 't')",
    ),
    Case(
        "title-paren",
        "![a](x.png (t))",
        [("inline", "x.png")],
        {"x.png": H + "1.png"},
        "![a](https://img.example/1.png (t))",
    ),
    Case(
        "title-next-line",
        '![a](x.png\n  "t")\n',
        [("inline", "x.png")],
        {"x.png": H + "1.png"},
        '![a](https://img.example/1.png\n  "t")\n',
    ),
    Case(
        "destination-next-line",
        '![a](\n  x.png "t")\n',
        [("inline", "x.png")],
        {"x.png": H + "1.png"},
        '![a](\n  https://img.example/1.png "t")\n',
    ),
    Case(
        "spacing-kept",
        '![a](   x.png   "t"   )',
        [("inline", "x.png")],
        {"x.png": H + "1.png"},
        '![a](   https://img.example/1.png   "t"   )',
    ),
    Case(
        "reference-title-next-line",
        '![a]\n\n[a]: x.png\n  "t"\n',
        [("reference", "x.png")],
        {"x.png": H + "1.png"},
        '![a]\n\n[a]: https://img.example/1.png\n  "t"\n',
    ),
    # angle destinations keep their brackets ----------------------------------------------------
    Case(
        "angle-space",
        "![b](<my pic.png>)",
        [("inline", "my pic.png")],
        {"my pic.png": H + "my pic.png"},
        "![b](<https://img.example/my%20pic.png>)",
    ),
    Case(
        "angle-paren",
        "![a](<b)c.png>)",
        [("inline", "b)c.png")],
        {"b)c.png": H + "b)c.png"},
        "![a](<https://img.example/b)c.png>)",
    ),
    # empty destinations are found (so they can be reported) but never rewritten ----------------
    Case("empty", "![a]()", [("inline", "")]),
    Case("empty-angle", "![b](<>)", [("inline", "")]),
    # escapes and parentheses --------------------------------------------------------------------
    Case(
        "escaped-parens",
        "![c](a\\(1\\).png)",
        [("inline", "a(1).png")],
        {"a(1).png": H + "a(1).png"},
        "![c](https://img.example/a\\(1\\).png)",
    ),
    Case(
        "balanced-parens",
        "![d](foo(bar).png)",
        [("inline", "foo(bar).png")],
        {"foo(bar).png": H + "2.png"},
        "![d](https://img.example/2.png)",
    ),
    # images in footnotes, headings, and HTML inside a link ------------------------------------
    Case(
        "footnote-image",
        "text[^1]\n\n[^1]: ![a](fn.png)\n",
        [("inline", "fn.png")],
        {"fn.png": H + "fn.png"},
        "text[^1]\n\n[^1]: ![a](https://img.example/fn.png)\n",
    ),
    Case(
        "heading-image",
        "# H ![h](h.png)\n",
        [("inline", "h.png")],
        {"h.png": H + "h.png"},
        "# H ![h](https://img.example/h.png)\n",
    ),
    Case(
        "html-in-link",
        '[<img src="a.png">](u.png)',
        [("html", "a.png")],
        {"a.png": H + "a.png", "u.png": H + "never"},
        '[<img src="https://img.example/a.png">](u.png)',
    ),
    # not images ---------------------------------------------------------------------------------
    Case("unbalanced-paren", "![a](foo(bar.png)", []),
    Case("space-in-bare-destination", "![a](my pic.png)", []),
    Case("escaped-bang", "\\![a](x.png)", []),
    Case("escaped-bracket", "!\\[b](y.png)", []),
    # nested brackets ----------------------------------------------------------------------------
    Case(
        "nested-link-in-alt",
        "![foo [bar](/x) *baz*](n.png)",
        [("inline", "n.png")],
        {"n.png": H + "n.png", "/x": H + "never.png"},
        "![foo [bar](/x) *baz*](https://img.example/n.png)",
    ),
    Case(
        "code-span-in-alt",
        "![a `]` b](x.png)",
        [("inline", "x.png")],
        {"x.png": H + "x.png"},
        "![a `]` b](https://img.example/x.png)",
    ),
    Case(
        # After the escaped backtick, "``" is a run of its own (shorter than the "```" in the
        # text); it opens no code span, and the image is found as mistune finds it.
        "escaped-backtick-then-shorter-run-in-alt",
        "![a `x \\```](y.png)",
        [("inline", "y.png")],
        {"y.png": H + "y.png"},
        "![a `x \\```](https://img.example/y.png)",
    ),
    Case(
        # the first code span, before any bracket is open, hides a "[" from the image's "]"
        "code-span-with-a-bracket-before-the-image",
        "Type `![` to start an image: ![demo](demo.png), then `]`.",
        [("inline", "demo.png")],
        {"demo.png": H + "demo.png"},
        "Type `![` to start an image: ![demo](https://img.example/demo.png), then `]`.",
    ),
    Case(
        # the heading's backtick opens no code span that runs past the image on the next line
        "backtick-in-a-heading-before-the-image",
        "# Title `x\n![a](x.png) and `y`\n",
        [("inline", "x.png")],
        {"x.png": H + "x.png"},
        "# Title `x\n![a](https://img.example/x.png) and `y`\n",
    ),
    # an image inside a link: never the link's destination --------------------------------------
    Case(
        "image-in-link",
        "[![m](moon.jpg)](/uri)",
        [("inline", "moon.jpg")],
        {"moon.jpg": H + "moon.jpg", "/uri": H + "never"},
        "[![m](https://img.example/moon.jpg)](/uri)",
    ),
    # references: the first matching definition, labels case-folded ----------------------------
    Case(
        "full-reference",
        "![a][b]\n\n[b]: x.png\n",
        [("reference", "x.png")],
        {"x.png": H + "x.png"},
        "![a][b]\n\n[b]: https://img.example/x.png\n",
    ),
    Case(
        "collapsed-reference",
        "![a][]\n\n[a]: x.png\n",
        [("reference", "x.png")],
        {"x.png": H + "x.png"},
        "![a][]\n\n[a]: https://img.example/x.png\n",
    ),
    Case(
        "shortcut-case-folded",
        "![a]\n\n[A]: x.png\n",
        [("reference", "x.png")],
        {"x.png": H + "x.png"},
        "![a]\n\n[A]: https://img.example/x.png\n",
    ),
    Case(
        "first-definition-wins",
        "![a][B] ![c][b]\n\n[b]: x.png\n[B]: y.png\n",
        [("reference", "x.png")],
        {"x.png": H + "x.png", "y.png": H + "never"},
        "![a][B] ![c][b]\n\n[b]: https://img.example/x.png\n[B]: y.png\n",
    ),
    Case(
        "definition-in-quote",
        "![q]\n\n> [q]: q.png\n",
        [("reference", "q.png")],
        {"q.png": H + "q.png"},
        "![q]\n\n> [q]: https://img.example/q.png\n",
    ),
    Case(
        "definition-destination-next-line",
        "![l]\n\n[l]:\n   <l l.png>\n",
        [("reference", "l l.png")],
        {"l l.png": H + "l.png"},
        "![l]\n\n[l]:\n   <https://img.example/l.png>\n",
    ),
    Case("unused-definition", "[b]: x.png\n", []),
    Case("definition-used-by-link-only", "[t][b]\n\n[b]: x.png\n", []),
    # code is never touched ----------------------------------------------------------------------
    Case("inline-code", "`![a](x.png)`", []),
    Case("fenced-backticks", "```\n![a](x.png)\n```\n", []),
    Case("fenced-tildes", "~~~\n![a](x.png)\n~~~\n", []),
    Case("indented-code", "    ![a](x.png)\n", []),
    Case("fence-in-quote", "> ```\n> ![a](x.png)\n> ```\n", []),
    Case("fence-in-list", "- item\n\n  ```\n  ![a](x.png)\n  ```\n", []),
    # a paragraph inside a list item is not code ---------------------------------------------
    Case(
        "list-paragraph",
        "- item\n\n    ![a](x.png)\n",
        [("inline", "x.png")],
        {"x.png": H + "x.png"},
        "- item\n\n    ![a](https://img.example/x.png)\n",
    ),
    # HTML: the src value, quotes kept or added ----------------------------------------------
    Case(
        "html-double",
        '<img src="a.png">',
        [("html", "a.png")],
        {"a.png": H + "a.png"},
        '<img src="https://img.example/a.png">',
    ),
    Case(
        "html-upper-single",
        "<IMG SRC='a.png'>",
        [("html", "a.png")],
        {"a.png": H + "a.png"},
        "<IMG SRC='https://img.example/a.png'>",
    ),
    Case(
        "html-unquoted",
        "<img src=a.png>",
        [("html", "a.png")],
        {"a.png": H + "a.png"},
        "<img src=https://img.example/a.png>",
    ),
    Case(
        "html-unquoted-needs-quotes",
        "<img src=a.png>",
        [("html", "a.png")],
        {"a.png": H + "a.png?w=1"},
        '<img src="https://img.example/a.png?w=1">',
    ),
    Case(
        "html-typora-zoom",
        '<img src="a.png" style="zoom:50%;" />',
        [("html", "a.png")],
        {"a.png": H + "a.png"},
        '<img src="https://img.example/a.png" style="zoom:50%;" />',
    ),
    Case(
        "html-block",
        '<div align="center">\n<img src="a.png" width="300">\n</div>\n',
        [("html", "a.png")],
        {"a.png": H + "a.png"},
        '<div align="center">\n<img src="https://img.example/a.png" width="300">\n</div>\n',
    ),
    Case(
        "html-entity-and-ampersand",
        '<img src="a&amp;b.png">',
        [("html", "a&b.png")],
        {"a&b.png": H + "x.png?a=1&b=2"},
        '<img src="https://img.example/x.png?a=1&amp;b=2">',
    ),
    Case(
        "html-single-quote-in-url",
        "<img src='a.png'>",
        [("html", "a.png")],
        {"a.png": H + "it's.png"},
        "<img src='https://img.example/it%27s.png'>",
    ),
    # comments and Markdown inside an HTML block are left alone ------------------------------
    Case("comment-markdown", "<!-- ![a](c.png) -->\n", []),
    Case("comment-html", 'text <!-- <img src="c.png"> --> text\n', []),
    Case("markdown-in-html-block", "<div>\n![a](x.png)\n</div>\n", []),
    # encodings: targets decoded for lookup (escapes, entities), never percent-decoded here ----
    Case(
        "percent-20",
        "![a](my%20pic.png)",
        [("inline", "my%20pic.png")],
        {"my%20pic.png": H + "1.png"},
        "![a](https://img.example/1.png)",
    ),
    Case(
        "raw-chinese",
        "![图](图片/截图.png)",
        [("inline", "图片/截图.png")],
        {"图片/截图.png": H + "1.png"},
        "![图](https://img.example/1.png)",
    ),
    Case(
        "percent-chinese",
        "![a](%E5%9B%BE.png)",
        [("inline", "%E5%9B%BE.png")],
        {"%E5%9B%BE.png": H + "1.png"},
        "![a](https://img.example/1.png)",
    ),
    Case(
        "entity",
        "![a](a&amp;b.png)",
        [("inline", "a&b.png")],
        {"a&b.png": H + "1.png"},
        "![a](https://img.example/1.png)",
    ),
    Case(
        "windows-path",
        "![a](C:\\pics\\a.png)",
        [("inline", "C:\\pics\\a.png")],
        {"C:\\pics\\a.png": H + "1.png"},
        "![a](https://img.example/1.png)",
    ),
    Case(
        "windows-path-angle",
        "![a](<C:\\My Pics\\a.png>)",
        [("inline", "C:\\My Pics\\a.png")],
        {"C:\\My Pics\\a.png": H + "1.png"},
        "![a](<https://img.example/1.png>)",
    ),
    Case(
        "file-url",
        "![a](file:///tmp/pics/a.png)",
        [("inline", "file:///tmp/pics/a.png")],
        {"file:///tmp/pics/a.png": H + "1.png"},
        "![a](https://img.example/1.png)",
    ),
    Case(
        "url-encoded-once",
        "![a](x.png)",
        [("inline", "x.png")],
        {"x.png": H + "a%20b c%zz.png"},
        "![a](https://img.example/a%20b%20c%25zz.png)",
    ),
    Case(
        "url-with-entity-like-text",
        "![a](x.png)",
        [("inline", "x.png")],
        {"x.png": H + "x.png?a&copy;"},
        "![a](https://img.example/x.png?a\\&copy;)",
    ),
    # data URIs and remote URLs are found (resolution decides what to do) --------------------
    Case(
        "data-uri",
        "![d](data:image/png;base64,iVBORw0KGgo=)",
        [("inline", "data:image/png;base64,iVBORw0KGgo=")],
    ),
    Case(
        "remote",
        "![r](https://example.com/r.png) ![s](//cdn.example.com/s.png)",
        [("inline", "https://example.com/r.png"), ("inline", "//cdn.example.com/s.png")],
        {"https://example.com/r.png": H + "r.png"},
        "![r](https://img.example/r.png) ![s](//cdn.example.com/s.png)",
    ),
    # Obsidian embeds: images only, the whole embed becomes ![alt](url) ------------------------
    Case(
        "embed",
        "![[a.png]]",
        [("embed", "a.png")],
        {"a.png": H + "a.png"},
        "![](https://img.example/a.png)",
    ),
    Case(
        "embed-size",
        "![[a.png|300]]",
        [("embed", "a.png")],
        {"a.png": H + "a.png"},
        "![300](https://img.example/a.png)",
    ),
    Case(
        "embed-anchor",
        "![[a.png#x]]",
        [("embed", "a.png")],
        {"a.png": H + "a.png"},
        "![](https://img.example/a.png)",
    ),
    Case(
        "embed-in-table",
        "| a | b |\n|---|---|\n| ![[t.png\\|300]] | x |\n",
        [("embed", "t.png")],
        {"t.png": H + "t.png"},
        "| a | b |\n|---|---|\n| ![300](https://img.example/t.png) | x |\n",
    ),
    Case("embed-note", "![[Note]]", []),
    Case("embed-pdf", "![[doc.pdf]]", []),
    Case("embed-in-code", "`![[a.png]]`", []),
    Case("embed-alias-escaped", "![[a.png|a *b* [c]]]", []),  # "]" cannot be in an embed
    Case(
        "embed-alias-special",
        "![[a.png|x_y*z]]",
        [("embed", "a.png")],
        {"a.png": H + "a.png"},
        "![x\\_y\\*z](https://img.example/a.png)",
    ),
    # Typora: front matter is never rewritten and typora-root-url is read from it --------------
    Case(
        "front-matter",
        "---\ntypora-root-url: ../assets\ncover: ![a](c.png)\n---\n![a](/x.png)\n",
        [("inline", "/x.png")],
        {"/x.png": H + "x.png", "c.png": H + "never"},
        "---\ntypora-root-url: ../assets\ncover: ![a](c.png)\n---\n![a](https://img.example/x.png)\n",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_edge_case(case: Case) -> None:
    result = find_images(case.text)
    assert result.consistent, result.warnings
    assert [(ref.kind, ref.target) for ref in result.refs] == case.refs
    for ref in result.refs:
        assert case.text[ref.span[0] : ref.span[1]] == ref.raw
    expected = case.text if case.expected is None else case.expected
    assert apply(case.text, case.urls) == expected


def test_a_second_run_changes_nothing() -> None:
    for case in CASES:
        once = apply(case.text, case.urls)
        hosted = {ref.target: ref.target for ref in find_images(once).refs if ref.target}
        # Pointing every reference at the URL it already has is a no-op.
        assert apply(once, hosted) == once, case.id


def test_front_matter_pairs() -> None:
    result = find_images('---\ntitle: "A: b"\ntypora-root-url: ../assets # c\n---\n![a](x.png)\n')
    assert result.front_matter == {"title": "A: b", "typora-root-url": "../assets"}
    assert find_images("no front matter").front_matter is None
    assert find_images("---\nnot: closed\n![a](x.png)\n").front_matter is None


def test_spans_alt_line_and_flags() -> None:
    text = 'x\n![alt *t*](<a b.png> "t")\n<img alt="A" src=\'q.png\'>\n![[e.png|200]]\n'
    refs = find_images(text).refs
    assert [(ref.kind, ref.alt, ref.line, ref.angle, ref.quote) for ref in refs] == [
        ("inline", "alt *t*", 2, True, ""),
        ("html", "A", 3, False, "'"),
        ("embed", "200", 4, False, ""),
    ]
    assert [text[ref.span[0] : ref.span[1]] for ref in refs] == [
        "a b.png",
        "q.png",
        "![[e.png|200]]",
    ]


def test_one_definition_used_by_many_images_is_reported_once() -> None:
    text = "![a][x] ![b][x] ![c][X]\n\n[x]: x.png\n"
    refs = find_images(text).refs
    assert len(refs) == 1
    assert (refs[0].kind, refs[0].raw, refs[0].alt, refs[0].line) == ("reference", "x.png", "a", 3)


def test_definition_shared_with_a_text_link_is_rewritten_with_a_warning() -> None:
    text = "![a][b] and [a link][b]\n\n[b]: x.png\n"
    result = find_images(text)
    assert result.consistent
    assert [ref.target for ref in result.refs] == ["x.png"]
    assert len(result.warnings) == 1
    assert "line 3" in result.warnings[0] and "text link" in result.warnings[0]
    assert [ref.shared_with_link for ref in result.refs] == [True]
    assert apply(text, {"x.png": H + "x.png"}) == (
        "![a][b] and [a link][b]\n\n[b]: https://img.example/x.png\n"
    )


def test_only_a_definition_a_text_link_uses_is_flagged_as_shared() -> None:
    text = "![a][b] ![c][d] [link][D] [e](f.png)\n\n[b]: x.png\n[d]: y.png\n[d]: z.png\n"
    result = find_images(text)
    assert [(ref.target, ref.shared_with_link) for ref in result.refs] == [
        ("x.png", False),
        ("y.png", True),
    ]
    assert len(result.warnings) == 1 and "line 4" in result.warnings[0]
    assert not any(ref.shared_with_link for ref in find_images("![a](x.png) [l](x.png)").refs)


def test_crlf_and_no_final_newline() -> None:
    text = "line\r\n![a](x.png)\r\n\r\n[r]: <y y.png>\r\n![r]"
    result = find_images(text)
    assert [(ref.target, ref.line) for ref in result.refs] == [("x.png", 2), ("y y.png", 4)]
    assert apply(text, {"x.png": H + "x.png", "y y.png": H + "y.png"}) == (
        "line\r\n![a](https://img.example/x.png)\r\n\r\n[r]: <https://img.example/y.png>\r\n![r]"
    )


def test_invalid_utf8_survives_around_and_inside_destinations() -> None:
    raw = b"caf\xe9 ![a](x\xff.png) \xfe\n![b](y.png)\n"
    text = raw.decode("utf-8", "surrogateescape")
    result = find_images(text)
    assert result.consistent
    assert [ref.target for ref in result.refs] == ["x\udcff.png", "y.png"]
    new = apply(text, {"y.png": H + "y.png"})
    assert new.encode("utf-8", "surrogateescape") == (
        b"caf\xe9 ![a](x\xff.png) \xfe\n![b](https://img.example/y.png)\n"
    )


def test_rewrite_refuses_stale_or_overlapping_refs() -> None:
    text = "![a](x.png)"
    ref = find_images(text).refs[0]
    with pytest.raises(ValueError, match="stale"):
        rewrite("![a](y.png)", {ref: H + "x.png"})
    other = ImageRef("inline", (4, 8), "(x.p", "", "", 1)
    with pytest.raises(ValueError, match="overlapping|stale"):
        rewrite(text, {ref: H + "1.png", other: H + "2.png"})
    with pytest.raises(ValueError, match="empty URL"):
        format_destination(ref, "")


@pytest.mark.parametrize("scanned", [False, True], ids=["rescanned", "refs-given"])
def test_rewrite_refuses_a_change_of_structure(scanned: bool) -> None:
    # The line is no reference definition only because of the space in "<my pic.png>"; with the
    # space gone it would become one and swallow the images on it. The rewrite must refuse, also
    # when the caller hands over its own scan of the text (the sync's way).
    text = "[B]: x.pngx![b](<my pic.png>)\n![x]\n"
    result = find_images(text)
    assert result.consistent
    mapping = {ref: H + "p.png" for ref in result.refs}
    with pytest.raises(ValueError, match="change which images"):
        rewrite(text, mapping, refs=result.refs if scanned else None)


def test_a_missed_image_makes_the_note_inconsistent() -> None:
    # The destination alone on its line is "---": a marker there would turn a thematic break
    # into text, so the scanner does not propose it, and the cross-check must notice the image
    # the parser sees rather than let the note be rewritten partially.
    text = "![y]\n\n[y]:\n---\n"
    result = find_images(text)
    assert result.refs == []
    assert not result.consistent
    assert "cross-check failed" in result.warnings[0]
