"""``imgsync upload``: one stdout line per item, in order (Typora's custom-command protocol)."""

from __future__ import annotations

import sys

import click

from imgsync.cli.app import AppContext, handle_errors, main, pass_app
from imgsync.cli.output import echo_json
from imgsync.errors import ImgsyncError


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of links.")
@click.argument("items", nargs=-1, required=True, metavar="ITEM...")
@pass_app
@handle_errors
def upload(app: AppContext, as_json: bool, items: tuple[str, ...]) -> None:
    """Upload local images or image URLs; print one link per ITEM, in order.

    Each ITEM's link goes on its own stdout line, or an empty line if it failed (the reason goes
    to stderr), so Typora's "Custom Command" upload can use it as is. Paths may be
    percent-encoded or file:// URIs. Exit status 1 if some items failed.
    """
    from imgsync.engine.uploader import InOrder, UploadResult, exit_status
    from imgsync.jobs.upload import upload_items

    stopped = False

    def show(result: UploadResult) -> None:
        if not result.ok and not stopped:
            click.echo(f"imgsync: {result.input}: {result.error}", err=True)
        if not as_json:
            click.echo(result.url if result.ok and result.url else "")

    in_order = InOrder(len(items), show)
    try:
        results = upload_items(app.settings(), items, on_result=in_order)
    except ImgsyncError as exc:
        # The run stopped (configuration, authentication): still one answer per item; the
        # reason is printed once, by handle_errors.
        stopped = True
        in_order.fail_rest(items, str(exc), exc.exit_code)
        if as_json:
            echo_json([r.to_json() for r in in_order.results])
        raise
    if as_json:
        echo_json([r.to_json() for r in results])
    status = exit_status(results)
    if status:
        sys.exit(status)
