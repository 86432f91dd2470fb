"""``imgsync ls / info / mkdir / mv / rm``: look at and rearrange the image bed.

FOLDER arguments are a path (``imgsync/2026/11``; ``/`` is the root) or a folder ID. The report
goes to stdout (``--json``: one JSON document), failures and counts to stderr; the exit status is
docs/contract.md's: 1 when some items failed, each reported.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.confirm import YES_OPTION, confirm, echo_err, print_outcomes
from imgsync.cli.manage_output import (
    entry_json,
    orphan_report_json,
    outcome_json,
    outcomes_exit_status,
)
from imgsync.cli.output import echo_json, printable
from imgsync.errors import EXIT_OK, EXIT_PARTIAL

if TYPE_CHECKING:
    from imgsync.jobs.imagebed import Entry

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
# Width of the size column: a 100 MB image has 9 digits.
SIZE_WIDTH = 10


def entry_line(entry: Entry) -> str:
    """``ID  SIZE  REVIEW  PATH  URL`` for one entry (a folder's path ends in ``/``)."""
    remote = entry.remote
    if remote.is_folder:
        return printable(f"{remote.file_id}  {'-':>{SIZE_WIDTH}}  {'folder':<8}  {entry.path}/")
    review = "REJECTED" if remote.rejected else "ok"
    return printable(
        f"{remote.file_id}  {remote.size:>{SIZE_WIDTH}}  {review:<8}  {entry.path}  {entry.link}"
    )


@click.command(name="ls")
@click.argument("folder", default="/", metavar="[FOLDER]")
@click.option("--recursive", "-R", is_flag=True, help="Also list every folder below it.")
@JSON_OPTION
@pass_app
@handle_errors
def ls_command(app: AppContext, folder: str, recursive: bool, as_json: bool) -> None:
    """List a folder of the image bed (default: the root): ID, size, review, path, link.

    Images the content review rejected are marked REJECTED: their links do not serve.
    """
    from imgsync.jobs.browse import list_folder
    from imgsync.jobs.imagebed import ImageBed

    with ImageBed(app.settings()) as bed:
        listing = list_folder(bed, folder, recursive=recursive)
        entries = []
        for entry in listing.entries:
            entries.append(entry)
            if not as_json:
                click.echo(entry_line(entry))
    if as_json:
        echo_json([entry_json(entry) for entry in entries])
    folders = sum(1 for e in entries if e.remote.is_folder)
    rejected = sum(1 for e in entries if not e.remote.is_folder and e.remote.rejected)
    echo_err(
        f"{len(entries) - folders} files ({rejected} rejected), {folders} folders"
        f" in {listing.located.shown}"
    )


def _info_lines(entry: Entry) -> list[tuple[str, str]]:
    remote = entry.remote
    if remote.is_folder:
        review = "folder"
    elif remote.rejected:
        review = "rejected by content review: the link does not serve"
    else:
        review = "not rejected"
    return [
        ("fileID", remote.file_id),
        ("name", remote.filename),
        ("type", "folder" if remote.is_folder else "file"),
        ("size", str(remote.size)),
        ("etag", remote.etag),
        ("status", f"{remote.status} ({review})"),
        ("link", entry.link),
        ("downloadURL", remote.download_url),
        ("userSelfURL", remote.user_self_url),
        ("parent", f"{remote.parent_file_id} ({remote.parent_filename})"),
        ("created", remote.create_at),
        ("updated", remote.update_at),
        ("traffic", str(remote.total_traffic)),
    ]


@click.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@JSON_OPTION
@pass_app
@handle_errors
def info(app: AppContext, ids: tuple[str, ...], as_json: bool) -> None:
    """Show everything the image bed says about files or folders, by ID."""
    from imgsync.jobs.browse import describe
    from imgsync.jobs.imagebed import ImageBed

    with ImageBed(app.settings()) as bed:
        answers = describe(bed, ids)
    if as_json:
        echo_json(
            [
                {**entry_json(a.entry), "ok": True, "error": None}
                if a.entry is not None
                else outcome_json(a.outcome)
                for a in answers
            ]
        )
    for index, answer in enumerate(answers):
        if answer.entry is None:
            echo_err(f"imgsync: {answer.outcome.input}: {answer.outcome.error}")
            continue
        if not as_json:
            if index:
                click.echo("")
            for key, value in _info_lines(answer.entry):
                click.echo(printable(f"{key + ':':<13}{value}"))
    sys.exit(outcomes_exit_status([a.outcome for a in answers]))


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@JSON_OPTION
@pass_app
@handle_errors
def mkdir(app: AppContext, paths: tuple[str, ...], as_json: bool) -> None:
    """Make folders on the image bed, with every missing level; existing ones are fine."""
    from imgsync.jobs.browse import make_folders
    from imgsync.jobs.imagebed import ImageBed

    with ImageBed(app.settings()) as bed:
        outcomes = make_folders(bed, paths)
    print_outcomes(outcomes, as_json=as_json)
    sys.exit(outcomes_exit_status(outcomes))


@click.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--to", "to", required=True, metavar="FOLDER", help="Target folder: path or ID.")
@JSON_OPTION
@pass_app
@handle_errors
def mv(app: AppContext, ids: tuple[str, ...], to: str, as_json: bool) -> None:
    """Move files and folders, by ID, into an existing folder (100 per request)."""
    from imgsync.jobs.bulk import move
    from imgsync.jobs.imagebed import ImageBed

    with ImageBed(app.settings()) as bed:
        outcomes = move(bed, ids, to)
    print_outcomes(outcomes, as_json=as_json)
    sys.exit(outcomes_exit_status(outcomes))


@click.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option(
    "--recursive", "-r", is_flag=True, help="Also delete folders, with everything in them."
)
@YES_OPTION
@JSON_OPTION
@pass_app
@handle_errors
def rm(app: AppContext, ids: tuple[str, ...], recursive: bool, yes: bool, as_json: bool) -> None:
    """Delete files from the image bed, by ID (100 per request); they leave the local index too.

    Asks first on a terminal; without one, --yes is required. Deleting cannot be undone, and
    every note linking to a deleted image shows a broken image.
    """
    from imgsync.jobs.bulk import remove
    from imgsync.jobs.imagebed import ImageBed

    settings = app.settings()
    count = len(dict.fromkeys(ids))
    what = f"{count} item{'s' if count != 1 else ''}"
    confirm(f"Delete {what} from the image bed? This cannot be undone.", yes=yes, command="rm")
    with ImageBed(settings) as bed:
        outcomes = remove(bed, ids, recursive=recursive)
    print_outcomes(outcomes, as_json=as_json)
    sys.exit(outcomes_exit_status(outcomes))


@click.command()
@click.argument(
    "notes", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="NOTES..."
)
@click.option("--delete", is_flag=True, help="Delete the images found (asks first).")
@YES_OPTION
@JSON_OPTION
@pass_app
@handle_errors
def orphans(
    app: AppContext, notes: tuple[Path, ...], delete: bool, yes: bool, as_json: bool
) -> None:
    """List the images in imgsync's image-bed folders that no note below NOTES links to.

    imgsync's folders are every folder upload.folder can name (each year and month...) and
    upload.remote_folder. Give every notes folder that may link to them: an image only another
    folder's notes use would look unused. With --delete they are deleted, after confirmation.
    """
    from imgsync.jobs.imagebed import ImageBed
    from imgsync.jobs.orphans import delete_orphans, find_orphans

    with ImageBed(app.settings()) as bed:
        report = find_orphans(bed, notes)
        for path, problem in report.problems:
            echo_err(f"imgsync: {path}: {problem}")
        if not as_json:
            for entry in report.orphans:
                click.echo(entry_line(entry))
        echo_err(
            f"{len(report.orphans)} of {report.images} images in {len(report.folders)} folders"
            f" are linked by none of {report.notes} notes"
        )
        outcomes = []
        if delete and report.orphans:
            count = len(report.orphans)
            confirm(
                f"Delete these {count} images from the image bed? This cannot be undone.",
                yes=yes,
                command="orphans --delete",
            )
            outcomes = delete_orphans(bed, report)
    if as_json:
        echo_json(orphan_report_json(report, outcomes))
    if outcomes:
        print_outcomes(outcomes, as_json=as_json, own_document=False)
    status = outcomes_exit_status(outcomes)
    sys.exit(status or (EXIT_PARTIAL if report.problems else EXIT_OK))
