"""``imgsync clip``: upload the image on the clipboard, print its link, put the link on the
clipboard."""

from __future__ import annotations

import sys

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.output import echo_json
from imgsync.cli.results import exit_status, format_option, result_json
from imgsync.errors import EXIT_OK, EXIT_PARTIAL


@click.command()
@format_option("upload.format (markdown)")
@click.option("--no-copy", is_flag=True, help="Print the link only; leave the clipboard as it is.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@pass_app
@handle_errors
def clip(app: AppContext, fmt: str | None, no_copy: bool, as_json: bool) -> None:
    """Upload the image on the clipboard (or the image paths or URL it holds).

    The link is printed and put on the clipboard, in the format of --format or upload.format.
    A PNG or JPEG keeps its bytes; other images become PNG. Exit status 1 when the clipboard
    holds no image or the upload failed, 2 when the clipboard cannot be used here.
    """
    from imgsync.jobs.clip import clip as run_clip

    result = run_clip(app.settings(), fmt=fmt, copy=not no_copy)
    for failed in (r for r in result.results if not r.linked):
        click.echo(f"imgsync: {failed.input}: {failed.why_no_link}", err=True)
    if as_json:
        echo_json(
            {
                "links": result.links,
                "copied": result.copied,
                "items": [
                    {**result_json(r), "source": item.source, "name": item.name}
                    for item, r in zip(result.items, result.results, strict=True)
                ],
            }
        )
    else:
        for link in result.links:
            click.echo(link)
    status = exit_status(result.results)
    if status == EXIT_OK and not result.ok:
        status = EXIT_PARTIAL  # an item left alone got no link: not what was asked for
    if status:
        sys.exit(status)
