"""Upload results as the command line shows them: the JSON object of one item, the exit status
of a run, results emitted in input order, the ``--format`` option of the commands that print
links (``upload``, ``clip``) and the ``--no-cache`` option of those that upload (``upload``,
``sync``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from imgsync.engine.words import FAILED, LOCAL, REMOTE
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE
from imgsync.records import replace

if TYPE_CHECKING:
    from imgsync.cli.app import AppContext
    from imgsync.config import Settings
    from imgsync.engine.results import UploadResult

F = TypeVar("F", bound=Callable[..., Any])

# `--no-cache` of the commands that upload (docs/contract.md): one run without the local index.
NO_CACHE_OPTION = click.option(
    "--no-cache",
    is_flag=True,
    help="Do not answer from the local index for this run: ask the image bed about every image"
    " (what is learned is still recorded).",
)


def run_settings(
    app: AppContext,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    no_cache: bool,
) -> Settings:
    """The settings of one run (``overrides`` from its flags); with ``no_cache`` the local index
    answers nothing."""
    settings = app.settings(overrides)
    return replace(settings, skip_index=True) if no_cache else settings


def result_json(result: UploadResult) -> dict[str, Any]:
    """The object ``imgsync upload --json`` prints for one item (docs/contract.md); ``ok`` is
    whether it got a link (:attr:`~imgsync.engine.results.UploadResult.linked`)."""
    return {
        "input": result.input,
        "ok": result.linked,
        "url": result.url,
        "md5": result.md5,
        "fileID": result.file_id,
        "error": result.error,
        "kind": result.kind,
        "status": result.status,
    }


class Outcome(Protocol):
    """One item of a command: whether it was done, and whether its failure was the service being
    out of reach (an UploadResult, a manage command's ItemOutcome or copy task)."""

    @property
    def ok(self) -> bool: ...

    @property
    def unreachable(self) -> bool: ...


def exit_status(results: Sequence[Outcome]) -> int:
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
        # Not loaded by a run that never stops early (a sync with nothing to upload).
        from imgsync.engine.items import is_url
        from imgsync.engine.results import UploadResult

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


def check_format(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A ``--format`` value, checked before anything is read or uploaded (exit 2 if wrong)."""
    if value is None:
        return None
    from imgsync.errors import ConfigError
    from imgsync.links import validate_format

    try:
        validate_format(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def format_option(default: str) -> Callable[[F], F]:
    """The ``--format`` option of the commands that print links; ``default`` is said in its
    help."""
    return click.option(
        "--format",
        "fmt",
        metavar="FORMAT",
        callback=check_format,
        help="Link format: markdown, html, url, or a template with $url, $fileName, $extName. "
        f"Default: {default}.",
    )
