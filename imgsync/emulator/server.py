"""HTTP plumbing: a threaded standard-library server that speaks for the emulator on loopback.

Three kinds of traffic share one port, told apart by path:

- ``/api/...`` and ``/upload/...``: the JSON API, routed by :mod:`imgsync.emulator.routing`;
- ``/_s3/<token>``: presigned PUT URLs, the storage side (S3-style XML errors);
- ``/dl/<uid>/<fileId>.<ext>``: download URLs serving stored bytes;
- ``/_emulator/...``: the control plane (never logged, faulted or throttled).

Faults are applied here, around the application, because a dropped connection or a delay is a
property of the network path, not of an endpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import api_tree, api_upload
from .api_upload import PUT_PATH_PREFIX, SIGNATURE_PARAM, S3Error
from .app import EmulatorApp
from .blobs import CHUNK_SIZE, ShortBody
from .control import CONTROL_PREFIX, answer_control
from .faults import (
    KIND_APPLY_THEN_RESET,
    KIND_CODE,
    KIND_DELAY,
    KIND_HTTP,
    KIND_RESET,
    FaultAction,
)
from .media import MAX_FILE_SIZE, SNIFF_BYTES, content_type_for
from .protocol import MESSAGES_BY_CODE, envelope
from .routing import answer_api

logger = logging.getLogger(__name__)
# A query string in a logged request line (up to the space before the HTTP version).
_QUERY = re.compile(r"\?\S*")

# API bodies are a few hundred bytes; anything near this is a client bug, not a request.
MAX_API_BODY = 1024 * 1024
# A refused PUT body is read and dropped up to this size so the client sees the answer instead of
# a broken pipe; beyond it the connection is closed.
MAX_DRAIN = MAX_FILE_SIZE + MAX_API_BODY
# An idle keep-alive connection is closed after this long, so abandoned sockets do not pin threads.
IDLE_TIMEOUT_S = 120.0
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml"
TEXT_TYPE = "text/plain; charset=utf-8"
INJECTED_MESSAGE = "injected fault"


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that remembers open connections so stop() can close them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: EmulatorApp, family: int) -> None:
        self.address_family = family
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr, e.g. for a client that resets mid-request:
        # everyday traffic for a server, and noise on the terminal of `imgsync emulator`.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """One connection; each request is routed by path to the API, storage, downloads or control."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real service
    server_version = "imgsync-emulator"
    timeout = IDLE_TIMEOUT_S
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK would add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        # Query strings are dropped: a presigned URL's signature is a credential, and in-process
        # (tests, `imgsync demo -vv`) these lines share a log with the client.
        logger.debug("%s %s", self.address_string(), _QUERY.sub("?…", format % args))

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    @property
    def app(self) -> EmulatorApp:
        return self.server.app

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if path.startswith(CONTROL_PREFIX):
                self._control(path)
            elif path.startswith(PUT_PATH_PREFIX):
                self._storage(path, query)
            elif path.startswith(api_tree.DOWNLOAD_PREFIX):
                self._download(path, query)
            else:
                self._api(path, query)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
            logger.debug("client went away during %s %s", self.command, path)
        except Exception:
            self.close_connection = True
            logger.exception("emulator bug while serving %s %s", self.command, path)

    # ----------------------------------------------------------------------------------- I/O

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document, ensure_ascii=False).encode(), JSON_TYPE)

    def _drop(self) -> None:
        """Close the connection without an answer, as a reset network path would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _declared_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    def _drain(self) -> None:
        """Read and drop a request body we will not use, or give up on the connection."""
        length = self._declared_length()
        if length is None or length > MAX_DRAIN:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)

    def _read_small_body(self) -> bytes | None:
        """An API body (Content-Length or chunked), or None when it is too large to accept."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
                if len(body) > MAX_API_BODY:
                    return None
        length = self._declared_length() or 0
        if length > MAX_API_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _begin(self, path: str, query: dict[str, str], body: Any) -> tuple[dict[str, Any], Any]:
        """Log the request's arrival and pick its fault, serving any delay right away."""
        entry = self.app.log.begin(self.command, path, query, self.headers.items(), body)
        action = self.app.faults.decide(self.command, path)
        if action is not None and action.kind == KIND_DELAY:
            self.app.sleep(action.delay_s)
        return entry, action

    def _fault_answers(
        self, entry: dict[str, Any], action: FaultAction | None, *, api: bool, drain: bool
    ) -> bool:
        """Answer a fault that replaces the work (reset, http:, code:); True when it did."""
        if action is None or action.kind not in (KIND_RESET, KIND_HTTP, KIND_CODE):
            return False
        if action.kind == KIND_RESET:
            self.app.log.finish(entry, None, None, action.text)
            self._drop()
            return True
        if drain:
            self._drain()
        # GUESS: what a gateway error body looks like is unknown; API paths get an envelope
        # whose code is the status, storage and download paths a short text.
        if action.kind == KIND_HTTP:
            status, code, message = action.status, action.status, f"injected HTTP {action.status}"
        else:
            status, code = 200, action.status
            message = MESSAGES_BY_CODE.get(code, INJECTED_MESSAGE)
        if api or action.kind == KIND_CODE:
            self._send_json(status, envelope(code, message, None))
            self.app.log.finish(entry, status, code, action.text)
        else:
            self._send(status, message.encode(), TEXT_TYPE)
            self.app.log.finish(entry, status, None, action.text)
        return True

    def _answer_lost(self, entry: dict[str, Any], action: FaultAction | None) -> bool:
        """After the work: drop the answer if the fault is apply-then-reset; True when it did."""
        if action is None or action.kind != KIND_APPLY_THEN_RESET:
            return False
        self.app.log.finish(entry, None, None, action.text)
        self._drop()
        return True

    # ------------------------------------------------------------------------------ control

    def _control(self, path: str) -> None:
        raw = self._read_small_body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self._send_json(400, {"error": "the body is not valid JSON"})
                return
        status, document = answer_control(self.app, self.command, path, body)
        self._send_json(status, document)

    # ---------------------------------------------------------------------------------- API

    def _api(self, path: str, query: dict[str, str]) -> None:
        app = self.app
        raw = self._read_small_body()
        body: Any = None
        problem: str | None = None
        if raw is None:
            self.close_connection = True
            problem = f"the request body is larger than {MAX_API_BODY} bytes"
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                problem = f"the request body is not valid JSON: {exc}"
        entry, action = self._begin(path, query, body)
        if self._fault_answers(entry, action, api=True, drain=False):
            return
        status, document = answer_api(app, self.command, path, self.headers, query, body, problem)
        if self._answer_lost(entry, action):
            return
        app.log.finish(entry, status, document["code"], action.text if action else None)
        self._send_json(status, document)

    # ------------------------------------------------------------------------ storage (PUT)

    def _storage(self, path: str, query: dict[str, str]) -> None:
        app = self.app
        entry, action = self._begin(path, query, None)
        fault = action.text if action else None
        if self._fault_answers(entry, action, api=False, drain=True):
            return
        body_read = False
        try:
            if self.command != "PUT":
                raise S3Error(405, "MethodNotAllowed", f"{self.command} is not allowed here")
            token = query.get(SIGNATURE_PARAM, "")
            with app.state.lock:
                target = api_upload.check_put(
                    app, token, self.headers, self.headers.get("Content-Length")
                )
            md5 = app.state.blobs.receive_slice(
                target.key, target.slice_no, self.rfile.read, target.length
            )
            body_read = True
            with app.state.lock:
                api_upload.record_slice(app, target, md5)
                app.state.commit()
        except S3Error as error:
            if not body_read:
                self._drain()
            app.log.finish(entry, error.status, None, fault)
            self._send(error.status, error.body(), XML_TYPE)
            return
        except ShortBody:
            app.log.finish(entry, None, None, fault)
            self._drop()
            return
        if self._answer_lost(entry, action):
            return
        app.log.finish(entry, 200, None, fault)
        self._send(200, b"", TEXT_TYPE, {"ETag": f'"{md5}"'})

    # ----------------------------------------------------------------------------- downloads

    def _download(self, path: str, query: dict[str, str]) -> None:
        app = self.app
        entry, action = self._begin(path, query, None)
        fault = action.text if action else None
        if self._fault_answers(entry, action, api=False, drain=False):
            return
        if self.command not in ("GET", "HEAD"):
            app.log.finish(entry, 405, None, fault)
            self._send(405, b"method not allowed\n", TEXT_TYPE, {"Allow": "GET, HEAD"})
            return
        with app.state.lock:
            status, node = api_tree.find_download(app, path)
            if status == 200 and node is not None:
                try:
                    blob = app.state.blobs.open_blob(node.etag)
                except KeyError:
                    status = 404
                else:
                    if self.command == "GET":
                        api_tree.count_traffic(app, node)
                        app.state.commit()
        if status != 200 or node is None:
            reason = b"rejected by content review\n" if status == 403 else b"not found\n"
            app.log.finish(entry, status, None, fault)
            self._send(status, reason, TEXT_TYPE)
            return
        with blob:
            if self._answer_lost(entry, action):
                return
            content_type = content_type_for(node.filename, blob.read(SNIFF_BYTES))
            blob.seek(0)
            app.log.finish(entry, 200, None, fault)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(node.size))
            self.send_header("ETag", f'"{node.etag}"')
            self.end_headers()
            if self.command == "GET":
                while chunk := blob.read(CHUNK_SIZE):
                    self.wfile.write(chunk)
