"""Why a request got no answer, in words a user can act on.

requests and urllib3 report a failed connection as a chain of wrappers whose text quotes the whole
URL (query string included: a presigned URL's is a credential) and ends in an OS reason such as
``[Errno -2] Name or service not known``. Users see :attr:`Failure.words` instead ("could not
resolve example.com", "example.com refused the connection"); the raw text, with query strings cut
(:func:`raw_text`), is only for the ``-v`` log.

A :class:`Failure` also says whether trying again soon can help: a refused connection or a name
that does not resolve is not a blip the way a reset or a timeout is (it is a wrong address, a
stopped service or a network that is down), and a TLS handshake with a server that speaks plain
HTTP fails the same way every time.

Used by the API's transport and by the image downloader, so both speak alike.
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
import ssl
from dataclasses import dataclass

import requests
from urllib3.exceptions import NameResolutionError, ReadTimeoutError

__all__ = [
    "FIRM_ATTEMPTS",
    "Failure",
    "causes",
    "connection_failure",
    "raw_text",
    "request_failure",
    "speaks_tls_page",
]

# Attempts in all for a failure that trying again soon will not fix (refused, unknown name): one
# more try covers a service restarting or a resolver's hiccup; six would only make the user wait.
FIRM_ATTEMPTS = 2

# How many of an exception's causes to look through for the OS-level one (requests wraps urllib3's
# MaxRetryError, which wraps NewConnectionError, which is raised from the OSError: a handful): a
# bound, so a long or odd chain of causes cannot cost more.
MAX_CAUSES = 16

# OpenSSL's reasons when the other side answered a TLS handshake with something that is not TLS:
# the plain-HTTP error page a web server sends back ("HTTP/1.0 400 ..." read as a TLS record).
# The name depends on the OpenSSL version.
NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)

# The first byte of a TLS record (handshake 0x16, alert 0x15) and the major version 3 after it: a
# TLS server's answer to a plain-HTTP request, when http.client reads it as a status line.
TLS_RECORD_START = re.compile(r"^[\x15\x16]\x03")

# What nginx (and servers copying it) answer to plain HTTP sent to their TLS port.
PLAIN_HTTP_TO_TLS_PAGE = "plain http request was sent to https port"

# A URL's query string in an exception's text: cut before the text reaches a log.
_QUERY = re.compile(r"\?[^\s'\")]*")

# The network or the host cannot be reached at all: this machine is offline or has no route there,
# which an immediate retry does not change.
NO_ROUTE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN})


@dataclass(frozen=True)
class Failure:
    """A request that got no (whole) answer, in words."""

    #: What happened, naming the host and never the URL: "could not resolve example.com".
    words: str
    #: Trying again soon will not help much: at most :data:`FIRM_ATTEMPTS` attempts (None: no
    #: limit beyond the retry policy's).
    attempts: int | None = None
    #: What else to check ("that the service is running"), after the address itself.
    hint: str = "your network and any proxy"
    #: The other side speaks the other protocol (TLS against plain HTTP, or the reverse): the
    #: scheme of the URL is wrong, which no retry fixes.
    wrong_scheme: bool = False


def connection_failure(
    exc: requests.RequestException,
    host: str,
    *,
    connect_timeout: float,
    read_timeout: float,
    scheme: str = "",
) -> Failure:
    """Words for a request that failed before a whole answer came back.

    ``host`` names where the request went (``example.com`` or ``127.0.0.1:8080``), ``scheme`` is
    the URL's (for telling TLS and plain HTTP apart), the timeouts are the ones the request had.
    """
    found = causes(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return Failure(f"{host} did not accept a connection within {connect_timeout:g} s")
    if isinstance(exc, requests.Timeout) or _any(found, ReadTimeoutError, socket.timeout):
        return Failure(f"{host} did not answer within {read_timeout:g} s")
    if isinstance(exc, requests.exceptions.ProxyError):
        return Failure(
            f"the proxy could not connect to {host}", hint="the proxy settings (HTTPS_PROXY, …)"
        )
    if isinstance(exc, requests.exceptions.SSLError) or _any(found, ssl.SSLError):
        return _tls_failure(found, host)
    if _any(found, NameResolutionError, socket.gaierror):
        return Failure(f"could not resolve {host}", FIRM_ATTEMPTS)
    if _any(found, ConnectionRefusedError):
        return Failure(
            f"{host} refused the connection", FIRM_ATTEMPTS, "that the service is running there"
        )
    status_lines = [c for c in found if isinstance(c, http.client.BadStatusLine)]
    if scheme == "http" and any(
        TLS_RECORD_START.match(str(c.args[0] if c.args else "")) for c in status_lines
    ):
        return _speaks_tls(host)
    if _any(found, ConnectionResetError):
        return Failure(f"{host} reset the connection")
    if _any(found, http.client.RemoteDisconnected) or "Connection aborted" in str(exc):
        return Failure(f"{host} closed the connection without an answer")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return Failure(f"{host} broke off its answer")
    oserror = next((c for c in found if isinstance(c, OSError) and c.strerror), None)
    if oserror is not None and oserror.errno in NO_ROUTE_ERRNOS:
        return Failure(f"no route to {host} ({oserror.strerror.lower()})", FIRM_ATTEMPTS)
    if oserror is not None:
        return Failure(f"could not reach {host} ({oserror.strerror.lower()})")
    return Failure(f"could not reach {host} ({type(exc).__name__})")


def request_failure(exc: requests.RequestException) -> str:
    """Words for a request that could not be made or followed (not a connection failure)."""
    if isinstance(exc, requests.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return "not a valid URL"
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return "a redirect to something that is not http or https"
    return f"the request failed ({type(exc).__name__})"


def speaks_tls_page(body: str) -> bool:
    """Whether an error page says a plain-HTTP request reached a TLS port (nginx's wording)."""
    return PLAIN_HTTP_TO_TLS_PAGE in body.lower()


def _speaks_tls(host: str) -> Failure:
    return Failure(f"{host} speaks TLS, not plain HTTP: use https://", 1, wrong_scheme=True)


def _tls_failure(found: list[BaseException], host: str) -> Failure:
    for cause in found:
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or "it is not trusted"
            return Failure(
                f"the certificate of {host} is not accepted ({why})",
                1,
                "the clock of this machine, or REQUESTS_CA_BUNDLE for a private CA",
            )
        if isinstance(cause, ssl.SSLError) and getattr(cause, "reason", None) in NOT_TLS_REASONS:
            return Failure(f"{host} speaks plain HTTP, not TLS: use http://", 1, wrong_scheme=True)
    reasons = [str(c.reason) for c in found if isinstance(c, ssl.SSLError) and c.reason]
    return Failure(
        f"the secure connection to {host} failed (TLS: {reasons[0] if reasons else 'handshake'})"
    )


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from, through requests' and urllib3's wrappers."""
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(found) < MAX_CAUSES:
        current = todo.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
        inner = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if isinstance(inner, BaseException):
            todo.append(inner)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return found


def raw_text(exc: BaseException) -> str:
    """The exception as requests words it, for a ``-v`` log: its type and text, every query string
    cut (a presigned URL's query is a credential; an image URL's may hold a token)."""
    return f"{type(exc).__name__}: {_QUERY.sub('?…', str(exc))}"


def _any(found: list[BaseException], *kinds: type[BaseException]) -> bool:
    return any(isinstance(cause, kinds) for cause in found)
