"""``imgsync login``: check the credentials with the service and keep a valid token stored."""

from __future__ import annotations

from imgsync.client.api import Api
from imgsync.client.tokens import Token
from imgsync.config import Settings


def login(settings: Settings) -> Token:
    """Check the credentials with the service and make sure a valid token is stored.

    A fresh stored token (or a pasted one) is verified with one cheap authenticated call (list the
    root, one item) instead of fetching a new token, since every fetch uses one of the account's
    3 token slots. If that call is refused, the usual 401 handling fetches and stores a new token.
    Without a fresh stored token, fetching one is the check.

    Raises ConfigError (no credentials), AuthError (refused), NetworkError (unreachable).
    """
    settings.require_credentials()
    with Api.from_settings(settings) as api:
        tokens = api.tokens
        if tokens.stored() is not None:
            api.list_files("", limit=1)
        return tokens.current()
