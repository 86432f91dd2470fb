"""``imgsync copy`` and ``imgsync migrate``: the service's background tasks, started and followed.

Each task's changes of state go to stderr as they happen; the report (stdout) comes at the end:
per copy task its state and failed files, per URL its link or why it failed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.confirm import echo_err
from imgsync.cli.manage import JSON_OPTION
from imgsync.cli.manage_output import (
    copy_exit_status,
    copy_report_json,
    migrate_report_json,
    outcomes_exit_status,
)
from imgsync.cli.output import echo_json, printable

if TYPE_CHECKING:
    from imgsync.jobs.drivecopy import CopyTaskReport

WAIT_OPTION = click.option(
    "--wait", is_flag=True, help="Follow the tasks to their end and report the results."
)


def _task_name(task: CopyTaskReport) -> str:
    return f"copy task {task.task_id or '(not started)'} ({len(task.file_ids)} files)"


@click.command()
@click.argument("drive_ids", nargs=-1, required=True, metavar="DRIVE_ID...")
@click.option("--to", "to", required=True, metavar="FOLDER", help="Target folder: path or ID.")
@WAIT_OPTION
@JSON_OPTION
@pass_app
@handle_errors
def copy(app: AppContext, drive_ids: tuple[str, ...], to: str, wait: bool, as_json: bool) -> None:
    """Copy images from your 123pan cloud drive (by their drive IDs) onto the image bed.

    The service copies in tasks of at most 100 files, at most 3 queued at once: imgsync starts
    them as room comes free. With --wait it follows every task to its end and lists the files
    that could not be copied (the service passes over files of another format or over 100 MB
    without listing them).
    """
    from imgsync.jobs.drivecopy import copy_from_drive
    from imgsync.jobs.imagebed import ImageBed

    def show(task: CopyTaskReport) -> None:
        echo_err(f"{_task_name(task)}: {task.state}" + (f": {task.error}" if task.error else ""))

    with ImageBed(app.settings()) as bed:
        report = copy_from_drive(bed, drive_ids, to, wait=wait, on_progress=show)
    if as_json:
        echo_json(copy_report_json(report))
    for task in report.tasks:
        if not as_json:
            click.echo(printable(f"{_task_name(task)}: {task.state}"))
            for failed in task.failures:
                click.echo(printable(f"  not copied: {failed.file_id}  {failed.filename}"))
        if task.error:
            echo_err(f"imgsync: {_task_name(task)}: {task.error}")
        if task.failures_total:
            echo_err(f"imgsync: {_task_name(task)}: {task.failures_total} files not copied")
    if not wait and not as_json:
        echo_err(f"started; the files arrive in {report.folder.shown} as the tasks run")
    elif wait:
        # The reference's failure list holds only images of an accepted format and size.
        echo_err(
            "files of another format (png, gif, jpeg, tiff, webp, svg, bmp) or over 100 MB are"
            f" passed over by the service without being listed: see what arrived in"
            f" {report.folder.shown} (imgsync ls)"
        )
    sys.exit(copy_exit_status(report))


@click.command()
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option(
    "--to",
    "to",
    metavar="FOLDER",
    help="Target folder: path or ID (default: upload.remote_folder; not the root).",
)
@WAIT_OPTION
@JSON_OPTION
@pass_app
@handle_errors
def migrate(
    app: AppContext, urls: tuple[str, ...], to: str | None, wait: bool, as_json: bool
) -> None:
    """Have the service fetch images by URL onto the image bed (offline migration).

    With --wait, prints "URL -> LINK" for each migrated image (found by listing the target
    folder), and why it failed otherwise. A URL the service cannot fetch (a host only this
    machine reaches, a missing image extension) can be uploaded with `imgsync upload URL`.
    """
    from imgsync.jobs.imagebed import ImageBed
    from imgsync.jobs.migrate import migrate as run_migration

    seen: dict[str, str] = {}

    def show(url: str, state: str, percent: int) -> None:
        if seen.get(url) != state:
            seen[url] = state
            echo_err(f"{url}: {state}")

    with ImageBed(app.settings()) as bed:
        report = run_migration(bed, urls, to=to, wait=wait, on_progress=show)
    if as_json:
        echo_json(migrate_report_json(report))
    for outcome in report.outcomes:
        if not outcome.ok:
            echo_err(f"imgsync: {outcome.input}: {outcome.error}")
        elif not as_json:
            result = outcome.url or f"task {outcome.task_id} {outcome.status}"
            click.echo(printable(f"{outcome.input} -> {result}"))
    sys.exit(outcomes_exit_status(report.outcomes))
