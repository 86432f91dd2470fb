"""The emulator's application core: one account's state and the path from request to envelope.

Independent of HTTP plumbing (see :mod:`imgsync.emulator.server`): given a method, path, headers
and decoded parameters, :meth:`EmulatorApp.answer_api` does what the real gateway and service do
in order: route, check ``Platform`` and the token, throttle, validate, run the endpoint, wrap the
result in the envelope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import api_tasks, api_tree, api_upload
from .faults import FaultPlan
from .protocol import (
    CODE_BAD_REQUEST,
    CODE_OK,
    CODE_TOO_MANY_REQUESTS,
    CODE_UNAUTHORIZED,
    MSG_OK,
    MSG_TOKEN_INVALID,
    MSG_TOO_MANY_REQUESTS,
    ApiError,
    Params,
    envelope,
)
from .settings import Settings
from .state import State
from .tasks import TaskRunner
from .traffic import RateLimiter, RequestLog

logger = logging.getLogger(__name__)

PLATFORM_HEADER = "Platform"
PLATFORM_VALUE = "open_platform"
BEARER_PREFIX = "Bearer "
# Status and code of the envelope answered for paths the service does not have.
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
INTERNAL_ERROR = 500


@dataclass(frozen=True)
class Call:
    """What an endpoint handler gets: the app, its parameters and the caller's client id."""

    app: EmulatorApp
    params: Params
    client_id: str


@dataclass(frozen=True)
class Route:
    method: str
    handler: Callable[[Call], Any]
    needs_token: bool = True


def all_routes() -> dict[str, Route]:
    return {**api_tree.routes(), **api_upload.routes(), **api_tasks.routes()}


class EmulatorApp:
    """State, settings, faults, request log, rate limits and task workers of one emulator."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        data_dir: Path | None,
        config: Mapping[str, Any] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.sleep = sleep
        # What reset returns to: defaults plus the constructor's config.
        self.initial_settings = Settings().updated(config or {})
        self.state = State(client_id, data_dir, self.initial_settings)
        if config:
            self.state.settings = self.state.settings.updated(config)
        self.faults = FaultPlan()
        self.log = RequestLog()
        self.limiter = RateLimiter()
        self.tasks = TaskRunner(self)
        self.routes = all_routes()
        self.base_url = ""  # set by the server once it knows its port

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def configure(self, changes: Mapping[str, Any]) -> Settings:
        """Apply a validated settings change (raises SettingsError) and wake waiting workers."""
        with self.state.lock:
            self.state.settings = self.state.settings.updated(changes)
            self.state.mark_dirty()
            self.state.commit()
            self.tasks.wake()
            return self.state.settings

    def reset(self) -> None:
        """Forget files, folders, tasks, tokens, faults, settings and the request log."""
        with self.state.lock:
            self.tasks.forget_all()
            self.state.reset(self.initial_settings)
        self.faults.clear()
        self.log.clear()
        self.limiter.clear()

    # ------------------------------------------------------------------------- the API pipeline

    def answer_api(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        body: Any,
        body_problem: str | None,
    ) -> tuple[int, dict[str, Any]]:
        """HTTP status and envelope for one API request (faults are the server's business)."""
        if self.settings.latency_ms:
            self.sleep(self.settings.latency_ms / 1000)
        route = self.routes.get(path)
        if route is None:
            return NOT_FOUND, envelope(NOT_FOUND, f"no such endpoint: {path}", None)
        if route.method != method:
            # GUESS: the gateway's answer to a wrong method is unknown; 405 says what is wrong.
            message = f"{path} takes {route.method}, not {method}"
            return METHOD_NOT_ALLOWED, envelope(METHOD_NOT_ALLOWED, message, None)
        try:
            client_id = self._authenticate(route, headers, body)
            # GUESS [client]: throttling answers HTTP 200 with code 429 in the body.
            if not self.limiter.allow(client_id, path, self.settings.qps):
                raise ApiError(CODE_TOO_MANY_REQUESTS, MSG_TOO_MANY_REQUESTS)
            params = self._params(route, query, body, body_problem)
            with self.state.lock:
                try:
                    data = route.handler(Call(self, params, client_id))
                finally:
                    self.state.commit()
        except ApiError as error:
            return error.http_status, envelope(error.code, error.message, None)
        except Exception:
            logger.exception("emulator bug while answering %s %s", method, path)
            return INTERNAL_ERROR, envelope(INTERNAL_ERROR, "internal emulator error", None)
        return 200, envelope(CODE_OK, MSG_OK, data)

    def _authenticate(self, route: Route, headers: Mapping[str, str], body: Any) -> str:
        """The caller's client id; every call needs Platform, all but access_token a live token."""
        # The access_token page lists Platform too, so it is required on every API call.
        if headers.get(PLATFORM_HEADER) != PLATFORM_VALUE:
            # GUESS: the real code for a missing Platform header is unknown.
            raise ApiError(CODE_BAD_REQUEST, f"header {PLATFORM_HEADER}: must be {PLATFORM_VALUE}")
        if not route.needs_token:
            claimed = body.get("clientID") if isinstance(body, dict) else None
            return claimed if isinstance(claimed, str) else ""
        authorization = headers.get("Authorization") or ""
        # GUESS: the scheme is matched exactly as documented ("Bearer <token>").
        if not authorization.startswith(BEARER_PREFIX):
            raise ApiError(CODE_UNAUTHORIZED, MSG_TOKEN_INVALID)
        with self.state.lock:
            owner = self.state.token_owner(authorization[len(BEARER_PREFIX) :].strip())
        if owner is None:
            raise ApiError(CODE_UNAUTHORIZED, MSG_TOKEN_INVALID)
        return owner

    @staticmethod
    def _params(
        route: Route, query: Mapping[str, str], body: Any, body_problem: str | None
    ) -> Params:
        if route.method == "GET":
            return Params(query, from_query=True)
        if body_problem is not None:
            raise ApiError(CODE_BAD_REQUEST, body_problem)
        if not isinstance(body, dict):
            raise ApiError(CODE_BAD_REQUEST, "the request body must be a JSON object")
        return Params(body)
