"""``imgsync upload``: one stdout line per item, in order (Typora's custom-command protocol).

The command owns how results are shown (a link per line, or the JSON list of docs/contract.md) and
which exit status a run of them maps to; the engine only says what happened to each item.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.output import echo_json
from imgsync.cli.results import (
    NO_CACHE_OPTION,
    InOrder,
    exit_status,
    format_option,
    result_json,
    run_settings,
)
from imgsync.engine.results import UploadResult
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, ImgsyncError

if TYPE_CHECKING:
    from imgsync.desktop.clipboard import Clipboard


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of links.")
@format_option("url, as Typora's custom command reads it")
@click.option("--copy", is_flag=True, help="Also put the links on the clipboard.")
@NO_CACHE_OPTION
@click.argument("items", nargs=-1, required=True, metavar="ITEM...")
@pass_app
@handle_errors
def upload(
    app: AppContext,
    as_json: bool,
    fmt: str | None,
    copy: bool,
    no_cache: bool,
    items: tuple[str, ...],
) -> None:
    """Upload local images or image URLs; print one link per ITEM, in order.

    Each ITEM's link goes on its own stdout line, or an empty line if it failed or was left
    alone by the remote-image policy (the reason goes to stderr), so Typora's "Custom Command"
    upload can use it as is. Paths may be percent-encoded or file:// URIs. Exit status 1 if some
    items got no link.
    """
    from imgsync.jobs.upload import upload_items

    stopped = False
    board = _clipboard() if copy else None
    links: list[str] = []

    def show(result: UploadResult) -> None:
        if not stopped and not result.linked:
            click.echo(f"imgsync: {result.input}: {result.why_no_link}", err=True)
        link = _link(result, fmt)
        if link:
            links.append(link)
        if not as_json:
            click.echo(link)

    in_order = InOrder(len(items), show)
    try:
        results = upload_items(run_settings(app, no_cache=no_cache), items, on_result=in_order)
    except ImgsyncError as exc:
        # The run stopped (configuration, authentication): still one answer per item; the
        # reason is printed once, by handle_errors.
        stopped = True
        in_order.fail_rest(items, str(exc), unreachable=exc.exit_code == EXIT_UNREACHABLE)
        if as_json:
            echo_json([result_json(r) for r in in_order.results])
        raise
    if as_json:
        echo_json([result_json(r) for r in results])
    if board is not None and links:
        board.write_text("\n".join(links))
    status = exit_status(results)
    if status == EXIT_OK and not all(r.linked for r in results):
        status = EXIT_PARTIAL  # an item left alone got no link: not what was asked for
    if status:
        sys.exit(status)


def _link(result: UploadResult, fmt: str | None) -> str:
    """The line printed for a result: its link in ``fmt`` (bare URL by default), or empty."""
    if not (result.ok and result.url):
        return ""
    if fmt is None:
        return result.url
    from imgsync.jobs.clip import item_name
    from imgsync.links import render_link

    return render_link(fmt, result.url, item_name(result.input))


def _clipboard() -> Clipboard:
    """The clipboard for ``--copy``, found before anything is uploaded (exit 2 if none)."""
    from imgsync.desktop.clipboard import system_clipboard

    return system_clipboard()
