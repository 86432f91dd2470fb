"""The ``imgsync`` command line: parse, build Settings, call the engine, map errors to exit codes.

No HTTP, SQL or markdown parsing lives here. Imports of the engine stay inside the commands:
``imgsync upload`` runs on every paste in an editor, so start-up must stay small.

Every error imgsync raises on purpose becomes one line on stderr and the exit status of
docs/contract.md; an unexpected exception becomes one line too, with the traceback only at ``-vv``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from imgsync.errors import EXIT_PARTIAL, EXIT_USAGE, ImgsyncError

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.jobs.sync import SyncReport

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("imgsync")

EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


class AppContext:
    """What every command gets: the global options, and Settings built on first use."""

    def __init__(self, config_path: str | None, verbosity: int) -> None:
        self.config_path = config_path
        self.verbosity = verbosity
        self._settings: Settings | None = None

    def settings(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
        """Load (once) and return the validated settings; ``overrides`` come from flags."""
        if self._settings is None or overrides:
            from imgsync.config import load_settings

            self._settings = load_settings(self.config_path, overrides=overrides)
            _install_redaction(self._settings)
        return self._settings


class _Redactor(logging.Filter):
    """Last line of defence: no log record ever shows a configured secret."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, "<redacted>")
            record.msg, record.args = text, None
        return True


def _install_redaction(settings: Settings) -> None:
    secrets = [settings.account.client_secret, settings.account.access_token]
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _Redactor)]:
            handler.removeFilter(old)
        handler.addFilter(_Redactor(secrets))


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    if not any(getattr(h, "_imgsync", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("imgsync: %(levelname)s: %(message)s"))
        handler._imgsync = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG, presigned query strings included: keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def fail(message: str, code: int) -> None:
    """Print one line on stderr and exit with ``code``."""
    click.echo(f"imgsync: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Map exceptions to one stderr line and the documented exit status."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ImgsyncError as exc:
            log.debug("failed", exc_info=True)
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last net: never a traceback for users
            log.debug("internal error", exc_info=True)
            fail(
                f"internal error: {type(exc).__name__}: {exc} (run with -vv for details)",
                EXIT_PARTIAL,
            )

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $IMGSYNC_CONFIG, else the user config folder).",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debug).")
@click.version_option(package_name="imgsync")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Put the images of your markdown notes on your 123pan image bed and rewrite the links."""
    _setup_logging(verbose)
    ctx.obj = AppContext(config_path, verbose)


pass_app = click.make_pass_decorator(AppContext)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 picks a free one).",
)
@click.option("--data-dir", metavar="DIR", help="Keep state here across restarts.")
@click.option("--client-id", default="demo", show_default=True)
@click.option("--client-secret", default="demo", show_default=True)
@handle_errors
def emulator(
    host: str, port: int, data_dir: str | None, client_id: str, client_secret: str
) -> None:
    """Run the local 123pan image-bed emulator."""
    from imgsync.emulator import run_cli

    try:
        run_cli(host, port, data_dir, client_id, client_secret)
    except OSError as exc:
        fail(f"cannot start the emulator on {host}:{port}: {exc.strerror or exc}", EXIT_USAGE)


@main.command()
@pass_app
@handle_errors
def login(app: AppContext) -> None:
    """Check the credentials with the service and store the token."""
    from imgsync.client.tokens import login as do_login

    settings = app.settings()
    settings.require_credentials()
    token = do_login(settings)
    if settings.account.access_token:
        until = "the pasted access token works; its expiry is not known to imgsync"
    else:
        until = f"token valid until {token.expired_at.isoformat()}"
    click.echo(f"logged in to {settings.account.base_url}; {until}", err=True)


def _print_sync_report(report: SyncReport, *, base: Path, verbose: bool, err: bool = True) -> None:
    """The human summary of a sync (stderr by default): problems, changed notes, totals."""
    from imgsync.jobs.sync import FAILED, printable

    def echo(text: str) -> None:
        # Names and targets may hold bytes that are not UTF-8: shown as \xNN, never a crash.
        click.echo(printable(text), err=err)

    for note in report.notes:
        if note.unchanged_since_last_sync:
            continue  # nothing to say (and a re-sync of a big vault is mostly these)
        shown = _shown(note.path, base)
        if note.error:
            echo(f"{shown}: {note.error}")
        for warning in note.warnings:
            echo(f"{shown}: warning: {warning}")
        for image in note.images:
            if image.status == FAILED or (verbose and image.error):
                echo(f"{shown}:{image.line}: {image.target}: {image.error}")
        if report.dry_run:
            for old, new in note.edits:
                echo(f"{shown}: would rewrite {old} -> {new}")
        elif note.changed:
            echo(f"{shown}: links rewritten")
    totals = report.totals()
    words = ", ".join(f"{totals[k]} {k}" for k in ("uploaded", "reused", "cached", "skipped"))
    prefix = "dry run: " if report.dry_run else ""
    failed = sum(1 for n in report.notes for i in n.images if i.status == FAILED)
    echo(
        f"{prefix}{totals['notes']} notes, {totals['changed']} changed; "
        f"image links: {words}, {failed} failed"
    )


def _shown(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


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
    progress = _Progress(enabled=not as_json and sys.stderr.isatty())
    try:
        with _stop_on_signals(progress):
            report = syncer.run(list(paths), on_upload_start=progress.start, on_image=progress.step)
    except KeyboardInterrupt as exc:
        _exit_stopped(exc)
    progress.finish()
    base = Path.cwd()
    if as_json:
        _echo_json(report.to_json(base))
    _print_sync_report(report, base=base, verbose=app.verbosity > 0 or dry_run)
    sys.exit(report.exit_code)


def _echo_json(document: object) -> None:
    """Print one JSON document on stdout, readable as UTF-8 where the console allows it.

    A console in a legacy code page (Windows pipes, old locales), or a name holding bytes that
    are not UTF-8, gets the same JSON in ASCII with \\u escapes rather than no JSON at all.
    """
    import json

    text = json.dumps(document, ensure_ascii=False)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(document)
    click.echo(text)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so that it unwinds the same way."""


EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


@contextlib.contextmanager
def _stop_on_signals(progress: _Progress) -> Iterator[None]:
    """While a sync runs, Ctrl-C (SIGINT) and SIGTERM stop it cleanly.

    The first signal says what happens and raises: no new upload starts, those in flight are let
    finish, and the run unwinds (a note being written is either written whole or left as it was;
    temporary files are removed). The wait for uploads in flight can be long on a slow network:
    a second signal cuts it. Later signals are ignored, so that they cannot cut the cleanup.
    Without a handler, SIGTERM would end the process with no cleanup at all.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    state = {"told": False, "raised": 0}

    def stop(signum: int, _frame: Any) -> None:
        if not state["told"]:
            state["told"] = True
            lead = "\n" if progress.shown else ""
            os.write(
                2,
                f"{lead}imgsync: stopping: no new uploads; notes not yet rewritten stay as they "
                "are (press Ctrl-C again not to wait for the uploads in flight)\n".encode(),
            )
        if state["raised"] >= 2:
            return
        # Counted only once the exception exists: a signal handled in between (the first one's
        # message takes a moment) then raises in this one's place and is counted as it.
        exc = _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        state["raised"] += 1
        raise exc

    previous: dict[int, Any] = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, stop)
        yield
    finally:
        for sig, handler in previous.items():
            # Once stopping, all that is left is to say so and exit: no signal is to cut that.
            signal.signal(sig, signal.SIG_IGN if state["told"] else handler)


def _exit_stopped(exc: KeyboardInterrupt) -> None:
    """End a sync a signal stopped: say so and exit 130 (SIGINT) or 143 (SIGTERM).

    The run has unwound: nothing is being written and its temporary files are gone. Uploads
    still in flight (after a second signal) would hold the exit until they end; they are not
    waited for: their results are not used, and the cache is safe from a sudden exit.
    """
    terminated = isinstance(exc, _Terminated)
    click.echo(f"imgsync: {'terminated' if terminated else 'interrupted'}", err=True)
    code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    lingering = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(not t.daemon for t in lingering):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise (editors, pipes, --json)."""

    WIDTH = 30  # characters of bar: fits an 80-column terminal with the counts beside it

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        self._show()

    def step(self, _result: object) -> None:
        self.done += 1
        self._show()

    @property
    def shown(self) -> bool:
        """Whether a bar is on the terminal's current line."""
        return self.enabled and self.total > 0

    def _show(self) -> None:
        if self.enabled and self.total:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            click.echo(f"\rimages [{bar}] {self.done}/{self.total}", err=True, nl=False)

    def finish(self) -> None:
        if self.enabled and self.total:
            click.echo("", err=True)


@main.command()
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=".",
    show_default=True,
    help="Where to create the demo notes folder.",
)
@click.option("--serve", is_flag=True, help="Keep the emulator running so the links open.")
@pass_app
@handle_errors
def demo(app: AppContext, parent: Path, serve: bool) -> None:
    """Try imgsync on sample notes against a built-in emulator (no account needed)."""
    from imgsync.config import default_config_path
    from imgsync.emulator import Emulator
    from imgsync.jobs.demo import run_demo

    settings = app.settings()
    with Emulator() as emu:
        result = run_demo(settings, parent.resolve(), emu.base_url)
        folder = result.folder
        click.echo(f"Copied the sample notes to {folder}")
        click.echo(f"Started a local 123pan image-bed emulator at {emu.base_url}")
        click.echo("Ran: imgsync sync on that folder. What changed (only the links):\n")
        for diff in result.diffs.values():
            click.echo(diff)
        click.echo("Links now in the notes:")
        for note in result.report.notes:
            for image in note.images:
                shown = image.url or f"(left alone: {image.error})"
                click.echo(f"  {_shown(note.path, folder)}:{image.line}  {image.target}")
                click.echo(f"      -> [{image.status}] {shown}")
        _print_sync_report(result.report, base=folder, verbose=False, err=False)
        click.echo("\nRan sync a second time: nothing to upload, nothing to write:")
        _print_sync_report(result.second, base=folder, verbose=False, err=False)
        click.echo(
            "\nTo use your own 123pan account: create an application on the 123pan Open "
            f"Platform, put its client_id and client_secret in {default_config_path()} "
            "(see config.example.toml; or set IMGSYNC_CLIENT_ID and IMGSYNC_CLIENT_SECRET), "
            "then run `imgsync login` and `imgsync sync YOUR-NOTES-FOLDER`."
        )
        if serve:
            click.echo(f"\nServing the links at {emu.base_url}; press Ctrl-C to stop.")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        else:
            click.echo(
                "(The emulator stops with this command, so these links stop working; "
                "use `imgsync demo --serve` to keep it running.)"
            )
    sys.exit(result.report.exit_code)


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
    from imgsync.engine.uploader import InOrder, Uploader, UploadResult, exit_status, resolve_item

    stopped = False

    def show(result: UploadResult) -> None:
        if not result.ok and not stopped:
            click.echo(f"imgsync: {result.input}: {result.error}", err=True)
        if not as_json:
            click.echo(result.url if result.ok and result.url else "")

    in_order = InOrder(len(items), show)
    try:
        with Uploader.from_settings(app.settings()) as uploader:
            results = uploader.upload_many([resolve_item(i) for i in items], on_result=in_order)
    except ImgsyncError as exc:
        # The run stopped (configuration, authentication): still one answer per item; the
        # reason is printed once, by handle_errors.
        stopped = True
        in_order.fail_rest(items, str(exc), exc.exit_code)
        if as_json:
            _echo_json([r.to_json() for r in in_order.results])
        raise
    if as_json:
        _echo_json([r.to_json() for r in results])
    status = exit_status(results)
    if status:
        sys.exit(status)
