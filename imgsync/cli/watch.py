"""``imgsync watch``: the command, and what the watcher's events become: one line per processed note
on stderr, and with ``--json`` one JSON event per line on stdout (shapes in the README).

It runs until Ctrl-C or SIGTERM, and a stop is clean: the pass in flight may finish for
``watch.stop_grace`` seconds; after that (or at a second signal) the note writes in flight are let
finish, none is started, and the process exits. Stopping is how a watcher is meant to end, so a
clean stop exits 0, as a daemon does for its service manager.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.output import echo_json, printable, shown
from imgsync.cli.sync import _no_empty_paths, sync_report_json
from imgsync.engine.results import CACHED, FAILED, MIGRATED, REUSED, UPLOADED

if TYPE_CHECKING:
    from imgsync.jobs.watch import NoteSynced, Watcher, WatchEvent

#: How long a hard stop waits for the note writes in flight (each takes milliseconds).
WRITES_WAIT_S = 30.0
#: How often the main thread looks whether the watcher has ended (signals are handled at once).
JOIN_POLL_S = 0.2
#: Status words counted in a note's line, in this order.
COUNTED = (UPLOADED, MIGRATED, REUSED, CACHED)


class WatchPrinter:
    """Turns watch events into stderr lines and, with ``as_json``, JSON lines on stdout."""

    def __init__(self, *, base: Path, as_json: bool, verbose: bool) -> None:
        self.base = base
        self.as_json = as_json
        self.verbose = verbose
        self._lock = threading.Lock()

    def event(self, event: WatchEvent) -> None:
        from imgsync.jobs import watch as job

        with self._lock:
            if isinstance(event, job.NoteSynced):
                self._note(event)
            elif isinstance(event, job.Waiting):
                self._waiting(event)
            elif isinstance(event, job.Started):
                self._started(event)
            elif isinstance(event, job.Ready):
                self._ready(event)
            elif isinstance(event, job.FellBack):
                self.line(f"imgsync: {event.reason}; watching by polling from now on")
                self.json({"event": "fallback", "observer": "polling", "reason": event.reason})

    def stopped(self, how: str, signame: str) -> None:
        with self._lock:
            self.line("imgsync: watch stopped")
            self.json({"event": "stopped", "signal": signame, "in_flight": how})

    def failed(self, message: str, code: int) -> None:
        with self._lock:
            self.json({"event": "error", "message": printable(message), "exit": code})

    # -- one kind of event each -------------------------------------------------------------------

    def _started(self, event: Any) -> None:
        if event.fallback:
            self.line(f"imgsync: {event.fallback}; watching by polling instead")
        how = "file events" if event.observer == "native" else "polling"
        names = ", ".join(shown(Path(p), self.base) for p in event.paths)
        self.line(f"imgsync: watching {names} ({how}); syncing what changed meanwhile")
        self.json(
            {
                "event": "started",
                "paths": list(event.paths),
                "observer": event.observer,
                "fallback": event.fallback,
                "pid": os.getpid(),
            }
        )

    def _ready(self, event: Any) -> None:
        totals = event.totals
        what = "start-up" if event.trigger == "startup" else "catch-up"
        self.line(
            f"imgsync: {what} sync done: {totals['notes']} notes, {totals['changed']} changed, "
            f"{totals['uploaded']} images uploaded, {totals['failed']} failed; watching "
            "(Ctrl-C to stop)"
        )
        self.json({"event": "ready", "trigger": event.trigger, "totals": totals})

    def _waiting(self, event: Any) -> None:
        name = shown(Path(event.path), self.base)
        why = "not there yet" if event.reason == "missing" else "still being written"
        if self.verbose:
            self.line(f"{name}: waiting for {', '.join(event.targets)} ({why})")
        self.json(
            {
                "event": "waiting",
                "path": printable(name),
                "images": [printable(t) for t in event.targets],
                "reason": event.reason,
            }
        )

    def _note(self, event: NoteSynced) -> None:
        from imgsync.jobs.sync_report import SyncReport

        outcome = event.outcome
        name = shown(outcome.path, self.base)
        for warning in outcome.warnings:
            self.line(f"{name}: warning: {warning}")
        line = _note_line(event)
        if line is not None or self.verbose:
            self.line(f"{name}: {line or 'up to date'}")
        if self.as_json:
            document = sync_report_json(SyncReport(notes=[outcome]), self.base)["notes"][0]
            self.json(
                {"event": "note", "trigger": event.trigger, **document, "retry_in": event.retry_in}
            )

    # -- output -----------------------------------------------------------------------------------

    def line(self, text: str) -> None:
        click.echo(printable(text), err=True)

    def json(self, document: dict[str, Any]) -> None:
        if self.as_json:
            echo_json(document)
            sys.stdout.flush()


def _note_line(event: NoteSynced) -> str | None:
    """What a pass did to a note, in one line; None when there is nothing to say."""
    outcome = event.outcome
    if outcome.error is not None and not outcome.images:
        parts = [outcome.error]
    else:
        counts = {status: 0 for status in COUNTED}
        for image in outcome.images:
            if image.status in counts:
                counts[image.status] += 1
        done = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        parts = []
        if outcome.changed:
            parts.append(f"links rewritten ({done})" if done else "links rewritten")
        failed = [i for i in outcome.images if i.status == FAILED]
        if failed:
            shown_failures = "; ".join(f"{i.target} (line {i.line}): {i.error}" for i in failed)
            parts.append(f"{len(failed)} failed: {shown_failures}")
        if outcome.error is not None:
            parts.append(outcome.error)
    if event.retry_in is not None:
        parts.append(f"retrying in {event.retry_in:g} s")
    return "; ".join(parts) if parts else None


@click.command()
@click.option("--poll", is_flag=True, help="Poll the folders instead of using file events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line on stdout.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Notes root (default: nearest folder with .obsidian, else the folder given).",
)
@click.option(
    "--debounce",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Seconds a note must be left alone before it is synced (default: watch.debounce, 1.5).",
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
def watch(
    app: AppContext,
    poll: bool,
    as_json: bool,
    root: Path | None,
    debounce: float | None,
    allow_outside_root: bool,
    allow_data_uri: bool,
    paths: tuple[Path, ...],
) -> None:
    """Keep the notes at PATHS synced: sync them now, then each note again as it changes.

    One line per processed note goes to stderr; --json adds one JSON event per line on stdout.
    Runs until Ctrl-C or SIGTERM (exit status 0). A second watcher of the same folder says the
    first one's pid and exits 2.
    """
    from imgsync.jobs.watch import Watcher

    settings = app.settings({"watch": {"debounce": debounce}})
    settings.require_credentials()
    printer = WatchPrinter(base=Path.cwd(), as_json=as_json, verbose=app.verbosity > 0)
    watcher = Watcher(
        settings,
        list(paths),
        on_event=printer.event,
        root=root,
        poll=poll,
        allow_outside_root=allow_outside_root,
        allow_data=allow_data_uri,
    )
    watcher.start()
    signame = _run_until_stopped(watcher, settings.watch.stop_grace, printer)
    failure = watcher.failure
    if failure is not None:
        code = getattr(failure, "exit_code", 1)
        printer.failed(str(failure), code)
        raise failure
    printer.stopped("finished", signame)


def _run_until_stopped(watcher: Watcher, grace: float, printer: WatchPrinter) -> str:
    """Wait for the watcher; on a signal ask it to stop, and cut the wait once ``grace`` seconds
    have passed or a second signal comes. Returns the name of the signal (or "" if none)."""
    import time

    signals: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        signals.append(signum)
        watcher.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    deadline: float | None = None
    try:
        while not watcher.join(JOIN_POLL_S):
            if signals and deadline is None:
                click.echo("imgsync: stopping: finishing the pass in flight", err=True)
                deadline = time.monotonic() + grace
            if deadline is not None and (len(signals) > 1 or time.monotonic() >= deadline):
                _stop_now(printer, signal.Signals(signals[0]).name)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return signal.Signals(signals[0]).name if signals else ""


def _stop_now(printer: WatchPrinter, signame: str) -> None:
    """Leave the pass in flight: let the note writes in flight finish, start none, exit 0.

    Notes not yet written stay exactly as they were; uploads in flight are abandoned (the index is
    safe from a sudden exit, and the next run finds what they stored).
    """
    from imgsync.notes.notelock import stop_writes

    stop_writes(timeout=WRITES_WAIT_S)
    printer.stopped("abandoned", signame)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
