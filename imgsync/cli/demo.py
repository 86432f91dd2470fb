"""``imgsync demo``: the main job on sample notes, against a built-in emulator."""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.output import shown
from imgsync.cli.sync import print_sync_report, sync_exit_status


@click.command()
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
                link = image.url or f"(left alone: {image.error})"
                click.echo(f"  {shown(note.path, folder)}:{image.line}  {image.target}")
                click.echo(f"      -> [{image.status}] {link}")
        print_sync_report(result.report, base=folder, verbose=False, err=False)
        click.echo("\nRan sync a second time: nothing to upload, nothing to write:")
        print_sync_report(result.second, base=folder, verbose=False, err=False)
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
    sys.exit(sync_exit_status(result.report))
