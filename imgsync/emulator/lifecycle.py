"""Starting and stopping an emulator: in-process for tests and demos, or in the foreground for the
``imgsync emulator`` command.

``start()`` returns only once the socket listens, so a test can connect right away; ``stop()``
closes every open connection, stops the workers and writes the state when there is a data folder.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from .app import EmulatorApp
from .server import _Server

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_CLIENT_ID = "demo"  # docs/contract.md: default credentials demo/demo
DEFAULT_CLIENT_SECRET = "demo"
# How often the accept loop checks for shutdown; small so stop() is quick.
ACCEPT_POLL_S = 0.05
# How often serve_forever wakes to notice a stop request (signals interrupt it sooner).
STOP_POLL_S = 0.5
LISTENING_LINE = "imgsync emulator listening on {base_url}"
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def _url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind is reached through loopback."""
    host = _WILDCARD_HOSTS.get(host, host)
    return f"[{host}]" if ":" in host else host


class Emulator:
    """A local 123pan image-bed server on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        data_dir: str | Path | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir else None
        self.client_id = client_id
        self.client_secret = client_secret
        self.config = dict(config or {})
        self._lifecycle = threading.Lock()
        self._stop_requested = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._app: EmulatorApp | None = None
        self._base_url = ""

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` once started."""
        if not self._base_url:
            raise RuntimeError("the emulator is not started")
        return self._base_url

    @property
    def app(self) -> EmulatorApp:
        """The running application core (state, settings, log) for in-process inspection."""
        if self._app is None:
            raise RuntimeError("the emulator is not started")
        return self._app

    def start(self) -> Emulator:
        """Bind and serve in background threads; returns once connections are accepted.

        Raises OSError when the address cannot be bound.
        """
        with self._lifecycle:
            if self._server is not None:
                return self
            if self.data_dir is not None:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            app = EmulatorApp(self.client_id, self.client_secret, self.data_dir, self.config)
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            server = _Server((self.host, self.port), app, family)  # listening from here on
            port = server.server_address[1]
            self._base_url = app.base_url = f"http://{_url_host(self.host)}:{port}"
            app.tasks.start()
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": ACCEPT_POLL_S},
                name=f"emulator-http-{port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread, self._app = server, thread, app
            self._stop_requested.clear()
            logger.info("emulator listening on %s", self._base_url)
            return self

    def stop(self) -> None:
        """Stop serving, close connections, stop workers, write the state. Safe to repeat."""
        with self._lifecycle:
            server, thread, app = self._server, self._thread, self._app
            self._server = self._thread = None
            self._stop_requested.set()
            if server is None or app is None:
                return
            server.shutdown()
            server.close_connections()
            server.server_close()
            if thread is not None:
                thread.join()
            app.tasks.stop()
            app.state.commit()
            logger.info("emulator on %s stopped", self._base_url)

    def request_stop(self) -> None:
        """Make :meth:`serve_forever` return (from another thread)."""
        self._stop_requested.set()

    def serve_forever(self) -> None:
        """Start if needed and block until :meth:`request_stop`, :meth:`stop` or Ctrl-C."""
        self.start()
        try:
            while not self._stop_requested.wait(STOP_POLL_S):
                pass
        finally:
            self.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_cli(host: str, port: int, data_dir: str | None, client_id: str, client_secret: str) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, for the ``imgsync emulator`` command.

    Prints exactly one line, once connections are accepted:
    ``imgsync emulator listening on http://HOST:PORT``. Raises OSError if it cannot bind.
    """
    handles_signals = threading.current_thread() is threading.main_thread()
    previous: dict[int, Any] = {}
    if handles_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _interrupt)
    emulator = Emulator(host, port, data_dir, client_id, client_secret)
    try:
        emulator.start()
        print(LISTENING_LINE.format(base_url=emulator.base_url), flush=True)
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if handles_signals:
            for signum in previous:
                signal.signal(signum, signal.SIG_IGN)  # a second signal must not break cleanup
        emulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
