"""Connection errors of the API explain themselves, quickly: real sockets and servers on loopback.

A refused port or a name that does not resolve is tried twice, not six times, and the message names
the host and what to check; a path under base_url that is not there, TLS against plain HTTP (or the
reverse), and a server that is not the 123pan open API each say so in words; retries are announced
while they wait; the raw exception text is for ``-v`` only.
"""

from __future__ import annotations

import http.server
import logging
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from imgsync.client.api import Api
from imgsync.client.failures import FIRM_ATTEMPTS
from imgsync.errors import EXIT_UNREACHABLE, EXIT_USAGE, ConfigError, NetworkError, NotTheApi

from ..support import Control, settings_for, tls_server_context

# A name under .invalid never resolves (RFC 6761): a real lookup, failing for real.
UNRESOLVABLE = "api.imgsync-test.invalid"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    handler_hits = 0


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler], tls: Any = None) -> Iterator[Server]:
    server = Server(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def answering(status: int, body: bytes, **headers: str) -> type[http.server.BaseHTTPRequestHandler]:
    """A handler that answers every request alike, counting them on its server."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.server.handler_hits += 1  # type: ignore[attr-defined]
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class Quiet(http.server.SimpleHTTPRequestHandler):
    """A plain web server (a static file server takes no POST: HTTP 501)."""

    def log_message(self, *args: Any) -> None:
        pass


def fetch_token(base_url: str, tmp_path: Path, sleeps: list[float] | None = None) -> None:
    settings = settings_for(base_url, tmp_path)
    with Api.from_settings(settings, sleep=(sleeps if sleeps is not None else []).append) as api:
        api.list_files("", limit=1)


# ------------------------------------------------------------------------- refused, unresolvable


@pytest.mark.parametrize(
    ("base_url", "words", "check"),
    [
        (
            "http://127.0.0.1:{port}",
            "127.0.0.1:{port} refused the connection",
            "that the service is running there",
        ),
        (
            f"https://{UNRESOLVABLE}",
            f"could not resolve {UNRESOLVABLE}",
            "your network and any proxy",
        ),
    ],
    ids=["refused", "unresolvable"],
)
def test_a_wrong_address_is_tried_twice_and_says_what_to_check(
    tmp_path: Path, base_url: str, words: str, check: str
) -> None:
    port = closed_port()
    base_url, words = base_url.format(port=port), words.format(port=port)
    sleeps: list[float] = []
    with pytest.raises(NetworkError) as err:
        fetch_token(base_url, tmp_path, sleeps)
    assert str(err.value) == (
        f"{words} (access_token; tried 2 times): check account.base_url ({base_url}), {check}"
    )
    assert err.value.exit_code == EXIT_UNREACHABLE
    assert len(sleeps) == FIRM_ATTEMPTS - 1 == 1


def test_the_raw_error_is_only_in_the_verbose_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imgsync")
    port = closed_port()
    with pytest.raises(NetworkError) as err:
        fetch_token(f"http://127.0.0.1:{port}", tmp_path)
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("[Errno 111] Connection refused" in line for line in info), info
    assert not any("Errno" in line for line in [*shown, str(err.value)])


# ------------------------------------------------------------------------------ retry notices


def test_each_wait_of_a_retry_is_announced_at_warning(
    control: Control, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    control.faults([{"match": "/api/v1/access_token", "nth": 1, "times": 2, "action": "http:503"}])
    caplog.set_level(logging.WARNING, logger="imgsync")
    fetch_token(control.base_url, tmp_path)
    host = control.base_url.removeprefix("http://")
    notices = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(notices) == 2, notices
    for attempt, notice in enumerate(notices, start=2):
        pattern = (
            rf"{re.escape(host)} answered HTTP 503 \(access_token\); retrying in \d+\.\d s "
            rf"\(attempt {attempt} of 6\)"
        )
        assert re.fullmatch(pattern, notice), notice


def test_a_reset_connection_is_tried_the_full_number_of_times(
    control: Control, tmp_path: Path
) -> None:
    control.faults([{"match": "/api/v1/access_token", "nth": 1, "times": 3, "action": "reset"}])
    sleeps: list[float] = []
    fetch_token(control.base_url, tmp_path, sleeps)  # a reset is a blip: the 4th attempt works
    assert len(sleeps) == 3


# ----------------------------------------------------------------------------- wrong base_url


def test_a_path_under_base_url_that_is_not_there_is_a_config_error(
    control: Control, tmp_path: Path
) -> None:
    base_url = control.base_url + "/api"
    with pytest.raises(ConfigError) as err:
        fetch_token(base_url, tmp_path)
    assert str(err.value) == (
        f"account.base_url is {base_url!r}, but /api/api/v1/access_token is not there "
        "(HTTP 404): leave /api off its end"
    )
    assert err.value.exit_code == EXIT_USAGE
    assert len(control.requests("/api/v1/access_token")) == 1


def test_https_against_plain_http_says_so(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with serving(Quiet) as server:
        port = server.server_address[1]
        with pytest.raises(ConfigError) as err:
            fetch_token(f"https://127.0.0.1:{port}", tmp_path, sleeps)
    assert str(err.value) == (
        f"127.0.0.1:{port} speaks plain HTTP, not TLS: use http:// in account.base_url "
        f"(it is 'https://127.0.0.1:{port}')"
    )
    assert sleeps == []


def test_http_against_a_tls_port_says_so_when_the_server_tells(tmp_path: Path) -> None:
    page = b"<html><body><center>The plain HTTP request was sent to HTTPS port</center></body>"
    with serving(answering(400, page, **{"Content-Type": "text/html"})) as server:
        port = server.server_address[1]
        with pytest.raises(ConfigError) as err:
            fetch_token(f"http://127.0.0.1:{port}", tmp_path)
    assert str(err.value) == (
        f"127.0.0.1:{port} speaks TLS, not plain HTTP: use https:// in account.base_url "
        f"(it is 'http://127.0.0.1:{port}')"
    )


def test_an_untrusted_certificate_is_named_and_not_retried(tmp_path: Path) -> None:
    context, _cert = tls_server_context(tmp_path, "localhost")
    sleeps: list[float] = []
    with serving(Quiet, tls=context) as server:
        port = server.server_address[1]
        with pytest.raises(NetworkError) as err:
            fetch_token(f"https://127.0.0.1:{port}", tmp_path, sleeps)
    assert str(err.value).startswith(f"the certificate of 127.0.0.1:{port} is not accepted (")
    assert "(access_token; tried once): check account.base_url" in str(err.value)
    assert sleeps == []


# ------------------------------------------------------------------------- not the 123pan API


def test_a_web_server_that_is_not_123pan_is_named_as_such(tmp_path: Path) -> None:
    with serving(Quiet) as server:
        port = server.server_address[1]
        with pytest.raises(NotTheApi) as err:
            fetch_token(f"http://127.0.0.1:{port}", tmp_path)
    message = str(err.value)
    assert message.startswith(
        f"127.0.0.1:{port} is not the 123pan open API (it answered HTTP 501 Unsupported method "
        "('POST') with an HTML page: '<!DOCTYPE HTML>"
    ), message
    assert message.endswith(
        f"check account.base_url (http://127.0.0.1:{port}) and any proxy in between"
    )
    assert "code 501" not in message
    assert err.value.exit_code == EXIT_UNREACHABLE and not err.value.retryable


@pytest.mark.parametrize(
    ("status", "body", "headers", "answered"),
    [
        (200, b'{"error": "nope"}', {"Content-Type": "application/json"}, "HTTP 200 OK with JSON"),
        (
            301,
            b"",
            {"Location": "https://open-api.123pan.com/api/v1/access_token?x=1"},
            "HTTP 301 Moved Permanently, a redirect to "
            "https://open-api.123pan.com/api/v1/access_token)",
        ),
        (403, b"denied", {"Content-Type": "text/plain"}, "HTTP 403 Forbidden with text/plain"),
    ],
)
def test_answers_without_the_envelope_are_not_retried(
    tmp_path: Path, status: int, body: bytes, headers: dict[str, str], answered: str
) -> None:
    with serving(answering(status, body, **headers)) as server:
        port = server.server_address[1]
        with pytest.raises(NotTheApi) as err:
            fetch_token(f"http://127.0.0.1:{port}", tmp_path)
        hits = server.handler_hits
    assert f"127.0.0.1:{port} is not the 123pan open API (it answered {answered}" in str(err.value)
    assert "x=1" not in str(err.value)
    assert hits == 1
