"""Stopping a long command cleanly on Ctrl-C (SIGINT) and SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import click

from imgsync.cli.app import EXIT_INTERRUPTED, EXIT_TERMINATED
from imgsync.cli.progress import Progress


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so that it unwinds the same way."""


@contextlib.contextmanager
def stop_on_signals(progress: Progress) -> Iterator[None]:
    """While a command runs, Ctrl-C (SIGINT) and SIGTERM stop it cleanly.

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
        exc = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
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


def exit_stopped(exc: KeyboardInterrupt) -> None:
    """End a command a signal stopped: say so and exit 130 (SIGINT) or 143 (SIGTERM).

    The run has unwound: nothing is being written and its temporary files are gone. Uploads
    still in flight (after a second signal) would hold the exit until they end; they are not
    waited for: their results are not used, and the cache is safe from a sudden exit.
    """
    terminated = isinstance(exc, Terminated)
    click.echo(f"imgsync: {'terminated' if terminated else 'interrupted'}", err=True)
    code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    lingering = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(not t.daemon for t in lingering):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
