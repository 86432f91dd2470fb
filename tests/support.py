"""What the test folders share: credentials, image bytes, "old" files, the emulator's control
plane, and settings pointed at the emulator.

Nothing here imports the imgsync client (``imgsync.client.api``, ``imgsync.client.transport``,
``imgsync.client.tokens``):
only ``imgsync.config`` for the settings builders, so the emulator's own tests may use the plain
helpers and still test the emulator from the reference alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import http.server
import json
import logging
import os
import shutil
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from imgsync.config import DEFAULT_QPS, AccountSettings, NetworkSettings, Settings

# The account of the shared emulator (tests/conftest.py). The secret is distinctive, so a test can
# search every captured output for it.
CLIENT_ID = "imgsync-tests"
CLIENT_SECRET = "imgsync-tests-secret-7b1e0c9d-never-print-me"

CREATE_PATH = "/upload/v1/oss/file/create"
COMPLETE_PATH = "/upload/v1/oss/file/upload_complete"


# How hard the generated-input (hypothesis) tests look: their example counts times this. The suite
# runs at 1; `IMGSYNC_TEST_DEPTH=4 pytest tests/notes` searches four times as long.
TEST_DEPTH = max(1, int(os.environ.get("IMGSYNC_TEST_DEPTH", "1")))


def examples(count: int) -> int:
    """A hypothesis test's ``max_examples``: ``count`` times :data:`TEST_DEPTH`."""
    return count * TEST_DEPTH


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)


# ------------------------------------------------------------------------------------ image bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KINDS = ("png", "jpeg", "gif", "webp", "svg")
EXT = {"png": ".png", "jpeg": ".jpg", "gif": ".gif", "webp": ".webp", "svg": ".svg"}


def png_like(tag: str, size: int = 2048) -> bytes:
    """Exactly ``size`` bytes, distinct per tag, that a server sniffing the first bytes takes for a
    PNG (the signature, then filler)."""
    seed = hashlib.sha256(tag.encode()).digest()
    return (PNG_SIGNATURE + seed * (size // len(seed) + 1))[:size]


def filler(tag: str, size: int) -> bytes:
    """``size`` bytes, distinct per tag, cheap to make even for megabytes."""
    seed = hashlib.sha256(tag.encode()).digest() * 32  # 1 KiB block
    block = (seed * (1 + (1 << 20) // len(seed)))[: 1 << 20]
    head = tag.encode()[:64].ljust(64, b".")
    body = head + block * (size // len(block) + 1)
    return body[:size]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_bytes(kind: str, tag: str, size: int = 2048) -> bytes:
    """An image of ``kind`` (right leading bytes), padded with tag-unique bytes to ``size``."""
    if kind == "png":
        head = PNG_SIGNATURE + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    elif kind == "jpeg":
        head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    elif kind == "gif":
        head = b"GIF89a\x01\x00\x01\x00\x00\x00\x00"
    elif kind == "webp":
        head = b"RIFF" + struct.pack("<I", max(size - 8, 4)) + b"WEBPVP8 "
    elif kind == "svg":
        head = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><!-- '
        tail = b" --></svg>\n"
        pad = filler(tag, max(0, size - len(head) - len(tail))).hex().encode()
        return (head + pad[: max(0, size - len(head) - len(tail))] + tail)[: max(size, len(head))]
    else:
        raise ValueError(kind)
    return head + filler(tag, max(0, size - len(head)))


def png_bytes(tag: str) -> bytes:
    """A valid 1x1 PNG, distinct per tag (the tag goes into a tEXt chunk)."""
    raw = b"\x00\xff\x00\x00"  # filter byte + one red pixel
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + _png_chunk(b"tEXt", b"imgsync\x00" + tag.encode())
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


# -------------------------------------------------------------------------------------- old files

# An mtime this far in the past makes the cache trust stat stamps at once (it distrusts a stamp
# recorded within 2 s of the file's mtime: such a stamp is 'racy' and the file is re-hashed).
OLD_S = 60.0


def backdate(path: Path, seconds: float = OLD_S, *, follow: bool = True) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=follow)


def write_file(path: Path, data: bytes, *, old: bool = True) -> bytes:
    """Write ``data`` (parents made); ``old`` backdates the mtime by ``OLD_S``. Returns ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        backdate(path)
    return data


def write_image(path: Path, kind: str, tag: str, size: int = 2048, *, old: bool = True) -> bytes:
    """Write ``image_bytes(kind, tag, size)``."""
    return write_file(path, image_bytes(kind, tag, size), old=old)


def write_png(path: Path, tag: str | None = None, *, old: bool = True) -> bytes:
    """Write ``png_bytes`` of the tag, by default the file's name."""
    return write_file(path, png_bytes(tag or path.name), old=old)


def write_note(path: Path, content: str | bytes, *, old: bool = True) -> bytes:
    data = content.encode() if isinstance(content, str) else content
    return write_file(path, data, old=old)


# ------------------------------------------------------------------------------------ web servers


@contextmanager
def serving_folder(folder: Path, port: int = 0) -> Iterator[tuple[str, list[str]]]:
    """A web server on loopback serving ``folder`` (on ``port``, or a free one): its base URL, and
    the paths asked of it, in order."""
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------- TLS


def tls_server_context(folder: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    """A server-side TLS context with a fresh self-signed certificate for the host ``name``, and
    the certificate's path (for a client to trust it). Skips the test without ``openssl``."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"]
        + ["-addext", f"subjectAltName=DNS:{name}"],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


# -------------------------------------------------------------------------------- the local index


def age_index(data_dir: Path, seconds: float) -> int:
    """Make every object of the local index in ``data_dir`` look as if the service last vouched
    for it ``seconds`` earlier (time passing, as ``cache.verify_after`` sees it); returns how many
    rows. Plain sqlite on the real file, beside any process that has it open."""
    import sqlite3

    conn = sqlite3.connect(Path(data_dir) / "cache.sqlite3", timeout=10)
    try:
        with conn:
            cursor = conn.execute(
                "UPDATE objects SET recorded_ns = recorded_ns - ?", (int(seconds * 1e9),)
            )
        return cursor.rowcount
    finally:
        conn.close()


def age_backoffs(data_dir: Path, seconds: float) -> int:
    """Make the remembered failures of remote URLs in ``data_dir``'s index, and the recheck times
    of the note stamps that wait for them, look ``seconds`` older (time passing, as the back-offs
    see it: the engine reads the wall clock for them); returns how many attempts. Plain sqlite on
    the real file."""
    import sqlite3

    shift = int(seconds * 1e9)
    conn = sqlite3.connect(Path(data_dir) / "cache.sqlite3", timeout=10)
    try:
        with conn:
            cursor = conn.execute(
                "UPDATE url_attempts"
                " SET last_try_ns = last_try_ns - ?, next_try_ns = next_try_ns - ?",
                (shift, shift),
            )
            conn.execute(
                "UPDATE notes SET recheck_ns = recheck_ns - ? WHERE recheck_ns != 0", (shift,)
            )
        return cursor.rowcount
    finally:
        conn.close()


# ---------------------------------------------------------------------------------- control plane


class Control:
    """The emulator's control plane (docs/contract.md, "The emulator").

    Spoken with ``http.client`` over one kept-alive connection per thread and host: the suite
    makes thousands of these calls, and a call through requests cost about three times as much
    CPU as the plain one (loopback, the emulator's answer included).
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []  # every thread's, for close()
        self._opened_lock = threading.Lock()

    def _call(
        self, method: str, url: str, body: Any = None, timeout: float = 30
    ) -> tuple[int, bytes]:
        """The status and body of one request; a kept-alive connection the server closed
        meanwhile is opened again once."""
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        try:
            return self._exchange(parts, method, target, data, headers, timeout)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self._connections().pop(parts.netloc).close()
            return self._exchange(parts, method, target, data, headers, timeout)

    def _exchange(
        self,
        parts: urllib.parse.SplitResult,
        method: str,
        target: str,
        data: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes]:
        """One request on this thread's connection to ``parts``' host (opened if need be)."""
        connections = self._connections()
        connection = connections.get(parts.netloc)
        if connection is None:
            kind = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            connection = connections[parts.netloc] = kind(parts.hostname or "", parts.port)
            with self._opened_lock:
                self._opened.append(connection)
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    def _connections(self) -> dict[str, http.client.HTTPConnection]:
        """This thread's open connections, by host."""
        return self._local.__dict__.setdefault("connections", {})

    def close(self) -> None:
        """Close the connections every thread opened (a test's helper threads have ended by
        then). One used again afterwards reopens itself; a later ``close`` closes it again."""
        with self._opened_lock:
            opened = list(self._opened)
        for connection in opened:
            connection.close()

    def _post(self, what: str, body: Any) -> Any:
        status, content = self._call("POST", f"{self.base_url}/_emulator/{what}", body)
        assert status == 200, content
        return json.loads(content) if content else None

    def _get_json(self, what: str) -> Any:
        status, content = self._call("GET", f"{self.base_url}/_emulator/{what}")
        assert status == 200, content
        return json.loads(content)

    def reset(self) -> None:
        self._post("reset", {})

    def faults(self, rules: list[dict[str, Any]] | None = None, random: Any = None) -> None:
        body: dict[str, Any] = {"rules": rules or []}
        if random is not None:
            body["random"] = random
        self._post("faults", body)

    def config(self, **changes: Any) -> None:
        self._post("config", changes)

    def review(self, etag: str, status: int) -> None:
        self._post("review", {"etag": etag, "status": status})

    def drive(self, files: list[dict[str, Any]]) -> None:
        self._post("drive", {"files": files})

    def requests(self, path_part: str = "", method: str | None = None) -> list[dict[str, Any]]:
        """The request log: entries whose path contains ``path_part`` (and of ``method``)."""
        return [
            r
            for r in self._get_json("requests")["requests"]
            if path_part in r["path"] and (method is None or r["method"] == method)
        ]

    def clear_requests(self) -> None:
        """Empty the request log, so what follows is counted alone."""
        status, content = self._call("DELETE", f"{self.base_url}/_emulator/requests")
        assert status == 200, content

    def puts(self) -> list[dict[str, Any]]:
        return self.requests(method="PUT")

    def token_requests(self) -> int:
        """How many access_token requests were answered."""
        return len([r for r in self.requests("/api/v1/access_token") if r["status"] is not None])

    def created_md5s(self) -> list[str]:
        """The etag of every create request, in order."""
        return [r["json"]["etag"] for r in self.requests(CREATE_PATH)]

    def state(self) -> list[dict[str, Any]]:
        """Every folder and file on the image bed."""
        return self._get_json("state")["files"]

    def images(self) -> list[dict[str, Any]]:
        """Every file (not folder) on the image bed."""
        return [f for f in self.state() if f.get("type") == 0]

    def fetch(self, url: str) -> bytes:
        status, content = self._call("GET", url, timeout=60)
        assert status == 200, (url, status)
        return content


# --------------------------------------------------------------------------------------- settings

UNLIMITED = {key: 0.0 for key in DEFAULT_QPS}

# Tests must not wait on real backoff: a few milliseconds keep the loop's shape, not its patience.
FAST_NETWORK = NetworkSettings(
    connect_timeout=2.0,
    read_timeout=5.0,
    max_attempts=6,
    backoff_initial=0.01,
    backoff_max=0.05,
    qps=UNLIMITED,
)


def settings_for(base_url: str, data_dir: Path, **changes: Any) -> Settings:
    """Settings built in code: the test account, fast backoff, no client-side rate limit.

    ``changes`` may hold account fields (``client_secret=...``) or network fields.
    """
    account_fields = {f.name for f in dataclasses.fields(AccountSettings)}
    account = AccountSettings(
        **{
            "base_url": base_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **{k: v for k, v in changes.items() if k in account_fields},
        }
    )
    network = dataclasses.replace(
        FAST_NETWORK, **{k: v for k, v in changes.items() if k not in account_fields}
    )
    return Settings(account=account, network=network, data_dir=data_dir)


def write_config(
    path: Path,
    base_url: str,
    *,
    upload: Mapping[str, Any] | None = None,
    network: Mapping[str, Any] | None = None,
    qps: Mapping[str, float] | None = None,
    account: Mapping[str, Any] | None = None,
    cache: Mapping[str, Any] | None = None,
) -> Path:
    """A TOML config: the test account, tiny backoff, no client-side rate limit unless given."""
    acc = {"base_url": base_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    acc.update(account or {})
    net = {
        "connect_timeout": 5.0,
        "read_timeout": 30.0,
        "max_attempts": 8,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    net.update(network or {})
    rates = {key: 0 for key in DEFAULT_QPS}
    rates.update(qps or {})
    lines = ["[account]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in acc.items()]
    lines += ["", "[network]"] + [f"{k} = {json.dumps(v)}" for k, v in net.items()]
    lines += ["", "[network.qps]"] + [f"{k} = {json.dumps(v)}" for k, v in rates.items()]
    lines += ["", "[upload]"] + [f"{k} = {json.dumps(v)}" for k, v in (upload or {}).items()]
    if cache:  # after [upload] only when given: tests append upload keys to the file's end
        lines += ["", "[cache]"] + [f"{k} = {json.dumps(v)}" for k, v in cache.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)  # as users are told to keep it (it holds the secret)
    return path


def imgsync_in_process(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the ``imgsync`` command line in this process, as ``subprocess.run([imgsync, *args],
    env=env, cwd=cwd, capture_output=True, text=True)`` would: the console script's own group
    object, the process environment replaced by ``env`` for the call (what it lacks is unset),
    the working folder ``cwd``, stdout and stderr apart, the exit status.

    A subprocess costs about a tenth of a second of CPU to start (three times that on a loaded
    machine), so a test whose point is not the process itself runs the command here; tests of
    signals, a terminal, pipes, start-up imports or the console's encoding start a process. A
    traceback is raised, not turned into an exit status: in a subprocess it would show on
    stderr, which the tests check. The logging level and handlers a run sets up are restored
    afterwards.
    """
    import click.testing  # here: the emulator's tests import this module without click

    from imgsync.cli import main

    overrides: dict[str, str | None] = {key: None for key in os.environ if key not in env}
    overrides.update({key: value for key, value in env.items() if os.environ.get(key) != value})
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    urllib3_level = logging.getLogger("urllib3").level
    before = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = click.testing.CliRunner().invoke(main, list(args), input=stdin, env=overrides)
    finally:
        os.chdir(before)
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("urllib3").setLevel(urllib3_level)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(
        ["imgsync", *args], result.exit_code, result.stdout, result.stderr
    )
