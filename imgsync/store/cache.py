"""The local index that makes re-runs free: what is already on the image bed, and where.

One sqlite file in the data folder answers, without a single request to the service:

- *objects*: content md5 + size → the remote object holding those bytes (fileID, URLs, status);
- *file hashes*: (absolute path, size, mtime_ns, ctime_ns, inode) → md5, so an unchanged file is
  never hashed twice;
- *urls*: a remote image URL → the object it was migrated to;
- *folders*: a folder key → the image-bed folder ID;
- *notes*: a note path → its stamp at the last clean sync, so an unchanged note is not even parsed.

Everything that belongs to an account (objects, urls, folders, notes) is kept under a *namespace*
the caller chooses (the account's key, :attr:`imgsync.config.AccountSettings.key`), so a run
against the emulator never hands out the emulator's URLs to a run against the real account. File
hashes are facts about local files and are shared by all namespaces.

Several imgsync processes may use the file at once (a watcher and an editor's ``imgsync upload``),
and the upload engine calls one :class:`Cache` from several threads. Hence: WAL journal (readers
never wait for the writer), a busy timeout instead of instant "database is locked" failures, one
connection per thread, and only short single-statement or ``BEGIN IMMEDIATE`` transactions (a
deferred transaction that reads and then writes can fail with SQLITE_BUSY_SNAPSHOT without ever
calling the busy handler).

The file is private (0600; sqlite gives the ``-wal`` and ``-shm`` files the database's mode). A
damaged file raises :class:`CacheCorrupt`, telling the user to run ``imgsync cache clear``; never a
traceback.

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
from dataclasses import dataclass, field
from pathlib import Path

from imgsync.errors import CacheError
from imgsync.service import review_rejected

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "cache.sqlite3"

# How long a statement waits for another process's write lock before giving up. Writes here take
# milliseconds; 10 s rides out a slow disk or a checkpoint without leaving a user waiting forever.
BUSY_TIMEOUT_S = 10.0

# Pause between attempts to switch a brand-new file to WAL while another process holds it: the
# holder needs a few milliseconds, and polling faster only burns CPU.
WAL_SWITCH_RETRY_S = 0.01

# The file holds the list of a user's images and notes: nobody else needs to read it.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

# A stat stamp recorded less than this long after the file's mtime is not trusted ("racy", as git
# calls it): the file may change again within the filesystem's mtime granularity without its stamp
# changing. 2 s is the coarsest common granularity (FAT); it also covers small clock skew on network
# shares.
RACY_WINDOW_NS = 2_000_000_000

# Rows fetched per query by the iterators, so a long walk (``cache verify``) never holds a read
# transaction open while the caller talks to the network (that would stop WAL checkpoints).
ITER_BATCH = 500


_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

# Numbered migrations: MIGRATIONS[n] takes the schema from version n to n + 1 (PRAGMA user_version).
# Never edit a released step; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE objects (
            namespace TEXT NOT NULL,
            md5 TEXT NOT NULL,
            size INTEGER NOT NULL,
            file_id TEXT NOT NULL,
            download_url TEXT NOT NULL,
            user_self_url TEXT NOT NULL,
            status INTEGER NOT NULL,
            filename TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, md5, size)
        ) WITHOUT ROWID""",
        "CREATE INDEX objects_by_file_id ON objects (namespace, file_id)",
        """CREATE TABLE file_hashes (
            path TEXT NOT NULL PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            md5 TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE urls (
            namespace TEXT NOT NULL,
            source_url TEXT NOT NULL,
            md5 TEXT NOT NULL,
            size INTEGER NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, source_url)
        ) WITHOUT ROWID""",
        "CREATE INDEX urls_by_object ON urls (namespace, md5, size)",
        """CREATE TABLE folders (
            namespace TEXT NOT NULL,
            key TEXT NOT NULL,
            folder_id TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE notes (
            namespace TEXT NOT NULL,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            digest TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, path)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

TABLES = ("objects", "file_hashes", "urls", "folders", "notes")
_NAMESPACED_TABLES = ("objects", "urls", "folders", "notes")

_OBJECT_COLUMNS = "md5, size, file_id, download_url, user_self_url, status, filename"

_HEX_DIGITS = frozenset("0123456789abcdef")
_MD5_HEX_LEN = 32


class CacheCorrupt(CacheError):
    """The cache file is damaged, not a database, or from a newer imgsync: it must be cleared."""


class CacheBusy(CacheError):
    """Another process held the write lock for longer than :data:`BUSY_TIMEOUT_S`."""

    retryable = True


@dataclass(frozen=True)
class RemoteObject:
    """One file on the image bed, as far as imgsync needs to know it to hand out its link again."""

    md5: str
    size: int
    file_id: str
    download_url: str
    user_self_url: str
    status: int
    filename: str

    def __post_init__(self) -> None:
        # The md5 is a lookup key: one spelling only, or a hit would be missed.
        object.__setattr__(self, "md5", _normalize_md5(self.md5))
        if self.size < 0:
            raise ValueError(f"size must not be negative, got {self.size}")

    @property
    def rejected(self) -> bool:
        """Whether the service's content review rejected the image (its link will not serve)."""
        return review_rejected(self.status)


@dataclass(frozen=True)
class NoteStamp:
    """What a note looked like after its last clean sync.

    ``stat_trusted`` is False when the stamp was recorded so soon after the note's mtime that a
    later edit could have kept the same size and mtime: then only ``digest`` (the caller's hash of
    the note's bytes) can prove the note unchanged.
    """

    size: int
    mtime_ns: int
    inode: int
    digest: str
    stat_trusted: bool = field(default=True, compare=False)

    @classmethod
    def from_stat(cls, st: os.stat_result, digest: str) -> NoteStamp:
        """The stamp of a note whose ``os.stat`` is ``st`` and whose bytes hash to ``digest``."""
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, digest=digest)

    def matches_stat(self, st: os.stat_result) -> bool:
        """Whether ``st`` proves the note unchanged without reading it."""
        return self.stat_trusted and (st.st_size, st.st_mtime_ns, st.st_ino) == (
            self.size,
            self.mtime_ns,
            self.inode,
        )


def cache_path(data_dir: Path) -> Path:
    """Where the cache of the data folder ``data_dir`` lives."""
    return Path(data_dir) / CACHE_FILE_NAME


def remove_cache_files(path: Path) -> list[Path]:
    """Delete the database at ``path`` and its side files; return what was removed.

    The way out of :class:`CacheCorrupt` (``imgsync cache clear``): it works on a file sqlite can no
    longer open. Another process that still has the file open keeps using its unlinked copy.
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


class Cache:
    """The sqlite index. Safe to share between threads; safe to open from several processes.

    ``namespace`` separates accounts (:attr:`imgsync.config.AccountSettings.key`). ``clock_ns`` is
    injectable so tests can control the racy-stamp rule.
    """

    def __init__(
        self,
        path: Path,
        *,
        namespace: str = "",
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = Path(path)
        self.namespace = namespace
        self._clock_ns = clock_ns
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
            with self._translate():
                self._migrate(self._conn())
        except BaseException:
            self.close()  # so `imgsync cache clear` can remove the file, even on Windows
            raise

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        namespace: str = "",
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> Cache:
        """Open (creating if needed) the cache of the data folder ``data_dir``."""
        return cls(cache_path(data_dir), namespace=namespace, clock_ns=clock_ns)

    # -- life cycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every thread's connection. Further use raises ``ValueError``."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, {}
        for conn in connections.values():
            conn.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- objects ----------------------------------------------------------------------------------

    def get_object(self, md5: str, size: int) -> RemoteObject | None:
        """The remote object holding the bytes with this md5 and size, if one is known."""
        row = self._one(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE namespace = ? AND md5 = ? AND size = ?",
            (self.namespace, _normalize_md5(md5), size),
        )
        return RemoteObject(*row) if row else None

    def put_object(self, obj: RemoteObject) -> None:
        """Remember ``obj`` (replacing what was known about the same md5 and size)."""
        self._write(lambda conn: self._upsert_object(conn, obj))

    def forget_object(self, md5: str) -> None:
        """Forget the objects with this md5 and the URLs migrated to them (deleted remotely)."""
        md5 = _normalize_md5(md5)

        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM urls WHERE namespace = ? AND md5 = ?", (self.namespace, md5))
            conn.execute(
                "DELETE FROM objects WHERE namespace = ? AND md5 = ?", (self.namespace, md5)
            )

        self._write(forget, transaction=True)

    def forget_file_id(self, file_id: str) -> None:
        """Forget the object with this remote file ID (after ``imgsync rm``), and its URLs."""
        row = self._one(
            "SELECT md5 FROM objects WHERE namespace = ? AND file_id = ?", (self.namespace, file_id)
        )
        if row:
            self.forget_object(row[0])

    def iter_objects(self) -> Iterator[RemoteObject]:
        """Every object of this namespace, in md5 order, fetched in batches.

        No read transaction stays open between batches, so the caller may take its time (and others
        may write) while iterating; rows written meanwhile may or may not be seen.
        """
        last: tuple[str, int] = ("", -1)
        while True:
            rows = self._all(
                f"SELECT {_OBJECT_COLUMNS} FROM objects"
                " WHERE namespace = ? AND (md5, size) > (?, ?) ORDER BY md5, size LIMIT ?",
                (self.namespace, *last, ITER_BATCH),
            )
            for row in rows:
                yield RemoteObject(*row)
            if len(rows) < ITER_BATCH:
                return
            last = (rows[-1][0], rows[-1][1])

    def link_folders(self) -> set[str]:
        """The download folder (``https://host/uid/``) of every link this namespace was handed:
        a link starting with one of them is already on the user's image bed."""
        rows = self._all(
            "SELECT DISTINCT download_url FROM objects WHERE namespace = ?"
            " UNION SELECT DISTINCT user_self_url FROM objects WHERE namespace = ?",
            (self.namespace, self.namespace),
        )
        return {folder for (url,) in rows if (folder := url_folder(url or ""))}

    # -- local file hashes ------------------------------------------------------------------------

    def get_file_md5(self, path: Path, st: os.stat_result) -> str | None:
        """The md5 recorded for ``path`` if ``st`` shows the file unchanged since; else None.

        Unchanged means same size, mtime_ns, ctime_ns and inode (ctime catches a rewrite that put
        the old mtime back). A stamp recorded within :data:`RACY_WINDOW_NS` of the mtime is not
        trusted.
        """
        row = self._one(
            "SELECT size, mtime_ns, ctime_ns, inode, md5, recorded_ns FROM file_hashes"
            " WHERE path = ?",
            (_path_key(path),),
        )
        if row is None:
            return None
        size, mtime_ns, ctime_ns, inode, md5, recorded_ns = row
        if (size, mtime_ns, ctime_ns, inode) != (
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
        ):
            return None
        if _is_racy(mtime_ns, recorded_ns):
            return None
        return md5

    def put_file_md5(self, path: Path, st: os.stat_result, md5: str) -> None:
        """Record that ``path``, as described by ``st`` (taken before hashing), has this md5."""
        values = (
            _path_key(path),
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            _normalize_md5(md5),
            self._clock_ns(),
        )
        self._execute_write(
            "INSERT INTO file_hashes (path, size, mtime_ns, ctime_ns, inode, md5, recorded_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
            " size = excluded.size, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,"
            " inode = excluded.inode, md5 = excluded.md5, recorded_ns = excluded.recorded_ns",
            values,
        )

    # -- remote URLs ------------------------------------------------------------------------------

    def get_url(self, source_url: str) -> RemoteObject | None:
        """The object a remote image URL was migrated to, if known."""
        row = self._one(
            "SELECT o.md5, o.size, o.file_id, o.download_url, o.user_self_url, o.status, o.filename"
            " FROM urls AS u JOIN objects AS o"
            " ON o.namespace = u.namespace AND o.md5 = u.md5 AND o.size = u.size"
            " WHERE u.namespace = ? AND u.source_url = ?",
            (self.namespace, source_url),
        )
        return RemoteObject(*row) if row else None

    def put_url(self, source_url: str, obj: RemoteObject) -> None:
        """Remember that ``source_url`` was migrated to ``obj`` (and remember ``obj`` itself)."""

        def put(conn: sqlite3.Connection) -> None:
            self._upsert_object(conn, obj)
            conn.execute(
                "INSERT INTO urls (namespace, source_url, md5, size, recorded_ns)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, source_url) DO UPDATE SET"
                " md5 = excluded.md5, size = excluded.size, recorded_ns = excluded.recorded_ns",
                (self.namespace, source_url, obj.md5, obj.size, self._clock_ns()),
            )

        self._write(put, transaction=True)

    # -- folders ----------------------------------------------------------------------------------

    def get_folder(self, key: str) -> str | None:
        """The folder ID cached under ``key`` (the caller's base URL + folder path)."""
        row = self._one(
            "SELECT folder_id FROM folders WHERE namespace = ? AND key = ?", (self.namespace, key)
        )
        return row[0] if row else None

    def put_folder(self, key: str, folder_id: str) -> None:
        """Remember the folder ID of ``key``."""
        self._execute_write(
            "INSERT INTO folders (namespace, key, folder_id, recorded_ns) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (namespace, key) DO UPDATE SET"
            " folder_id = excluded.folder_id, recorded_ns = excluded.recorded_ns",
            (self.namespace, key, folder_id, self._clock_ns()),
        )

    def forget_folder(self, key: str) -> None:
        """Forget one folder ID (it turned out stale: the folder was deleted or moved)."""
        self._execute_write(
            "DELETE FROM folders WHERE namespace = ? AND key = ?", (self.namespace, key)
        )

    def forget_folders(self) -> None:
        """Forget every folder ID of this namespace."""
        self._execute_write("DELETE FROM folders WHERE namespace = ?", (self.namespace,))

    # -- notes ------------------------------------------------------------------------------------

    def get_note(self, path: Path) -> NoteStamp | None:
        """The stamp recorded for the note at ``path`` after its last clean sync, if any."""
        row = self._one(
            "SELECT size, mtime_ns, inode, digest, recorded_ns FROM notes"
            " WHERE namespace = ? AND path = ?",
            (self.namespace, _path_key(path)),
        )
        if row is None:
            return None
        size, mtime_ns, inode, digest, recorded_ns = row
        return NoteStamp(size, mtime_ns, inode, digest, not _is_racy(mtime_ns, recorded_ns))

    def note_stamps(self) -> dict[str, NoteStamp]:
        """Every note stamp of this namespace, keyed by absolute path (as :meth:`get_note` keys
        them): one query instead of one per note, for a re-sync of a whole vault."""
        rows = self._all(
            "SELECT path, size, mtime_ns, inode, digest, recorded_ns FROM notes"
            " WHERE namespace = ?",
            (self.namespace,),
        )
        return {
            os.fsdecode(path): NoteStamp(
                size, mtime_ns, inode, digest, not _is_racy(mtime_ns, recorded_ns)
            )
            for path, size, mtime_ns, inode, digest, recorded_ns in rows
        }

    def put_note(self, path: Path, stamp: NoteStamp) -> None:
        """Record the note's stamp after a clean sync."""
        self._execute_write(
            "INSERT INTO notes (namespace, path, size, mtime_ns, inode, digest, recorded_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, path) DO UPDATE SET"
            " size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,"
            " digest = excluded.digest, recorded_ns = excluded.recorded_ns",
            (
                self.namespace,
                _path_key(path),
                stamp.size,
                stamp.mtime_ns,
                stamp.inode,
                stamp.digest,
                self._clock_ns(),
            ),
        )

    def forget_note(self, path: Path) -> None:
        """Forget the note's stamp (its sync was not clean, so it must be looked at next time)."""
        self._execute_write(
            "DELETE FROM notes WHERE namespace = ? AND path = ?", (self.namespace, _path_key(path))
        )

    # -- whole cache ------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Rows per table (namespaced tables: this namespace only) and the bytes on disk.

        Keys: the names in :data:`TABLES`, ``namespaces`` (how many namespaces hold objects) and
        ``bytes`` (database plus WAL).
        """
        result: dict[str, int] = {}
        for table in TABLES:
            if table in _NAMESPACED_TABLES:
                row = self._one(
                    f"SELECT COUNT(*) FROM {table} WHERE namespace = ?", (self.namespace,)
                )
            else:
                row = self._one(f"SELECT COUNT(*) FROM {table}", ())
            result[table] = row[0] if row else 0
        row = self._one("SELECT COUNT(DISTINCT namespace) FROM objects", ())
        result["namespaces"] = row[0] if row else 0
        result["bytes"] = sum(
            _size_or_zero(Path(f"{self.path}{suffix}")) for suffix in ("", "-wal")
        )
        return result

    def clear(self) -> None:
        """Empty every table, for every namespace. The file stays (and stays in use by others)."""

        def clear_all(conn: sqlite3.Connection) -> None:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")

        self._write(clear_all, transaction=True)

    # -- internals --------------------------------------------------------------------------------

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
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise CacheCorrupt(
                f"the cache {self.path} was written by a newer imgsync (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade imgsync or run `imgsync cache clear`"
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

    def _one(self, sql: str, params: tuple[object, ...]) -> tuple | None:
        with self._translate():
            return self._conn().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[object, ...]) -> list[tuple]:
        with self._translate():
            return self._conn().execute(sql, params).fetchall()

    def _execute_write(self, sql: str, params: tuple[object, ...]) -> None:
        with self._translate():
            self._conn().execute(sql, params)

    def _write(
        self, work: Callable[[sqlite3.Connection], None], *, transaction: bool = False
    ) -> None:
        """Run ``work``; with ``transaction``, inside ``BEGIN IMMEDIATE`` (lock taken up front)."""
        with self._translate():
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

    def _upsert_object(self, conn: sqlite3.Connection, obj: RemoteObject) -> None:
        conn.execute(
            "INSERT INTO objects (namespace, md5, size, file_id, download_url, user_self_url,"
            " status, filename, recorded_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (namespace, md5, size) DO UPDATE SET"
            " file_id = excluded.file_id, download_url = excluded.download_url,"
            " user_self_url = excluded.user_self_url, status = excluded.status,"
            " filename = excluded.filename, recorded_ns = excluded.recorded_ns",
            (
                self.namespace,
                obj.md5,
                obj.size,
                obj.file_id,
                obj.download_url,
                obj.user_self_url,
                obj.status,
                obj.filename,
                self._clock_ns(),
            ),
        )

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn sqlite's exceptions into :class:`CacheError`s that tell the user what to do."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "") or ""
            if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
                raise CacheCorrupt(
                    f"the cache {self.path} is damaged ({exc}); run `imgsync cache clear` to start"
                    " a fresh one (nothing on the image bed is lost)"
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


def _normalize_md5(md5: str) -> str:
    text = md5.strip().lower()
    if len(text) != _MD5_HEX_LEN or not _HEX_DIGITS.issuperset(text):
        raise ValueError(f"not an md5 hex digest: {md5!r}")
    return text


def url_folder(url: str) -> str | None:
    """``https://host/uid/x.png`` → ``https://host/uid/``: what every link of the account shares
    (downloadURL looks like ``https://vip.123pan.cn/<uid>/<fileId>.<ext>``)."""
    scheme, sep, rest = url.partition("://")
    parts = rest.split("/")
    if not sep or not scheme or len(parts) < 3:
        return None
    return f"{scheme}://{'/'.join(parts[:-1])}/"


def _path_key(path: Path) -> str | bytes:
    """Absolute, normalised, without resolving symlinks: one spelling per path, and no extra
    syscalls (size, mtime and inode guard against the rest).

    A name holding bytes that are not UTF-8 (decoded by Python with ``surrogateescape``) cannot
    be SQL text: it is kept as its raw bytes (a BLOB), which sqlite compares byte for byte and
    never confuses with a text key.
    """
    key = os.path.abspath(path)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(key)
    return key


def _is_racy(mtime_ns: int, recorded_ns: int) -> bool:
    return recorded_ns - mtime_ns < RACY_WINDOW_NS


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
