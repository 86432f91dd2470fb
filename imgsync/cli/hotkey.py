"""``imgsync hotkey``: run ``imgsync clip`` whenever the global key chord is pressed."""

from __future__ import annotations

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.daemon import until_stopped
from imgsync.cli.results import format_option

# How often the foreground thread looks whether the key listener is still alive.
LISTENER_CHECK_S = 0.5


def _to_stderr(title: str, text: str) -> None:
    lines = text.splitlines() or [""]
    for line in lines:
        click.echo(f"{title}: {line}", err=True)


@click.command()
@click.option(
    "--keys",
    metavar="CHORD",
    help="The chord, as <ctrl>+<alt>+u or ctrl+alt+u (default: hotkey.keys, <ctrl>+<alt>+u).",
)
@format_option("upload.format (markdown)")
@pass_app
@handle_errors
def hotkey(app: AppContext, keys: str | None, fmt: str | None) -> None:
    """Upload the clipboard's image whenever the key chord is pressed, wherever the focus is.

    Each press runs `imgsync clip` (one at a time, in order) and tells the result with a desktop
    notification where there is one, else on stderr. Needs the hotkey extra (pip install
    'imgsync[hotkey]'). Ctrl-C or SIGTERM stops it (status 0).
    """
    from imgsync.jobs.hotkey import start_hotkey

    settings = app.settings({"hotkey": {"keys": keys}})
    daemon = start_hotkey(settings, fmt=fmt, fallback=_to_stderr)
    click.echo(f"imgsync hotkey: listening for {daemon.chord}; press Ctrl-C to stop", err=True)
    stopped = False
    try:
        with until_stopped():
            while daemon.listening():
                daemon.wait(LISTENER_CHECK_S)
            stopped = True
    finally:
        daemon.stop()
    if stopped:
        from imgsync.cli.app import fail
        from imgsync.errors import EXIT_PARTIAL

        fail("the key listener stopped (did the display go away?)", EXIT_PARTIAL)
    click.echo("imgsync: hotkey stopped", err=True)
