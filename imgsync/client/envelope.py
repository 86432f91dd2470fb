"""Reading the service's answers: the 123pan JSON envelope, or why an answer is not one.

Every API answer is ``{"code": 0, "message": ..., "data": ..., "x-traceID": ...}``; a non-zero
``code`` is the service's error (:func:`imgsync.errors.api_error` picks its class). What is not
an envelope says something about where the request went, and the user is told that in words:

- HTTP 404 on an API path: nothing of the open API lives at ``account.base_url`` (a path such as
  ``/api`` at its end is the usual mistake): a :class:`~imgsync.errors.ConfigError` naming it;
- a gateway's 500/502/503/504 page: the service is in trouble; worth another try;
- any other answer without the envelope (a web page, JSON without ``code``, a redirect, a 501
  from a web server that takes no POST): :class:`~imgsync.errors.NotTheApi`, "… is not the 123pan
  open API (it answered …)", not tried again: asking again gets the same page.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from imgsync.client.failures import speaks_tls_page
from imgsync.client.retry import CODE_UNAUTHORIZED, TryAgain
from imgsync.config import DEFAULT_BASE_URL
from imgsync.errors import (
    AuthError,
    ConfigError,
    NotTheApi,
    RateLimited,
    ServerError,
    api_error,
)

__all__ = ["Envelope", "read_envelope", "retry_after"]

# How much of a non-envelope response body a message may quote: enough to recognise an HTML error
# page or a proxy's complaint, short enough to keep one message one line.
BODY_EXCERPT = 120

# HTTP statuses the retry loop sends again. 429 also arrives as a body code (the service's usual
# way).
RETRY_HTTP_STATUS_FLOOR = 500
HTTP_TOO_MANY = 429
CODE_TOO_MANY = 429
HTTP_NOT_FOUND = 404
# The 5xx a gateway in front of the service answers while the service is in trouble: worth another
# try even without the envelope. Any other 5xx without it (501 "Unsupported method" from a web
# server that takes no POST, 505, ...) comes from something that is not the API.
GATEWAY_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Envelope:
    """A successful answer: the envelope's ``data``, its ``x-traceID`` and the endpoint asked."""

    data: Any
    trace_id: str
    endpoint: str = ""

    @contextmanager
    def parsing(self) -> Iterator[None]:
        """Read ``data`` inside this block: a missing or mistyped field becomes a ServerError
        naming the endpoint and trace (the service broke its documented shape)."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ServerError(
                0,
                f"unexpected response data ({type(exc).__name__}: {exc})",
                endpoint=self.endpoint,
                trace_id=self.trace_id,
            ) from None


def read_envelope(resp: requests.Response, endpoint: str, *, base_url: str) -> Envelope:
    """The successful envelope of ``resp``, or the error it means (raised; :class:`TryAgain` for
    what is worth another attempt). ``base_url`` is the API's, for messages that name it."""
    status = resp.status_code
    host = urlsplit(base_url).netloc or base_url
    try:
        body = resp.json()
    except ValueError:
        body = None
    enveloped = isinstance(body, dict) and "code" in body
    code: int | None = None
    message = ""
    trace_id = ""
    if enveloped:
        try:
            code = int(body["code"])
        except (TypeError, ValueError):
            code = None
        message = str(body.get("message") or "")
        trace_id = str(body.get("x-traceID") or "")

    if status == HTTP_NOT_FOUND:
        raise _not_found(resp, base_url)
    if status >= RETRY_HTTP_STATUS_FLOOR and (enveloped or status in GATEWAY_STATUSES):
        error = ServerError(
            code if code else status,
            message or resp.reason or "server error",
            endpoint=endpoint,
            trace_id=trace_id,
            http_status=status,
        )
        # A 503 in maintenance (or any 5xx) may say when to come back.
        raise TryAgain(error, f"{host} answered HTTP {status}", retry_after(resp))
    if status == HTTP_TOO_MANY or code == CODE_TOO_MANY:
        error = RateLimited(
            CODE_TOO_MANY,
            message or "too many requests",
            endpoint=endpoint,
            trace_id=trace_id,
            http_status=status,
        )
        raise TryAgain(
            error, f"{host} asks to slow down (HTTP {status})", retry_after(resp), routine=True
        )
    if code is None:
        if status == CODE_UNAUTHORIZED:
            raise AuthError(
                CODE_UNAUTHORIZED, "unauthorized", endpoint=endpoint, http_status=status
            )
        raise _not_the_api(resp, body, endpoint, base_url)
    if code != 0:
        raise api_error(code, message, endpoint=endpoint, trace_id=trace_id, http_status=status)
    return Envelope(body.get("data"), trace_id, endpoint)


def _not_found(resp: requests.Response, base_url: str) -> ConfigError:
    """HTTP 404 on an API path: the open API is not at ``base_url``."""
    path = urlsplit(resp.url).path or "/"
    extra = urlsplit(base_url).path.rstrip("/")
    advice = f"leave {extra} off its end" if extra else f"the 123pan open API is {DEFAULT_BASE_URL}"
    return ConfigError(
        f"account.base_url is {base_url!r}, but {path} is not there (HTTP 404): {advice}"
    )


def _not_the_api(
    resp: requests.Response, body: Any, endpoint: str, base_url: str
) -> ConfigError | NotTheApi:
    """An answer without the envelope, from something that is not the API."""
    host = urlsplit(base_url).netloc or base_url
    status = resp.status_code
    text = resp.text[: BODY_EXCERPT * 4]
    if urlsplit(base_url).scheme == "http" and speaks_tls_page(text):
        return ConfigError(
            f"{host} speaks TLS, not plain HTTP: use https:// in account.base_url "
            f"(it is {base_url!r})"
        )
    answered = f"HTTP {status} {resp.reason or ''}".rstrip()
    location = resp.headers.get("Location")
    if resp.is_redirect and location:
        target = urlsplit(location)
        what = f"{answered}, a redirect to {target.scheme}://{target.netloc}{target.path}"
    elif body is not None:
        what = f"{answered} with JSON that has no code: {_excerpt(text)!r}"
    else:
        kind = "an HTML page" if _is_html(resp, text) else _content_type(resp)
        what = f"{answered} with {kind}: {_excerpt(text)!r}" if text.strip() else answered
    return NotTheApi(
        status,
        f"{host} is not the 123pan open API (it answered {what}); check account.base_url "
        f"({base_url}) and any proxy in between",
        endpoint=endpoint,
        http_status=status,
    )


def _is_html(resp: requests.Response, text: str) -> bool:
    return "html" in resp.headers.get("Content-Type", "").lower() or text.lstrip().startswith("<")


def _content_type(resp: requests.Response) -> str:
    kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
    return kind or "a body of no declared type"


def _excerpt(text: str) -> str:
    return " ".join(text.split())[:BODY_EXCERPT]


def retry_after(resp: requests.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for: a number of seconds or an HTTP-date (RFC 9110,
    10.2.3; gateways and CDNs send either). None when absent or unreadable."""
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" in an HTTP-date means UTC
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
