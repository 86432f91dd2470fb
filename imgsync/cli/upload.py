"""``imgsync upload``: one stdout line per item, in order (Typora's custom-command protocol).

The command owns how results are shown (a link per line, or the JSON list of docs/contract.md) and
which exit status a run of them maps to; the engine only says what happened to each item.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import click

from imgsync.cli.app import AppContext, handle_errors, main, pass_app
from imgsync.cli.output import echo_json
from imgsync.engine.items import is_url
from imgsync.engine.results import FAILED, LOCAL, REMOTE, UploadResult
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, ImgsyncError


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
        in_order.fail_rest(items, str(exc), unreachable=exc.exit_code == EXIT_UNREACHABLE)
        if as_json:
            echo_json([result_json(r) for r in in_order.results])
        raise
    if as_json:
        echo_json([result_json(r) for r in results])
    status = exit_status(results)
    if status:
        sys.exit(status)


def result_json(result: UploadResult) -> dict[str, Any]:
    """The object ``imgsync upload --json`` prints for one item (docs/contract.md)."""
    return {
        "input": result.input,
        "ok": result.ok,
        "url": result.url,
        "md5": result.md5,
        "fileID": result.file_id,
        "error": result.error,
        "kind": result.kind,
        "status": result.status,
    }


def exit_status(results: Sequence[UploadResult]) -> int:
    """The command's exit status (docs/contract.md): 0 all done; 4 when every item failed because
    the service could not be reached or kept failing; else 1 if any item failed."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return EXIT_OK
    if len(failed) == len(results) and all(r.unreachable for r in failed):
        return EXIT_UNREACHABLE
    return EXIT_PARTIAL


class InOrder:
    """Hands results to ``emit`` in input order, each as soon as it and all before it are known.

    Use as ``on_result`` of the upload job: the Typora protocol wants exactly one stdout line per
    item, in order, and a long upload should not hold back the lines before it.
    """

    def __init__(self, count: int, emit: Callable[[UploadResult], None]) -> None:
        self.results: list[UploadResult] = []
        self._count = count
        self._emit = emit
        self._waiting: dict[int, UploadResult] = {}
        self._lock = threading.Lock()

    def __call__(self, index: int, result: UploadResult) -> None:
        with self._lock:
            self._waiting[index] = result
            while len(self.results) in self._waiting:
                ready = self._waiting.pop(len(self.results))
                self.results.append(ready)
                self._emit(ready)

    def fail_rest(self, items: Sequence[str], error: str, *, unreachable: bool) -> None:
        """Emit a failure for every item not reported yet (the run stopped early)."""
        with self._lock:
            for index in range(len(self.results), self._count):
                result = self._waiting.pop(index, None) or UploadResult(
                    str(items[index]),
                    REMOTE if is_url(str(items[index])) else LOCAL,
                    FAILED,
                    error=error,
                    unreachable=unreachable,
                )
                self.results.append(result)
                self._emit(result)
