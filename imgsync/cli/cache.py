"""``imgsync cache stats | verify | rebuild | clear``: inspect and repair the local index."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.confirm import YES_OPTION, confirm, echo_err
from imgsync.cli.manage import JSON_OPTION
from imgsync.cli.manage_output import (
    cache_stats_json,
    clear_report_json,
    rebuild_report_json,
    verify_exit_status,
    verify_report_json,
)
from imgsync.cli.output import echo_json, printable, shown
from imgsync.cli.progress import StepBar

# What each count of ``cache stats`` is, in the order shown.
STATS_LABELS = (
    ("objects", "images known on the image bed (this account)"),
    ("urls", "remote URLs migrated (this account)"),
    ("folders", "image-bed folder IDs (this account)"),
    ("notes", "notes stamped clean (this account)"),
    ("service_facts", "facts learned about the service (this account)"),
    ("file_hashes", "local files hashed (all accounts)"),
    ("namespaces", "accounts with images"),
    ("bytes", "bytes on disk"),
)


@click.group()
def cache() -> None:
    """Inspect and repair the local index (md5 -> link) that makes re-runs free."""


@cache.command()
@JSON_OPTION
@pass_app
@handle_errors
def stats(app: AppContext, as_json: bool) -> None:
    """What the index holds."""
    from imgsync.jobs.cachejobs import cache_stats

    result = cache_stats(app.settings())
    if as_json:
        echo_json(cache_stats_json(result))
        return
    click.echo(printable(f"cache: {result.path}" + ("" if result.exists else " (not created yet)")))
    for key, label in STATS_LABELS:
        click.echo(f"{result.counts.get(key, 0):>10}  {label}")


@cache.command()
@click.argument(
    "notes", nargs=-1, type=click.Path(path_type=Path), metavar="[NOTES...]", required=False
)
@JSON_OPTION
@pass_app
@handle_errors
def verify(app: AppContext, notes: tuple[Path, ...], as_json: bool) -> None:
    """Check every image the index knows with the service; drop the deleted and the rejected.

    Rejected images stay known as rejected: imgsync never hands their links out again. Given
    NOTES (files or folders), each dropped image is shown with the notes that link to it.
    """
    from imgsync.jobs.cachejobs import REJECTED, verify_cache
    from imgsync.jobs.imagebed import ImageBed

    progress = StepBar(enabled=not as_json and sys.stderr.isatty(), what="objects")
    with ImageBed(app.settings()) as bed:
        progress.start(bed.cache.stats()["objects"])
        report = verify_cache(bed, on_object=progress.step, notes=notes)
    progress.finish()
    if as_json:
        echo_json(verify_report_json(report, with_notes=bool(notes)))
    for path, problem in report.note_problems:
        echo_err(f"imgsync: {path}: {problem}")
    for dropped in report.dropped:
        obj = dropped.obj
        if dropped.reason == REJECTED:
            why = f"rejected by content review (status {dropped.status}): its link does not serve"
        else:
            why = "no longer on the image bed"
        if not as_json:
            click.echo(printable(f"dropped  {obj.file_id}  {obj.filename}  {obj.download_url}"))
            for note in dropped.linked_from:
                click.echo(printable(f"  linked from {shown(note, Path.cwd())}"))
        echo_err(f"{obj.filename} ({obj.file_id}): {why}")
    for obj, error in report.unchecked:
        echo_err(f"imgsync: {obj.file_id}: {error}")
    echo_err(
        f"checked {report.checked}: {report.kept} kept ({report.updated} updated),"
        f" {len(report.dropped)} dropped, {len(report.unchecked)} not checked"
    )
    sys.exit(verify_exit_status(report))


@cache.command()
@JSON_OPTION
@pass_app
@handle_errors
def rebuild(app: AppContext, as_json: bool) -> None:
    """List the whole image bed and record every image, so none is uploaded again."""
    from imgsync.jobs.cachejobs import rebuild_cache
    from imgsync.jobs.imagebed import ImageBed

    def show(folders: int, files: int) -> None:
        if not as_json and sys.stderr.isatty():
            click.echo(f"\rlisting: {folders} folders, {files} files", err=True, nl=False)

    with ImageBed(app.settings()) as bed:
        report = rebuild_cache(bed, on_folder=show)
    if not as_json and sys.stderr.isatty():
        click.echo("", err=True)
    if as_json:
        echo_json(rebuild_report_json(report))
    else:
        click.echo(
            f"{report.files} files in {report.folders} folders: {report.recorded} recorded,"
            f" {report.rejected} rejected by review, {report.unusable} without link or md5;"
            f" {report.forgotten} no longer there forgotten"
        )


@cache.command()
@YES_OPTION
@JSON_OPTION
@pass_app
@handle_errors
def clear(app: AppContext, yes: bool, as_json: bool) -> None:
    """Empty the index (every account's); the image bed is not touched.

    A damaged index file is removed instead. The next run hashes files again and, unless
    `imgsync cache rebuild` ran first, finds uploaded images again one by one.
    """
    from imgsync.jobs.cachejobs import clear_cache
    from imgsync.store.cache import cache_path

    settings = app.settings()
    confirm(
        f"Clear the local index {cache_path(settings.data_dir)}? (The image bed is not touched.)",
        yes=yes,
        command="cache clear",
    )
    report = clear_cache(settings)
    if as_json:
        echo_json(clear_report_json(report))
    elif report.removed:
        click.echo(printable(f"removed the damaged index {report.path}"))
    elif report.cleared:
        click.echo(printable(f"cleared {report.path}"))
    else:
        click.echo(printable(f"no index at {report.path}: nothing to clear"))
