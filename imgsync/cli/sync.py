"""``imgsync sync``: the command, and the human summary of a sync report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imgsync.cli.app import AppContext, handle_errors, main, pass_app
from imgsync.cli.output import echo_json, printable, shown
from imgsync.cli.progress import Progress
from imgsync.cli.signals import exit_stopped, stop_on_signals

if TYPE_CHECKING:
    from imgsync.jobs.sync import SyncReport


def print_sync_report(report: SyncReport, *, base: Path, verbose: bool, err: bool = True) -> None:
    """The human summary of a sync (stderr by default): problems, changed notes, totals."""
    from imgsync.jobs.sync import FAILED

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
            if image.status == FAILED or (verbose and image.error):
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
    paths: tuple[Path, ...],
) -> None:
    """Upload the images the notes at PATHS refer to, and rewrite their links."""
    from imgsync.jobs.sync import Syncer

    settings = app.settings()
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
        echo_json(report.to_json(base))
    print_sync_report(report, base=base, verbose=app.verbosity > 0 or dry_run)
    sys.exit(report.exit_code)
