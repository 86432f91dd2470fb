"""``imgsync sync``: the command, and what a sync report becomes: the human summary, the JSON of
docs/contract.md and the exit status."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imgsync.cli.app import AppContext, handle_errors, main, pass_app
from imgsync.cli.output import echo_json, printable, shown
from imgsync.cli.progress import Progress
from imgsync.cli.results import NO_CACHE_OPTION, run_settings
from imgsync.cli.signals import exit_stopped, stop_on_signals
from imgsync.engine.results import FAILED
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE

if TYPE_CHECKING:
    from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome, SyncReport


def sync_exit_status(report: SyncReport) -> int:
    """0 when all was done; 4 when everything that failed failed because the service could not
    be reached (worth retrying as it is); else 1 when anything failed (docs/contract.md)."""
    unreachable = False
    for note in report.notes:
        if note.error is not None:
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


def print_sync_report(report: SyncReport, *, base: Path, verbose: bool, err: bool = True) -> None:
    """The human summary of a sync (stderr by default): problems, changed notes, totals.

    In a dry run each image that would change is shown once, by the rewrite it would get.
    """

    def echo(text: str) -> None:
        # Names and targets may hold bytes that are not UTF-8: shown as \xNN, never a crash.
        click.echo(printable(text), err=err)

    for note in report.notes:
        if note.unchanged_since_last_sync:
            continue  # nothing to say (and a re-sync of a big vault is mostly these)
        name = shown(note.path, base)
        if note.error:
            echo(f"{name}: {note.error}")
        for warning in note.warnings:
            echo(f"{name}: warning: {warning}")
        for image in note.images:
            if image.status == FAILED or (verbose and image.error and not image.would_upload):
                echo(f"{name}:{image.line}: {image.target}: {image.error}")
        if report.dry_run:
            for old, new in note.edits:
                echo(f"{name}: would rewrite {old} -> {new}")
        elif note.changed:
            echo(f"{name}: links rewritten")
    totals = report.totals()
    words = ", ".join(f"{totals[k]} {k}" for k in ("uploaded", "reused", "cached", "skipped"))
    prefix = "dry run: " if report.dry_run else ""
    failed = sum(1 for n in report.notes for i in n.images if i.status == FAILED)
    echo(
        f"{prefix}{totals['notes']} notes, {totals['changed']} changed; "
        f"image links: {words}, {failed} failed"
    )


def _no_empty_paths(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """PATHS as Paths; an empty one is refused: Path("") is the current folder, and a script's
    unset variable must not sync whatever folder the shell happens to be in."""
    if any(value == "" for value in values):
        raise click.BadParameter("an empty path (an unset variable?) is not a note or folder")
    return tuple(Path(value) for value in values)


@main.command()
@click.option("--dry-run", is_flag=True, help="Make no request and write nothing; show changes.")
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
@NO_CACHE_OPTION
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=str), callback=_no_empty_paths
)
@pass_app
@handle_errors
def sync(
    app: AppContext,
    dry_run: bool,
    as_json: bool,
    root: Path | None,
    allow_outside_root: bool,
    allow_data_uri: bool,
    no_cache: bool,
    paths: tuple[Path, ...],
) -> None:
    """Upload the images the notes at PATHS refer to, and rewrite their links.

    With --no-cache every note is read and every image asked about, as if the local index were
    empty (it is refreshed with what is learned).
    """
    from imgsync.jobs.sync import Syncer

    settings = run_settings(app, no_cache=no_cache)
    if not dry_run:
        settings.require_credentials()
    syncer = Syncer(
        settings,
        root=root,
        dry_run=dry_run,
        allow_outside_root=allow_outside_root,
        allow_data=allow_data_uri,
    )
    progress = Progress(enabled=not as_json and sys.stderr.isatty())
    try:
        with stop_on_signals(progress):
            report = syncer.run(list(paths), on_upload_start=progress.start, on_image=progress.step)
    except KeyboardInterrupt as exc:
        exit_stopped(exc)
    progress.finish()
    base = Path.cwd()
    if as_json:
        echo_json(sync_report_json(report, base))
    print_sync_report(report, base=base, verbose=app.verbosity > 0 or dry_run)
    sys.exit(sync_exit_status(report))
