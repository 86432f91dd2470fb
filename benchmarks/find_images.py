"""Finding image references (``markdown.find_images``) against a bare mistune parse of the notes.

find_images proposes candidates with a scanner, parses a marked copy of the note once and checks
the result (docs/markdown-rules.md). The parse is the floor of what any correct finder costs, so
the figure that matters is the ratio: find_images over a realistic generated corpus, against
``mistune.create_markdown`` with the same plugins (renderer=None: the AST only), timed in the same
run, alternating. Each figure is the CPU time of the fastest of several rounds: both are
single-threaded and CPU-bound, and the minimum is the estimate least disturbed by other processes
on a shared machine.

Prints both times and the ratio (target: <= 1.5), over the whole corpus and over the notes that
hold images alone (find_images does not parse a note without ``![`` or ``<img`` at all, so the
whole corpus flatters it; the second figure is the honest worst case).

Run: ``.venv/bin/python benchmarks/find_images.py [--notes N] [--rounds N]``
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable

TARGET_RATIO = 1.5
DEFAULT_NOTES = 1_000
DEFAULT_ROUNDS = 9
SEED = 20_251_126
# Share of notes without any image: most notes in a real vault are text only.
TEXT_ONLY_SHARE = 0.35

WORDS = (
    "the",
    "a",
    "note",
    "image",
    "sync",
    "upload",
    "link",
    "markdown",
    "folder",
    "vault",
    "editor",
    "paste",
    "chart",
    "sunset",
    "diagram",
    "because",
    "which",
    "meeting",
    "project",
    "plan",
    "idea",
    "todo",
    "review",
    "draft",
    "version",
    "release",
    "cache",
    "parse",
    "line",
    "中文",
    "笔记",
    "图片",
    "上传",
    "café",
    "naïve",
    "résumé",
)


def sentence(rnd: random.Random) -> str:
    words = [rnd.choice(WORDS) for _ in range(rnd.randint(6, 18))]
    if rnd.random() < 0.3:
        i = rnd.randrange(len(words))
        words[i] = f"*{words[i]}*"
    if rnd.random() < 0.2:
        i = rnd.randrange(len(words))
        words[i] = f"`{words[i]}()`"
    if rnd.random() < 0.2:
        words.append(f"[{rnd.choice(WORDS)}](https://example.com/{rnd.randrange(999)})")
    return " ".join(words).capitalize() + "."


def image(rnd: random.Random, n: int) -> tuple[str, str | None]:
    """One image reference in one of the forms notes use; and a definition line if it needs one."""
    name = f"{rnd.choice(['img', 'assets', 'attachments'])}/pic {n}-{rnd.randrange(99)}.png"
    kind = rnd.random()
    if kind < 0.45:
        return f"![{rnd.choice(WORDS)}]({name.replace(' ', '%20')})", None
    if kind < 0.55:
        return f'![{rnd.choice(WORDS)}](<{name}> "a title")', None
    if kind < 0.65:
        return f"![{rnd.choice(WORDS)}][ref{n}]", f"[ref{n}]: <{name}>"
    if kind < 0.8:
        return f'<img src="{name}" alt="x" style="zoom:50%;" />', None
    if kind < 0.9:
        return f"![[pic {n}.png|300]]", None
    return f"![remote](https://example.com/i/{n}.jpg)", None


def note(rnd: random.Random, with_images: bool) -> str:
    parts: list[str] = []
    definitions: list[str] = []
    if rnd.random() < 0.3:
        parts.append(f"---\ntitle: {sentence(rnd)}\ntags: [a, b]\n---\n")
    parts.append(f"# {sentence(rnd)}\n")
    for block in range(rnd.randint(4, 14)):
        kind = rnd.random()
        if kind < 0.45:
            parts.append(" ".join(sentence(rnd) for _ in range(rnd.randint(1, 5))) + "\n")
        elif kind < 0.6:
            items = [f"- {sentence(rnd)}" for _ in range(rnd.randint(2, 6))]
            parts.append("\n".join(items) + "\n")
        elif kind < 0.7:
            comment = "![not](img/code.png)" if rnd.random() < 0.3 else "not an image"
            code = "\n".join(f"    x = {i}  # {comment}" for i in range(3))
            parts.append(f"```python\n{code}\n```\n")
        elif kind < 0.78:
            parts.append("| a | b |\n|---|---|\n" + f"| {sentence(rnd)} | `c` |\n" * 3)
        elif kind < 0.85:
            parts.append(f"> {sentence(rnd)}\n> {sentence(rnd)}\n")
        elif kind < 0.9:
            parts.append(f"## {sentence(rnd)}\n")
        elif with_images:
            ref, definition = image(rnd, block)
            parts.append(f"{sentence(rnd)} {ref}\n" if rnd.random() < 0.5 else ref + "\n")
            if definition:
                definitions.append(definition)
        if with_images and rnd.random() < 0.25:
            ref, definition = image(rnd, 100 + block)
            parts.append(ref + "\n")
            if definition:
                definitions.append(definition)
    if definitions:
        parts.append("\n".join(definitions) + "\n")
    return "\n".join(parts)


def corpus(count: int) -> list[str]:
    rnd = random.Random(SEED)
    return [note(rnd, rnd.random() >= TEXT_ONLY_SHARE) for _ in range(count)]


def timed(func: Callable[[str], object], notes: list[str]) -> float:
    gc.collect()
    start = time.process_time()
    for text in notes:
        func(text)
    return time.process_time() - start


def measure(
    notes: list[str], rounds: int, finder: Callable[[str], object], parse: Callable[[str], object]
) -> tuple[float, float]:
    find_times: list[float] = []
    parse_times: list[float] = []
    for round_no in range(rounds):
        pair = [(find_times, finder), (parse_times, parse)]
        if round_no % 2:
            pair.reverse()
        for sink, func in pair:
            sink.append(timed(func, notes))
    return min(find_times), min(parse_times)


def main() -> int:
    import mistune

    from imgsync.notes.markdown import DIALECT_PLUGINS, _embed_plugin, find_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=DEFAULT_NOTES)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()

    bare = mistune.create_markdown(renderer=None, plugins=[*DIALECT_PLUGINS, _embed_plugin])
    notes = corpus(args.notes)
    with_images = [text for text in notes if "![" in text or "<img" in text]
    refs = sum(len(find_images(text).refs) for text in notes)
    inconsistent = sum(not find_images(text).consistent for text in notes)
    for text in notes[:20]:  # warm both up
        find_images(text)
        bare(text)

    size = sum(len(text.encode()) for text in notes)
    print(
        f"corpus: {len(notes)} notes, {size / 1e6:.1f} MB, {len(with_images)} with images, "
        f"{refs} image references ({inconsistent} notes failing the cross-check)"
    )
    print(f"rounds: {args.rounds} (CPU time of the fastest round, alternating)")
    verdict = True
    for label, subset in (("all notes", notes), ("notes with images", with_images)):
        found, parsed = measure(subset, args.rounds, find_images, bare)
        ratio = found / parsed
        print(
            f"{label:>18}: find_images {found * 1e3:8.1f} ms   bare mistune parse "
            f"{parsed * 1e3:8.1f} ms   ratio {ratio:.2f}"
        )
        verdict = verdict and ratio <= TARGET_RATIO
    print(f"target: ratio <= {TARGET_RATIO} for both: {'met' if verdict else 'MISSED'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
