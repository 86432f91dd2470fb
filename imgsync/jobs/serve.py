"""``imgsync serve``: a PicGo-compatible HTTP server for Typora and Obsidian.

Routes (docs/users.md): ``POST /upload`` (the protocol of :mod:`imgsync.jobs.picgo`) and
``POST /heartbeat`` (also GET, as PicList answers it) → ``{"success": true, "result": "alive"}``;
the heartbeat also says ``"server": "imgsync"``, which is how a second ``imgsync serve`` knows the
port is already served by imgsync.

Who may upload:

- With a secret (``--secret``, ``serve.secret``), ``/upload`` needs it as ``Authorization: Bearer
  <s>``, ``X-PicGo-Secret: <s>``, ``?key=<s>`` (PicList) or ``?secret=<s>`` (PicGo-Core); the
  heartbeat stays open, as in PicGo-Core, and says nothing secret.
- A request from a web page (an ``Origin`` of an http(s) site that is not this machine, or the
  ``null`` origin of a local file) is refused: any page you visit could otherwise publish your
  local images by naming their paths. Editors send no ``Origin``, or their own
  (``app://obsidian.md``), which is allowed and gets CORS headers.
- On a loopback address, a ``Host`` header naming another host is refused: that is DNS
  rebinding, a web page reaching the server under a name of its own.

The server is a :class:`http.server.ThreadingHTTPServer`: a slow upload does not hold up a
heartbeat. What uploads is one collaborator (:class:`~imgsync.jobs.picgo.PicGoUploads` over an
``upload`` callable); by default a :class:`~imgsync.jobs.upload.UploadSession` that keeps the
index and the API client open for the server's life (a cache hit then costs about what a
heartbeat costs), closed with the server.
"""

from __future__ import annotations

import errno
import hmac
import http.client
import json
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from imgsync.errors import ConfigError, ImgsyncError
from imgsync.jobs.clip import Upload
from imgsync.jobs.picgo import BadRequest, PicGoUploads, failure, parse_form, parse_list

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.desktop.clipboard import Clipboard

log = logging.getLogger(__name__)

SERVER_NAME = "imgsync"
UPLOAD_PATH = "/upload"
HEARTBEAT_PATH = "/heartbeat"
ALIVE = {"success": True, "result": "alive", "server": SERVER_NAME}
# A form may carry several full-size images (100 MB each at most); the body is read into memory,
# so it is bounded.
MAX_BODY_BYTES = 256 * 1024 * 1024
# How long the check of a busy port waits for a heartbeat: a local server answers in
# milliseconds; a program that is not a PicGo server may never answer an HTTP request.
PROBE_TIMEOUT_S = 2.0
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-PicGo-Secret",
}


class PortBusy(ConfigError):
    """The port is taken by a program that is not imgsync (exit 2, naming the port)."""


@dataclass(frozen=True)
class AlreadyServing:
    """imgsync already answers the heartbeat on that address: nothing to start."""

    url: str


def _is_loopback(host: str) -> bool:
    return host.strip("[]").lower() in LOOPBACK_NAMES or host.startswith("127.")


def _host_of(netloc: str) -> str:
    """The host of a ``Host`` header or URL authority, without port or IPv6 brackets."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def origin_allowed(origin: str | None) -> bool:
    """Whether a request with this ``Origin`` may use the server (see the module docstring)."""
    if origin is None:
        return True
    parts = urlsplit(origin.strip())
    if origin.strip().lower() == "null":
        return False
    if parts.scheme.lower() in ("http", "https"):
        return _is_loopback(_host_of(parts.netloc))
    return bool(parts.scheme)  # an application's own origin: app://obsidian.md


def probe_heartbeat(
    host: str, port: int, timeout: float = PROBE_TIMEOUT_S
) -> dict[str, Any] | None:
    """The heartbeat answer of whatever listens on ``host:port``, or None if it gives none."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    connection = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        connection.request("POST", HEARTBEAT_PATH, body=b"", headers={"Content-Length": "0"})
        reply = connection.getresponse()
        document = json.loads(reply.read(64 * 1024))
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return document if isinstance(document, dict) else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class PicGoServer:
    """The running server: :meth:`serve_forever` in the foreground, :meth:`shutdown` from
    another thread (or a signal handler's caller), :attr:`url` for clients."""

    def __init__(
        self, httpd: _Server, host: str, *, on_close: Callable[[], None] | None = None
    ) -> None:
        self._httpd = httpd
        self._on_close = on_close
        self.host = host
        self.port = int(httpd.server_address[1])

    @property
    def url(self) -> str:
        """Where the server answers (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Answer requests until :meth:`shutdown`."""
        self._httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread); requests in flight are finished."""
        self._httpd.shutdown()

    def close(self) -> None:
        """Release the port, and what the server opened to upload with."""
        self._httpd.server_close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> PicGoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_server(
    settings: Settings,
    *,
    upload: Upload | None = None,
    clipboard: Callable[[], Clipboard] | None = None,
    probe: Callable[[str, int], dict[str, Any] | None] = probe_heartbeat,
) -> PicGoServer | AlreadyServing:
    """Bind ``serve.host``:``serve.port`` and return the server (not yet serving).

    A busy port where imgsync answers the heartbeat gives :class:`AlreadyServing`; any other
    program on it raises :class:`PortBusy`.
    """
    host, port, secret = settings.serve.host, settings.serve.port, settings.serve.secret
    if clipboard is None:
        from imgsync.desktop.clipboard import system_clipboard

        clipboard = system_clipboard
    session = None
    if upload is None:
        from imgsync.jobs.upload import UploadSession

        upload = session = UploadSession(settings)
    uploads = PicGoUploads(upload, clipboard)
    handler = _handler_class(uploads, secret=secret, loopback=_is_loopback(host))
    try:
        httpd = _Server((host, port), handler)
    except OSError as exc:
        if session is not None:
            session.close()
        if exc.errno != errno.EADDRINUSE:
            raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        answer = probe(host, port)
        shown = f"[{host}]" if ":" in host else host
        if answer is not None and answer.get("server") == SERVER_NAME:
            return AlreadyServing(f"http://{shown}:{port}")
        what = "another PicGo-compatible server" if answer is not None else "another program"
        raise PortBusy(
            f"port {port} on {host} is in use by {what}; stop it or choose another with --port"
        ) from None
    return PicGoServer(httpd, host, on_close=None if session is None else session.close)


def _handler_class(
    uploads: PicGoUploads, *, secret: str, loopback: bool
) -> type[BaseHTTPRequestHandler]:
    """The request handler, with the server's collaborators bound."""

    class Handler(_PicGoHandler):
        pass

    Handler.uploads = uploads
    Handler.secret = secret
    Handler.loopback_only = loopback
    return Handler


class _PicGoHandler(BaseHTTPRequestHandler):
    uploads: PicGoUploads
    secret: str = ""
    loopback_only: bool = True
    server_version = f"{SERVER_NAME}/1"
    protocol_version = "HTTP/1.1"

    # -- routing ----------------------------------------------------------------------------------

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        if not self._guard():
            return
        self._send(204, None, extra=CORS_HEADERS)

    def do_GET(self) -> None:  # noqa: N802
        if not self._guard():
            return
        if self._path() == HEARTBEAT_PATH:
            self._send(200, ALIVE)
        else:
            self._send(404, failure(f"no such path; use POST {UPLOAD_PATH}"))

    def do_POST(self) -> None:  # noqa: N802
        if not self._guard():
            return
        try:
            body = self._body()
        except BadRequest as exc:
            self._send(400, failure(str(exc)))
            return
        path = self._path()
        if path == HEARTBEAT_PATH:
            self._send(200, ALIVE)
        elif path == UPLOAD_PATH:
            self._upload(body)
        else:
            self._send(404, failure(f"no such path; use POST {UPLOAD_PATH}"))

    def _upload(self, body: bytes) -> None:
        if not self._authorized():
            self._send(401, failure("unauthorized: this server needs its secret"))
            return
        content_type = self.headers.get("Content-Type", "")
        try:
            if content_type.lower().startswith("multipart/form-data"):
                answer = self.uploads.files(parse_form(content_type, body))
            else:
                items = parse_list(body)
                answer = self.uploads.clipboard() if items is None else self.uploads.paths(items)
        except BadRequest as exc:
            self._send(400, failure(str(exc)))
            return
        except ImgsyncError as exc:
            # No image on the clipboard, no clipboard here, a stopped run (authentication...).
            self._send(200, failure(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - a request never kills the server
            log.debug("upload request failed", exc_info=True)
            self._send(500, failure(f"internal error: {type(exc).__name__}: {exc}"))
            return
        self._send(200, answer)

    # -- checks -----------------------------------------------------------------------------------

    def _guard(self) -> bool:
        """Refuse DNS rebinding and web pages (see the module docstring); False when refused."""
        host_header = self.headers.get("Host")
        if self.loopback_only and host_header and not _is_loopback(_host_of(host_header)):
            self._send(403, failure(f"refused: Host {host_header!r} is not this machine"))
            return False
        if not origin_allowed(self.headers.get("Origin")):
            self._send(403, failure("refused: requests from web pages cannot upload"))
            return False
        return True

    def _authorized(self) -> bool:
        if not self.secret:
            return True
        offered = []
        authorization = self.headers.get("Authorization", "")
        if authorization[:7].lower() == "bearer ":
            offered.append(authorization[7:].strip())
        offered.append(self.headers.get("X-PicGo-Secret", ""))
        query = parse_qs(urlsplit(self.path).query)
        offered += query.get("key", []) + query.get("secret", [])
        expected = self.secret.encode()
        return any(hmac.compare_digest(value.encode(), expected) for value in offered if value)

    # -- plumbing ---------------------------------------------------------------------------------

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/") or "/"

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_body()
        length_text = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_text)
        except ValueError:
            raise BadRequest(f"bad Content-Length {length_text!r}") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            raise BadRequest(f"the body must be at most {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _chunked_body(self) -> bytes:
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                self.close_connection = True
                raise BadRequest("bad chunked body") from None
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise BadRequest(f"the body must be at most {MAX_BODY_BYTES} bytes")
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after each chunk

    def _send(self, status: int, document: Any, *, extra: dict[str, str] | None = None) -> None:
        payload = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        if document is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        origin = self.headers.get("Origin")
        if origin and origin_allowed(origin):
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path without its query: the query may carry the secret (?key=).
        log.info("%s %s: %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        log.debug("%s", _SECRET_IN_QUERY.sub(r"\1<redacted>", format % args))


_SECRET_IN_QUERY = re.compile(r"([?&](?:key|secret)=)[^&\s\"]*", re.IGNORECASE)
