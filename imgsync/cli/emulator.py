"""``imgsync emulator``: run the local 123pan image-bed emulator in the foreground."""

from __future__ import annotations

import click

from imgsync.cli.app import fail, handle_errors
from imgsync.errors import EXIT_USAGE


@click.command()
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
