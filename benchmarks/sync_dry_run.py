"""``imgsync sync --dry-run`` over image-rich notes, against a bare mistune parse of the same notes.

A dry run reads every note, finds its images (markdown.find_images), resolves each one to a file
and reports what a sync would do, without a request or a write. Parsing the notes is the floor of
what any tool that understands Markdown must do, so the baseline is a fresh process that walks the
same vault, reads every note and parses it with a bare mistune of the same dialect (GFM tables,
footnotes, Obsidian embeds; the AST only). Both run as fresh processes (interpreter start-up
included in both), alternating, ROUNDS times; the figure is the median wall time (the median CPU
time of the processes is printed too: it is steadier when other work shares the machine).

The vault: NOTES notes, each with several image references of every kind (inline, inline in angle
brackets with a title, by reference, ``<img>``, Obsidian embed, remote), among text like the
find_images benchmark's (emphasis, links, inline code, lists, fenced code, tables, quotes). The
local images exist, so every reference resolves as in a real vault. The dry run's JSON is checked
once: every note scanned consistently, every reference found.

Prints both medians and the ratio (target: <= 1.5).

Run: ``.venv/bin/python benchmarks/sync_dry_run.py [--notes N] [--rounds N]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from find_images import WORDS, sentence
from noop_resync import config, imgsync_command, png, timed

TARGET_RATIO = 1.5
DEFAULT_NOTES = 2_000
DEFAULT_ROUNDS = 7
NOTES_PER_FOLDER = 100
# Local image files; a name with a space needs an angle destination or %20.
IMAGES = 200
SEED = 2_000
# Each note holds every kind of reference at least once, and this many rounds of them.
MIN_IMAGE_ROUNDS = 1
MAX_IMAGE_ROUNDS = 3
# Text blocks between the images of a note.
MIN_TEXT_BLOCKS = 4
MAX_TEXT_BLOCKS = 10
# The baseline: read and parse every note, as the dry run does, with nothing else.
BASELINE = """
import os, sys
import mistune
from imgsync.notes.markdown.parse import DIALECT_PLUGINS, embed_plugin
parse = mistune.create_markdown(renderer=None, plugins=[*DIALECT_PLUGINS, embed_plugin])
for folder, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith((".md", ".markdown")):
            with open(os.path.join(folder, name), "rb") as handle:
                parse(handle.read().decode("utf-8", "surrogateescape"))
"""


def image_name(n: int) -> str:
    return f"shot {n:03d}.png" if n % 4 == 0 else f"pic-{n:03d}.png"


def images_block(rnd: random.Random, serial: int) -> tuple[list[str], list[str]]:
    """One reference of every kind (lines of the note) and the definitions they need."""

    def name() -> str:
        return image_name(rnd.randrange(IMAGES))

    def word() -> str:
        return rnd.choice(WORDS)

    label = f"fig{serial}"
    lines = [
        f"{sentence(rnd)} ![{word()}](../assets/{name().replace(' ', '%20')}) {sentence(rnd)}",
        f'![{word()} {word()}](<../assets/{name()}> "{word()}")',
        f"{sentence(rnd)} ![{word()}][{label}]",
        f'<img src="../assets/{name()}" alt="{word()}" style="zoom:50%;" />',
        f"![[{name()}|300]]",
        f"- {sentence(rnd)} ![{word()}](https://example.com/i/{serial}.jpg)",
    ]
    return lines, [f"[{label}]: ../assets/{name().replace(' ', '%20')}"]


def text_block(rnd: random.Random) -> str:
    kind = rnd.random()
    if kind < 0.45:
        return " ".join(sentence(rnd) for _ in range(rnd.randint(1, 4)))
    if kind < 0.6:
        return "\n".join(f"- {sentence(rnd)}" for _ in range(rnd.randint(2, 5)))
    if kind < 0.7:
        code = "\n".join(f"    x = {i}  # {rnd.choice(WORDS)}" for i in range(3))
        return f"```python\n{code}\n```"
    if kind < 0.8:
        return "| a | b |\n|---|---|\n" + "\n".join(f"| {sentence(rnd)} | `c` |" for _ in range(3))
    if kind < 0.9:
        return f"> {sentence(rnd)}\n> {sentence(rnd)}"
    return f"## {sentence(rnd)}"


def note(rnd: random.Random, number: int) -> str:
    blocks = [f"# {sentence(rnd)}"]
    definitions: list[str] = []
    for serial in range(rnd.randint(MIN_IMAGE_ROUNDS, MAX_IMAGE_ROUNDS)):
        blocks += [text_block(rnd) for _ in range(rnd.randint(MIN_TEXT_BLOCKS, MAX_TEXT_BLOCKS))]
        lines, needed = images_block(rnd, number * 10 + serial)
        blocks += lines
        definitions += needed
    blocks.append("\n".join(definitions))
    return "\n\n".join(blocks) + "\n"


def make_vault(vault: Path, count: int) -> int:
    """Write the vault; return how many image references its notes hold."""
    rnd = random.Random(SEED)
    (vault / ".obsidian").mkdir(parents=True)
    assets = vault / "assets"
    assets.mkdir()
    for n in range(IMAGES):
        (assets / image_name(n)).write_bytes(png(f"dry-run-{n}"))
    refs = 0
    for n in range(count):
        folder = vault / f"area{n // NOTES_PER_FOLDER:03d}"
        folder.mkdir(exist_ok=True)
        text = note(rnd, n)
        # Every image line holds one reference (the definitions are none).
        refs += text.count("![") + text.count("<img ")
        (folder / f"note-{n:05d}.md").write_text(text, encoding="utf-8")
    return refs


def parsed_share(vault: Path) -> tuple[int, int]:
    """How many of the vault's notes find_images hands to mistune, of how many (in this process,
    with the imgsync being measured)."""
    import imgsync.notes.markdown as markdown

    parses = 0
    real_parse = markdown._parse

    def counting(text: str) -> object:
        nonlocal parses
        parses += 1
        return real_parse(text)

    markdown._parse = counting
    try:
        notes = sorted(vault.rglob("*.md"))
        for path in notes:
            markdown.find_images(path.read_text(encoding="utf-8"))
    finally:
        markdown._parse = real_parse
    return parses, len(notes)


def check(command: list[str], env: dict[str, str], notes: int, refs: int) -> None:
    """The dry run finds every reference, scans every note consistently and fails nothing."""
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    report = json.loads(done.stdout)
    assert len(report["notes"]) == notes, "not every note was synced"
    problems = [note for note in report["notes"] if note["error"] or note["warnings"]]
    assert not problems, problems[:3]
    found = sum(len(note["images"]) for note in report["notes"])
    assert found == refs, f"found {found} image references of {refs}"
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=DEFAULT_NOTES)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vault = root / "vault"
        refs = make_vault(vault, args.notes)
        size = sum(path.stat().st_size for path in vault.rglob("*.md"))
        # As installed: modules load from cached bytecode (the caller may have switched that off).
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMGSYNC_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env = {
            **keep,
            # No service is needed: a dry run makes no request (and opens no cache it has not got).
            "IMGSYNC_CONFIG": str(config(root / "config.toml", "http://127.0.0.1:9")),
            "IMGSYNC_DATA_DIR": str(root / "data"),
        }
        dry_run = [*imgsync_command(), "sync", "--dry-run", str(vault)]
        check([*dry_run[:-1], "--json", str(vault)], env, args.notes, refs)
        parsed, total = parsed_share(vault)
        baseline = [sys.executable, "-c", BASELINE, str(vault)]
        for _ in range(2):  # warm the page cache and bytecode for both
            timed(baseline, env)
            timed(dry_run, env)
        times: dict[str, list[float]] = {"parse": [], "sync": []}
        cpu: dict[str, list[float]] = {"parse": [], "sync": []}
        for round_no in range(args.rounds):
            pair = [("parse", baseline), ("sync", dry_run)]
            if round_no % 2:
                pair.reverse()
            for name, cmd in pair:
                elapsed, used = timed(cmd, env)
                times[name].append(elapsed)
                cpu[name].append(used)

    bare = statistics.median(times["parse"])
    ours = statistics.median(times["sync"])
    ratio = ours / bare
    bare_cpu = statistics.median(cpu["parse"])
    ours_cpu = statistics.median(cpu["sync"])
    print(
        f"vault: {args.notes} notes, {size / 1e6:.1f} MB, {refs} image references, "
        f"{IMAGES} local images"
    )
    print(f"notes find_images hands to mistune: {parsed} of {total}")
    print(f"rounds: {args.rounds} (median wall time of fresh processes, alternating)")
    print(f"read + bare mistune parse : {bare * 1e3:7.1f} ms   (CPU {bare_cpu * 1e3:6.1f} ms)")
    print(f"imgsync sync --dry-run    : {ours * 1e3:7.1f} ms   (CPU {ours_cpu * 1e3:6.1f} ms)")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO}: {verdict})")
    print(f"CPU-time ratio {ours_cpu / bare_cpu:.2f} (steadier on a busy machine; for information)")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
