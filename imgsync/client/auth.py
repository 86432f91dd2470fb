"""Asking the service for an access token: ``POST /api/v1/access_token`` with client id and secret.

This sits below the Api, beside the token provider it feeds (:mod:`imgsync.client.tokens`), so
that obtaining, storing and refreshing tokens are settled under the Api: the transport's retry loop
refreshes once on a 401 and sends again, and the Api's methods never see a token.

Every fetch uses one of the account's 3 token slots (api-facts.md): nothing calls this but
:class:`~imgsync.client.tokens.TokenProvider`, which stores the token and reuses it for 30 days.
"""

from __future__ import annotations

from imgsync.client.tokens import Token, parse_expiry
from imgsync.client.transport import Transport
from imgsync.errors import ApiError, AuthError, ConfigError, RateLimited, ServerError

__all__ = ["TokenIssuer"]

ACCESS_TOKEN_PATH = "/api/v1/access_token"


class TokenIssuer:
    """Obtains new tokens for one client id and secret, through an unauthenticated transport."""

    def __init__(self, transport: Transport, client_id: str, client_secret: str) -> None:
        self._transport = transport
        self._client_id = client_id
        self._client_secret = client_secret

    def __repr__(self) -> str:  # never show the secret
        return f"TokenIssuer(client_id={self._client_id!r})"

    def issue(self) -> Token:
        """A new token for the client id and secret (uses one of the account's 3 slots!).

        Any refusal is an AuthError: the only inputs are the credentials. Missing credentials are
        a ConfigError, raised before anything is sent.
        """
        if not (self._client_id and self._client_secret):
            raise ConfigError(
                "account.client_id and account.client_secret are needed to obtain an access token"
            )
        try:
            env = self._transport.call(
                "access_token",
                "POST",
                ACCESS_TOKEN_PATH,
                json={"clientID": self._client_id, "clientSecret": self._client_secret},
                authed=False,
            )
        except (AuthError, RateLimited, ServerError):
            raise
        except ApiError as exc:
            raise AuthError(
                exc.code,
                f"credentials refused: {exc.message}",
                endpoint=exc.endpoint,
                trace_id=exc.trace_id,
                http_status=exc.http_status,
            ) from None
        with env.parsing():
            return Token(str(env.data["accessToken"]), parse_expiry(str(env.data["expiredAt"])))
