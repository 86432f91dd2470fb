"""``imgsync sync``: the command, and what a sync report becomes: the human report, the JSON of
docs/contract.md, a dry run's diff and the exit status.

Where each thing goes: the report (a line per note with something to say, then the summary) on
stdout, as the notes finish; warnings and the progress line on stderr. ``--json`` puts one JSON
document on stdout instead (the human report then goes to stderr, as before). ``--dry-run --diff``
puts the diff on stdout, so that it can be saved and applied with ``patch -p1`` (the report then
goes to stderr).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.output import echo_json, printable, shown
from imgsync.cli.progress import Progress
from imgsync.cli.results import NO_CACHE_OPTION, run_settings
from imgsync.cli.signals import exit_stopped, stop_on_signals
from imgsync.config import REMOTE_POLICIES
from imgsync.engine.words import FAILED
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE

if TYPE_CHECKING:
    from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome, SyncReport


def sync_exit_status(report: SyncReport) -> int:
    """0 when all was done; 4 when everything that failed failed because the service could not
    be reached (worth retrying as it is); else 1 when anything failed (docs/contract.md)."""
    unreachable = False
    for note in report.outcomes():
        if note.error is not None or note.retry_after_ns:
            return EXIT_PARTIAL
        for image in note.images:
            if image.status != FAILED:
                continue
            if not image.unreachable:
                return EXIT_PARTIAL
            unreachable = True
    return EXIT_UNREACHABLE if unreachable else EXIT_OK


def sync_report_json(report: SyncReport, base: Path | None = None) -> dict[str, Any]:
    """The document ``imgsync sync --json`` prints (docs/contract.md, plus a note's own error and
    warnings, an image's line and ``dry_run``); note paths relative to ``base`` where below it."""
    return {
        "notes": [_note_json(note, base) for note in report.notes],
        "totals": report.totals(),
        "dry_run": report.dry_run,
    }


def _note_json(note: NoteOutcome, base: Path | None) -> dict[str, Any]:
    return {
        "path": printable(shown(note.path, base)),
        "changed": note.changed,
        "error": None if note.error is None else printable(note.error),
        "warnings": [printable(w) for w in note.warnings],
        "images": [_image_json(image) for image in note.images],
        "retry_after": _retry_time(note.retry_after_ns) if note.retry_after_ns else None,
    }


def _image_json(image: ImageOutcome) -> dict[str, Any]:
    return {
        "target": printable(image.target),
        "kind": image.kind,
        "status": image.status,
        "url": image.url,
        "error": None if image.error is None else printable(image.error),
        "line": image.line,
    }


def _retry_time(ns: int) -> str:
    """:func:`~imgsync.engine.remote_policy.retry_time`, imported only for a note that waits."""
    from imgsync.engine.remote_policy import retry_time

    return retry_time(ns)


# -- the human report ------------------------------------------------------------------------------


def note_lines(
    note: NoteOutcome, *, base: Path, verbose: bool, dry_run: bool
) -> Iterator[tuple[str, bool]]:
    """What the report says of one note, as (line, is_warning): its error, its failed images
    (with ``verbose``, every image left alone and why), and what was (or would be) rewritten.

    In a dry run each image is shown once: by the rewrite it would get (the local index knows its
    link), or as one a real run would upload.
    """
    name = shown(note.path, base)
    if note.error:
        yield f"{name}: {note.error}", False
    if note.retry_after_ns:
        when = _retry_time(note.retry_after_ns)
        yield (
            (
                f"{name}: not read (unchanged): remote images in it failed earlier; retry after "
                f"{when}, or now with --retry-failed"
            ),
            False,
        )
    for warning in note.warnings:
        yield f"{name}: warning: {warning}", True
    for image in note.images:
        if image.status == FAILED or image.would_upload or (verbose and image.error):
            yield f"{name}:{image.line}: {image.target}: {image.error}", False
    if dry_run:
        for old, new in note.edits:
            yield f"{name}: would rewrite {old} -> {new}", False
    elif note.changed:
        yield f"{name}: links rewritten", False


def summary_line(report: SyncReport) -> str:
    """The last line of the report: notes, changed notes, notes that failed, links by status.

    ``N note(s) failed`` counts the notes that could not be processed at all (each named above
    with its reason); a failed image is counted among the image links.
    """
    totals = report.totals()
    words = ", ".join(f"{totals[k]} {k}" for k in ("uploaded", "reused", "cached", "skipped"))
    links_failed = sum(1 for n in report.outcomes() for i in n.images if i.status == FAILED)
    notes_failed = len(report.failed_notes())
    changed = "would change" if report.dry_run else "changed"
    line = (
        f"{_count(totals['notes'], 'note')}, {totals['changed']} {changed}, "
        f"{_count(notes_failed, 'note')} failed; "
        f"image links: {words}, {links_failed} failed"
    )
    waiting = sum(1 for note in report.outcomes() if note.retry_after_ns)
    if waiting:
        line += f"; {_count(waiting, 'note')} waiting to retry remote images that failed"
    if report.dry_run:
        line = f"dry run: {line}; {_count(report.images_to_upload, 'image')} to upload"
    return line


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def print_sync_report(report: SyncReport, *, base: Path, verbose: bool, err: bool = True) -> None:
    """The whole human report of a finished run at once (``err``: on stderr): each note with
    something to say, then the summary. ``imgsync sync`` prints the same lines as notes finish."""
    for note in report.outcomes():
        for line, _warning in note_lines(note, base=base, verbose=verbose, dry_run=report.dry_run):
            # Names and targets may hold bytes that are not UTF-8: shown as \\xNN, never a crash.
            click.echo(printable(line), err=err)
    click.echo(summary_line(report), err=err)


class _NotePrinter:
    """Prints each note's lines as the run finishes it (``on_note``), and its diff if asked."""

    def __init__(
        self,
        progress: Progress,
        *,
        base: Path,
        verbose: bool,
        dry_run: bool,
        to_stderr: bool,
        diff: bool,
    ) -> None:
        self.progress = progress
        self.base = base
        self.verbose = verbose
        self.dry_run = dry_run
        self.to_stderr = to_stderr
        self.diff = diff

    def __call__(self, note: NoteOutcome) -> None:
        for line, warning in note_lines(
            note, base=self.base, verbose=self.verbose, dry_run=self.dry_run
        ):
            self.progress.echo(printable(line), err=warning or self.to_stderr)
        if self.diff and note.planned is not None:
            from imgsync.notes.textdiff import unified_diff

            name = shown(note.path, self.base)
            old, new = note.planned
            patch = unified_diff(old, new, old_name=f"a/{name}", new_name=f"b/{name}")
            self.progress.finish()
            sys.stdout.flush()
            sys.stdout.buffer.write(patch)
            sys.stdout.buffer.flush()


def _no_empty_paths(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """PATHS as Paths; an empty one is refused: Path("") is the current folder, and a script's
    unset variable must not sync whatever folder the shell happens to be in."""
    if any(value == "" for value in values):
        raise click.BadParameter("an empty path (an unset variable?) is not a note or folder")
    return tuple(Path(value) for value in values)


@click.command()
@click.option("--dry-run", is_flag=True, help="Make no request and write nothing; show changes.")
@click.option(
    "--diff",
    is_flag=True,
    help="With --dry-run: print the diff of each note that would change (patch -p1 applies it).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Notes root (default: nearest folder with .obsidian, else the folder given).",
)
@click.option(
    "--allow-outside-root", is_flag=True, help="Also upload images outside the notes root."
)
@click.option("--allow-data-uri", is_flag=True, help="Also upload data: URI images.")
@click.option(
    "--remote",
    type=click.Choice(REMOTE_POLICIES),
    help="Remote images: migrate them onto the image bed, or keep the links (config sync.remote).",
)
@click.option(
    "--retry-failed", is_flag=True, help="Try remote images that failed earlier now, not later."
)
@NO_CACHE_OPTION
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=str), callback=_no_empty_paths
)
@pass_app
@handle_errors
def sync(
    app: AppContext,
    dry_run: bool,
    diff: bool,
    as_json: bool,
    root: Path | None,
    allow_outside_root: bool,
    allow_data_uri: bool,
    remote: str | None,
    retry_failed: bool,
    no_cache: bool,
    paths: tuple[Path, ...],
) -> None:
    """Upload the images the notes at PATHS refer to, and rewrite their links.

    With --no-cache every note is read and every image asked about, as if the local index were
    empty (it is refreshed with what is learned).
    """
    if diff and not dry_run:
        raise click.UsageError("--diff shows what a dry run would write: use it with --dry-run")
    if diff and as_json:
        raise click.UsageError("--diff and --json both print on stdout: choose one")
    from imgsync.jobs.sync import Syncer

    settings = run_settings(
        app,
        {"sync": {"remote": remote, "retry_failed": retry_failed or None}},
        no_cache=no_cache,
    )
    if not dry_run:
        settings.require_credentials()
    syncer = Syncer(
        settings,
        root=root,
        dry_run=dry_run,
        keep_planned=diff,
        allow_outside_root=allow_outside_root,
        allow_data=allow_data_uri,
    )
    progress = Progress(enabled=not as_json and sys.stderr.isatty())
    base = Path.cwd()
    verbose = app.verbosity > 0
    to_stderr = as_json or diff  # stdout holds the JSON document or the diff
    printer = _NotePrinter(
        progress, base=base, verbose=verbose, dry_run=dry_run, to_stderr=to_stderr, diff=diff
    )
    on_progress = progress.update if progress.enabled else None
    try:
        with stop_on_signals(progress):
            report = syncer.run(list(paths), on_note=printer, on_progress=on_progress)
    except KeyboardInterrupt as exc:
        progress.finish()
        exit_stopped(exc)
    progress.finish()
    if as_json:
        echo_json(sync_report_json(report, base))
    click.echo(summary_line(report), err=to_stderr)
    sys.exit(sync_exit_status(report))
