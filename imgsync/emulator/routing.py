"""The API's routing: the table from path (and its one method) to handler, and the gateway's
pipeline around each call.

Data flows one way: the server hands a request here, this module picks the handler from
:data:`ROUTES` and runs it on the emulator's parts (:class:`~imgsync.emulator.app.EmulatorApp`);
handlers never import this module. :func:`answer_api` does what the real gateway and service do,
in order: route, check ``Platform`` and the token, throttle, validate, run the endpoint, wrap the
result in the envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import api_tasks, api_tree, api_upload
from .app import Call, EmulatorApp
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

logger = logging.getLogger(__name__)

PLATFORM_HEADER = "Platform"
PLATFORM_VALUE = "open_platform"
BEARER_PREFIX = "Bearer "
# Status and code of the envelope answered for paths the service does not have.
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
INTERNAL_ERROR = 500


@dataclass(frozen=True)
class Route:
    """One endpoint: the method it takes, its handler, and whether it needs an access token."""

    method: str
    handler: Callable[[Call], Any]
    needs_token: bool = True


# Every API endpoint the emulator answers, by path; each path takes exactly one method.
ROUTES: Mapping[str, Route] = {
    # The account and the folder tree.
    "/api/v1/access_token": Route("POST", api_tree.access_token, needs_token=False),
    "/upload/v1/oss/file/mkdir": Route("POST", api_tree.mkdir),
    "/api/v1/oss/file/list": Route("POST", api_tree.list_files),
    "/api/v1/oss/file/detail": Route("GET", api_tree.detail),
    "/api/v1/oss/file/delete": Route("POST", api_tree.delete),
    "/api/v1/oss/file/move": Route("POST", api_tree.move),
    # The upload flow (the presigned PUT itself is the server's storage side).
    "/upload/v1/oss/file/create": Route("POST", api_upload.create),
    "/upload/v1/oss/file/get_upload_url": Route("POST", api_upload.get_upload_url),
    "/upload/v1/oss/file/upload_complete": Route("POST", api_upload.upload_complete),
    "/upload/v1/oss/file/upload_async_result": Route("POST", api_upload.upload_async_result),
    # GUESS: the cloud-drive name of this endpoint, mirrored under the image-bed prefix.
    "/upload/v1/oss/file/list_upload_parts": Route("POST", api_upload.list_upload_parts),
    # Background tasks: offline migration and cloud-drive copy.
    "/api/v1/oss/offline/download": Route("POST", api_tasks.offline_download),
    "/api/v1/oss/offline/download/process": Route("GET", api_tasks.offline_process),
    "/api/v1/oss/source/copy": Route("POST", api_tasks.source_copy),
    "/api/v1/oss/source/copy/process": Route("GET", api_tasks.copy_process),
    "/api/v1/oss/source/copy/fail": Route("GET", api_tasks.copy_fail),
}


def answer_api(
    app: EmulatorApp,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: Any,
    body_problem: str | None,
) -> tuple[int, dict[str, Any]]:
    """HTTP status and envelope for one API request (faults are the server's business)."""
    if app.settings.latency_ms:
        app.sleep(app.settings.latency_ms / 1000)
    route = ROUTES.get(path)
    if route is None:
        return NOT_FOUND, envelope(NOT_FOUND, f"no such endpoint: {path}", None)
    if route.method != method:
        # GUESS: the gateway's answer to a wrong method is unknown; 405 says what is wrong.
        message = f"{path} takes {route.method}, not {method}"
        return METHOD_NOT_ALLOWED, envelope(METHOD_NOT_ALLOWED, message, None)
    try:
        client_id = _authenticate(app, route, headers, body)
        # GUESS [client]: throttling answers HTTP 200 with code 429 in the body.
        if not app.limiter.allow(client_id, path, app.settings.qps):
            raise ApiError(CODE_TOO_MANY_REQUESTS, MSG_TOO_MANY_REQUESTS)
        params = _params(route, query, body, body_problem)
        with app.state.lock:
            try:
                data = route.handler(Call(app, params, client_id))
            finally:
                app.state.commit()
    except ApiError as error:
        return error.http_status, envelope(error.code, error.message, None)
    except Exception:
        logger.exception("emulator bug while answering %s %s", method, path)
        return INTERNAL_ERROR, envelope(INTERNAL_ERROR, "internal emulator error", None)
    return 200, envelope(CODE_OK, MSG_OK, data)


def _authenticate(app: EmulatorApp, route: Route, headers: Mapping[str, str], body: Any) -> str:
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
    with app.state.lock:
        owner = app.state.token_owner(authorization[len(BEARER_PREFIX) :].strip())
    if owner is None:
        raise ApiError(CODE_UNAUTHORIZED, MSG_TOKEN_INVALID)
    return owner


def _params(route: Route, query: Mapping[str, str], body: Any, body_problem: str | None) -> Params:
    """A GET's query or a POST's JSON object, as the handler's typed parameter reader."""
    if route.method == "GET":
        return Params(query, from_query=True)
    if body_problem is not None:
        raise ApiError(CODE_BAD_REQUEST, body_problem)
    if not isinstance(body, dict):
        raise ApiError(CODE_BAD_REQUEST, "the request body must be a JSON object")
    return Params(body)
