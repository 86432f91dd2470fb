"""The ``imgsync`` command group: global options, settings built on first use, logging with secrets
redacted, and the one place where errors become a line on stderr and an exit status.

Every error imgsync raises on purpose becomes one line on stderr and the exit status of
docs/contract.md; an unexpected exception becomes one line too, with the traceback only at ``-vv``.
"""

from __future__ import annotations

import atexit
import functools
import gc
import logging
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from imgsync import __version__
from imgsync.cli.commands import COMMANDS
from imgsync.cli.lazy import LazyGroup
from imgsync.errors import EXIT_PARTIAL, ImgsyncError

if TYPE_CHECKING:
    from imgsync.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("imgsync")

EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


class AppContext:
    """What every command gets: the global options, and Settings built on first use."""

    def __init__(self, config_path: str | None, verbosity: int) -> None:
        self.config_path = config_path
        self.verbosity = verbosity
        self._settings: Settings | None = None
        self._warned: set[str] = set()

    def settings(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
        """Load (once) and return the validated settings; ``overrides`` come from flags.

        The configuration's warnings (a secret other users can read) go to stderr, each once per
        run however often the settings are loaded.
        """
        if self._settings is None or overrides:
            from imgsync.config import load_settings

            self._settings = load_settings(self.config_path, overrides=overrides)
            _install_redaction(self._settings)
            for warning in self._settings.warnings:
                if warning not in self._warned:
                    self._warned.add(warning)
                    click.echo(f"imgsync: warning: {warning}", err=True)
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
    secrets.append(settings.serve.secret)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _Redactor)]:
            handler.removeFilter(old)
        handler.addFilter(_Redactor(secrets))


class _LineFormatter(logging.Formatter):
    """``imgsync: warning: …``: a log line on stderr reads like the command's own messages
    (a retry's notice at default verbosity is for the user, not a developer's log)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"imgsync: {record.levelname.lower()}: {super().format(record)}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to ``sys.stderr`` as it is when the record comes (as logging's own last
    resort does), not to the stream of the run that made the handler: the group may run more than
    once in one process (the tests run it in-process, each run with a stderr of its own), and the
    handler is made once."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    if not any(getattr(h, "_imgsync", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_LineFormatter())
        handler._imgsync = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG, presigned query strings included: keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def _spare_the_last_collection() -> None:
    """At exit, skip the garbage collector's last pass over every object the process loaded
    (click, the settings, the index's modules): it cost about 10 ms of every command, a sixth of
    what a no-op sync of 10,000 notes spends beyond walking them.

    ``gc.freeze`` run by atexit (after the command, before the interpreter tears down) leaves
    objects in reference cycles to the operating system instead of collecting them. Python
    promises no finalizer at exit, and imgsync needs none: a note is written whole and replaced
    atomically, the index is closed, files are closed where they are opened, before the command
    returns. Registered once per process, however often the group runs (the tests run it
    in-process).
    """
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


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


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $IMGSYNC_CONFIG, else the user config folder).",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debug).")
# The version is the package's own: asking the installed metadata (importlib.metadata) for it
# would cost ``imgsync --version`` about 20 ms of imports.
@click.version_option(__version__, package_name="imgsync")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Put the images of your markdown notes on your 123pan image bed and rewrite the links."""
    _setup_logging(verbose)
    _spare_the_last_collection()
    ctx.obj = AppContext(config_path, verbose)


pass_app = click.make_pass_decorator(AppContext)
