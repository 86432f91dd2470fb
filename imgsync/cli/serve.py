"""``imgsync serve``: the PicGo-compatible server for Typora and Obsidian, in the foreground."""

from __future__ import annotations

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app
from imgsync.cli.daemon import until_stopped


@click.command()
@click.option("--host", metavar="H", help="Address to bind (default: serve.host, 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="P",
    help="Port (default: serve.port, 36677; 0 picks a free one).",
)
@click.option(
    "--secret",
    metavar="S",
    help="Uploads need this secret (default: serve.secret or $IMGSYNC_SERVE_SECRET; "
    "prefer those: other users can see command lines).",
)
@pass_app
@handle_errors
def serve(app: AppContext, host: str | None, port: int | None, secret: str | None) -> None:
    """Serve the PicGo upload protocol (POST /upload, /heartbeat) for editors.

    Typora's "PicGo.app" uploader and Obsidian's "Image auto upload" plugin call it as they call
    PicGo. Prints one line once it accepts connections:
    "imgsync serve listening on http://HOST:PORT". If imgsync already serves that port, says so
    and exits 0; another program on it is exit status 2. Ctrl-C or SIGTERM stops it (status 0).
    """
    from imgsync.jobs.serve import AlreadyServing, start_server

    settings = app.settings({"serve": {"host": host, "port": port, "secret": secret}})
    started = start_server(settings)
    if isinstance(started, AlreadyServing):
        click.echo(f"imgsync serve is already running at {started.url}")
        return
    with started as server:
        if not settings.serve.secret and server.host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(
                f"imgsync: warning: serving on {server.host} without a secret: anyone who can "
                "reach it can publish this machine's images (set serve.secret)",
                err=True,
            )
        click.echo(f"imgsync serve listening on {server.url}")
        click.get_text_stream("stdout").flush()
        with until_stopped():
            server.serve_forever()
    click.echo("imgsync: serve stopped", err=True)
