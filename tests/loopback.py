"""One way for a test to run a plain HTTP server of its own on loopback.

Tests that need a web origin, a scripted stand-in for the service or a proxy in front of the
emulator write only the request handler; this module binds it to 127.0.0.1 on a free port (port 0:
no clashes between tests or parallel workers), serves it from a daemon thread and shuts it down
promptly. Modeled on httpx's ``tests/conftest.py::serve_in_thread`` and moto's
``ThreadedMotoServer``: start, yield the address, always stop.

    with LoopbackServer(Handler) as server:
        requests.get(server.url + "/cat.png")

or, for a helper object that owns its server, ``self.server = LoopbackServer(Handler).start()``
and ``self.server.stop()`` in its ``close()``.
"""

from __future__ import annotations

import socketserver
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
# How often the serving loop checks for shutdown. serve_forever's default of 0.5 s made every
# teardown wait up to half a second; 10 ms costs nothing while the server idles.
POLL_INTERVAL_S = 0.01

Handler = Callable[[Any, Any, socketserver.BaseServer], socketserver.BaseRequestHandler]


class _Server(ThreadingHTTPServer):
    # A handler still busy (a test's deliberately slow answer, a client that never reads) must
    # not hold up shutdown or the interpreter's exit: its thread dies with the process.
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer (a download cut off at its cap or deadline, a test that
        # stops reading) is what some tests do on purpose: not worth a traceback on stderr.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """A threaded HTTP server for ``handler`` on 127.0.0.1 and a free port, optionally over TLS.

    The socket is bound (and ``port`` and ``url`` known) on construction, so a test may learn the
    address before serving starts; :meth:`start` serves in a daemon thread, :meth:`stop` shuts
    down and closes the socket and is safe to repeat. As a context manager it does both.
    """

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.httpd = _Server((HOST, 0), handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{HOST}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackServer:
        """Serve in a daemon thread; returns self so ``LoopbackServer(h).start()`` reads well."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.httpd.serve_forever,
                kwargs={"poll_interval": POLL_INTERVAL_S},
                name=f"loopback-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (within one poll interval) and release the port."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self.httpd.shutdown()
            thread.join()
        self.httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
