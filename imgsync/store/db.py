"""The sqlite file under the local index: private, shared by threads and processes, migrated once.

Several imgsync processes may use the file at once (a watcher and an editor's ``imgsync upload``),
and the upload engine calls it from several threads. Hence: WAL journal (readers never wait for the
writer), a busy timeout instead of instant "database is locked" failures, one connection per thread
(a forked child opens its own), and only short single-statement or ``BEGIN IMMEDIATE`` transactions
(a deferred transaction that reads and then writes can fail with SQLITE_BUSY_SNAPSHOT without ever
calling the busy handler).

The file is private (0600; sqlite gives the ``-wal`` and ``-shm`` files the database's mode). A
damaged file raises :class:`CacheCorrupt`, naming the command that clears it; never a traceback.
What the tables hold is :mod:`imgsync.store.schema`'s; what they mean is
:mod:`imgsync.store.cache`'s.

Only the standard library is imported here: a cache hit for ``imgsync upload x.png`` is on the path
of every paste in an editor.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imgsync.errors import CacheError
from imgsync.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

# How long a statement waits for another process's write lock before giving up. Writes here take
# milliseconds; 10 s rides out a slow disk or a checkpoint without leaving a user waiting forever.
BUSY_TIMEOUT_S = 10.0

# Pause between attempts to switch a brand-new file to WAL while another process holds it: the
# holder needs a few milliseconds, and polling faster only burns CPU.
WAL_SWITCH_RETRY_S = 0.01

# The file holds the list of a user's images and notes: nobody else needs to read it.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

# The way out of a damaged or too new file, named in its error: the command removes the file
# (:func:`remove_cache_files`) when sqlite can no longer open it.
CLEAR_COMMAND = "imgsync cache clear"


class CacheCorrupt(CacheError):
    """The cache file is damaged, not a database, or from a newer imgsync: it must be cleared."""


class CacheBusy(CacheError):
    """Another process held the write lock for longer than :data:`BUSY_TIMEOUT_S`."""

    retryable = True


def remove_cache_files(path: Path) -> list[Path]:
    """Delete the database at ``path`` and its side files; return what was removed.

    The way out of :class:`CacheCorrupt` (what :data:`CLEAR_COMMAND` does then): it works on a file
    sqlite can no longer open. Another process that still has the file open keeps using its
    unlinked copy.
    """
    removed = []
    for candidate in [Path(path), *(Path(f"{path}{suffix}") for suffix in _SQLITE_SIDE_FILES)]:
        try:
            candidate.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CacheError(f"cannot remove {candidate}: {exc.strerror or exc}") from exc
        removed.append(candidate)
    return removed


class Database:
    """One sqlite file. Safe to share between threads; safe to open from several processes.

    Opening creates the file (0600) and its folder (0700) if needed and migrates the schema.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        # Each thread's connection, so close() can reach them all and a finished thread's can be
        # closed at once (a watcher starts a new pool per sync: waiting for gc would leak files).
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        # Handles inherited through fork(): neither used nor closed in the child (sqlite's rule).
        self._inherited: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
            _make_private(self.path)
        except OSError as exc:
            raise CacheError(f"cannot create the cache {self.path}: {exc.strerror or exc}") from exc
        try:
            with self.translate():
                self._migrate(self._conn())
        except BaseException:
            self.close()  # so the file can be removed, even on Windows
            raise

    def close(self) -> None:
        """Close every thread's connection. Further use raises ``ValueError``."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, {}
        for conn in connections.values():
            conn.close()

    def size_on_disk(self) -> int:
        """Bytes of the database and its write-ahead log."""
        return sum(_size_or_zero(Path(f"{self.path}{suffix}")) for suffix in ("", "-wal"))

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a forked child opens its own: sqlite handles do not survive
        ``fork``)."""
        if self._closed:
            raise ValueError(f"the cache {self.path} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # autocommit; transactions are explicit and short
            check_same_thread=False,  # so close() and the pruning below may close it elsewhere
        )
        try:
            self._enable_wal(conn)
            # NORMAL is safe with WAL: a power cut may lose the last writes, never consistency.
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        self._local.pid = os.getpid()
        with self._lock:
            if self._closed:
                conn.close()
                raise ValueError(f"the cache {self.path} is closed")
            if self._pid != os.getpid():
                self._inherited.extend(self._connections.values())
                self._connections = {}
                self._pid = os.getpid()
            for thread in [thread for thread in self._connections if not thread.is_alive()]:
                self._connections.pop(thread).close()
            self._connections[threading.current_thread()] = conn
        _make_side_files_private(self.path)
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (a persistent setting: after the first time this is a read).

        The switch needs an exclusive lock and sqlite does not call the busy handler for it, so
        processes opening a brand-new file together would see "database is locked": retry instead.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                busy = (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY")
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(WAL_SWITCH_RETRY_S)
        if mode != "wal":
            # Some network filesystems cannot share WAL's memory map: keep working, more slowly.
            log.warning("cache %s: WAL unavailable, journal mode is %s", self.path, mode)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring the schema to the newest version, once, whichever process gets there first."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise CacheCorrupt(
                f"the cache {self.path} was written by a newer imgsync (schema {version}, this one"
                f" knows {SCHEMA_VERSION}); upgrade imgsync, or run `{CLEAR_COMMAND}` to start"
                " afresh"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        log.debug("cache %s migrated from schema %d to %d", self.path, version, SCHEMA_VERSION)

    def one(self, sql: str, params: tuple[object, ...]) -> tuple | None:
        """The first row of a query, or None."""
        with self.translate():
            return self._conn().execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple[object, ...]) -> list[tuple]:
        """Every row of a query."""
        with self.translate():
            return self._conn().execute(sql, params).fetchall()

    def read_together(self, *queries: tuple[str, tuple[object, ...]]) -> list[list[tuple]]:
        """Every row of each query, all read from one snapshot of the file (one read
        transaction): no other process's write lands between them."""
        with self.translate():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                results = [conn.execute(sql, params).fetchall() for sql, params in queries]
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
            return results

    def execute(self, sql: str, params: tuple[object, ...]) -> None:
        """One writing statement, committed on its own."""
        with self.translate():
            self._conn().execute(sql, params)

    def write(
        self, work: Callable[[sqlite3.Connection], None], *, transaction: bool = False
    ) -> None:
        """Run ``work``; with ``transaction``, inside ``BEGIN IMMEDIATE`` (lock taken up front)."""
        with self.translate():
            conn = self._conn()
            if not transaction:
                work(conn)
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                work(conn)
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")

    @contextmanager
    def translate(self) -> Iterator[None]:
        """Turn sqlite's exceptions into :class:`CacheError`s that tell the user what to do."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "") or ""
            if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                raise CacheCorrupt(
                    f"the cache {self.path} is damaged ({exc}); run `{CLEAR_COMMAND}` to start a"
                    " fresh one: nothing on the image bed is lost"
                ) from exc
            if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                raise CacheBusy(
                    f"the cache {self.path} stayed locked by another imgsync process for more than"
                    f" {BUSY_TIMEOUT_S:g} s; try again"
                ) from exc
            raise CacheError(f"the cache {self.path} cannot be used: {exc}") from exc


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if sqlite has not already done so (it does after e.g. a full disk), so the original
    error is the one reported."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _make_private(path: Path) -> None:
    """Create ``path`` with mode 0600 before sqlite does (sqlite would honour the umask), and
    tighten an existing file that is readable by others."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        if os.name == "posix" and stat_module.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def _make_side_files_private(path: Path) -> None:
    """sqlite gives ``-wal``/``-shm`` the database's mode; tighten ones left from a looser past."""
    if os.name != "posix":
        return
    for suffix in ("-wal", "-shm"):
        side = f"{path}{suffix}"
        try:
            if stat_module.S_IMODE(os.stat(side).st_mode) & 0o077:
                os.chmod(side, PRIVATE_FILE_MODE)
        except OSError:
            continue


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
