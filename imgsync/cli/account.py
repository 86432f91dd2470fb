"""``imgsync login``: check the credentials and store the token."""

from __future__ import annotations

import click

from imgsync.cli.app import AppContext, handle_errors, pass_app


@click.command()
@pass_app
@handle_errors
def login(app: AppContext) -> None:
    """Check the credentials with the service and store the token."""
    from imgsync.jobs.login import login as do_login

    settings = app.settings()
    settings.require_credentials()
    token = do_login(settings)
    if settings.account.access_token:
        until = "the pasted access token works; its expiry is not known to imgsync"
    else:
        until = f"token valid until {token.expired_at.isoformat()}"
    click.echo(f"logged in to {settings.account.base_url}; {until}", err=True)
