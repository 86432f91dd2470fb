"""The local index that makes re-runs free: what is already on the image bed, and where.

One sqlite file in the data folder answers, without a single request to the service:

- *objects*: content md5 + size → the remote object holding those bytes (fileID, URLs, status);
- *file hashes*: (absolute path, size, mtime_ns, ctime_ns, inode) → md5, so an unchanged file is
  never hashed twice;
- *urls*: a remote image URL → the object it was migrated to;
- *folders*: a folder key → the image-bed folder ID;
- *notes*: a note path → its stamp at the last clean sync, so an unchanged note is not even parsed;
- *url attempts*: a remote image URL not on the image bed yet → its offline task and its failures
  (:mod:`imgsync.store.attempts`), so a dead link is not tried on every run.
- *service facts*: what this account's service was found to do where the reference leaves it open
  (which form of mkdir's ``name`` it takes).

Each object carries when the service last vouched for it (``checked_ns``: when it was uploaded,
listed or checked with ``detail``), so an entry that has grown old can be checked again before it
is handed out; a rejected object stays known as rejected, so it is never handed out and the notes
that link to it can be reported.

Everything that belongs to an account (objects, urls, folders, notes) is kept under a *namespace*
the caller chooses (the account's key, :attr:`imgsync.config.AccountSettings.key`), so a run
against the emulator never hands out the emulator's URLs to a run against the real account. File
hashes are facts about local files and are shared by all namespaces.

The file itself (sharing between threads and processes, privacy, damage) is
:mod:`imgsync.store.db`'s; its tables are :mod:`imgsync.store.schema`'s.

Only the standard library is imported here: a cache hit for ``imgsync upload x.png`` is on the path
of every paste in an editor.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from imgsync.errors import CacheError
from imgsync.records import field, record
from imgsync.service import REVIEW_PASSED, REVIEW_REJECTED_ABOVE, review_pending, review_rejected
from imgsync.store.attempts import UrlAttempt, UrlAttempts
from imgsync.store.db import CacheBusy, CacheCorrupt, Database, remove_cache_files
from imgsync.store.notestamps import NoteStamp, NoteStamps
from imgsync.store.schema import NAMESPACED_TABLES, TABLES
from imgsync.store.stamps import RACY_WINDOW_NS, StatKey, is_racy, path_key, stat_key

__all__ = [
    "CACHE_FILE_NAME",
    "RACY_WINDOW_NS",
    "Cache",
    "CacheBusy",
    "CacheCorrupt",
    "CacheError",
    "NoteStamp",
    "RemoteObject",
    "StatKey",
    "UrlAttempt",
    "UrlAttempts",
    "cache_path",
    "remove_cache_files",
    "stat_key",
    "url_folder",
]

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "cache.sqlite3"

# Rows fetched per query by the iterators, so a long walk never holds a read transaction open
# while the caller talks to the network (that would stop WAL checkpoints).
ITER_BATCH = 500


_OBJECT_COLUMNS = (
    "md5, size, file_id, download_url, user_self_url, status, filename, recorded_ns AS checked_ns"
)

_HEX_DIGITS = frozenset("0123456789abcdef")
_MD5_HEX_LEN = 32


@record(frozen=True)
class RemoteObject:
    """One file on the image bed, as far as imgsync needs to know it to hand out its link again."""

    md5: str
    size: int
    file_id: str
    download_url: str
    user_self_url: str
    status: int
    filename: str
    # When the service last vouched for it (uploaded, listed, checked): the row's time, in Unix
    # nanoseconds; 0 for an object not read from the index. Not part of what the object *is*.
    checked_ns: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        # The md5 is a lookup key: one spelling only, or a hit would be missed.
        object.__setattr__(self, "md5", _normalize_md5(self.md5))
        if self.size < 0:
            raise ValueError(f"size must not be negative, got {self.size}")

    @property
    def rejected(self) -> bool:
        """Whether the service's content review rejected the image (its link will not serve)."""
        return review_rejected(self.status)

    @property
    def review_pending(self) -> bool:
        """Whether its content review had not ended when the service last said (a rejection may
        still come)."""
        return review_pending(self.status)


def cache_path(data_dir: Path) -> Path:
    """Where the cache of the data folder ``data_dir`` lives."""
    return Path(data_dir) / CACHE_FILE_NAME


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
        self.namespace = namespace
        self._clock_ns = clock_ns
        self._db = Database(path)
        #: The notes' stamps after their last clean sync (:class:`NoteStamps`).
        self.notes = NoteStamps(self._db, namespace, clock_ns)
        #: The tries at remote URLs not on the image bed yet (tasks started, failures).
        self.attempts = UrlAttempts(self._db, namespace, clock_ns)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

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
        self._db.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- objects ----------------------------------------------------------------------------------

    def get_object(self, md5: str, size: int) -> RemoteObject | None:
        """The remote object holding the bytes with this md5 and size, if one is known."""
        row = self._db.one(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE namespace = ? AND md5 = ? AND size = ?",
            (self.namespace, _normalize_md5(md5), size),
        )
        return RemoteObject(*row) if row else None

    def get_object_by_file_id(self, file_id: str) -> RemoteObject | None:
        """The object with this remote file ID, if one is known (``imgsync rm`` then knows the ID
        names a file, not a folder, without asking the service)."""
        row = self._db.one(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE namespace = ? AND file_id = ?",
            (self.namespace, file_id),
        )
        return RemoteObject(*row) if row else None

    def put_object(self, obj: RemoteObject) -> None:
        """Remember ``obj`` (replacing what was known about the same md5 and size)."""
        self._db.write(lambda conn: self._upsert_object(conn, obj))

    def put_objects(self, objects: Iterable[RemoteObject]) -> int:
        """Remember every object of ``objects`` in one transaction (``imgsync cache rebuild``
        writes thousands: one commit each would take seconds); return how many."""
        count = 0

        def put_all(conn: sqlite3.Connection) -> None:
            nonlocal count
            for obj in objects:
                self._upsert_object(conn, obj)
                count += 1

        self._db.write(put_all, transaction=True)
        return count

    def forget_object(self, md5: str) -> None:
        """Forget the objects with this md5 and the URLs migrated to them (deleted remotely)."""
        md5 = _normalize_md5(md5)

        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM urls WHERE namespace = ? AND md5 = ?", (self.namespace, md5))
            conn.execute(
                "DELETE FROM objects WHERE namespace = ? AND md5 = ?", (self.namespace, md5)
            )

        self._db.write(forget, transaction=True)

    def forget_file_id(self, file_id: str) -> None:
        """Forget the object with this remote file ID (after ``imgsync rm``), and its URLs."""
        row = self._db.one(
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
            rows = self._db.all(
                f"SELECT {_OBJECT_COLUMNS} FROM objects"
                " WHERE namespace = ? AND (md5, size) > (?, ?) ORDER BY md5, size LIMIT ?",
                (self.namespace, *last, ITER_BATCH),
            )
            for row in rows:
                yield RemoteObject(*row)
            if len(rows) < ITER_BATCH:
                return
            last = (rows[-1][0], rows[-1][1])

    def put_rejected(self, obj: RemoteObject) -> None:
        """Remember that the content review rejected ``obj`` (its status says so): it is never
        handed out again. The note stamps of this account are forgotten with it, so the next sync
        reads every note again and reports those that link to it."""
        if not obj.rejected:
            raise ValueError(f"{obj.file_id} is not rejected (status {obj.status})")

        def put(conn: sqlite3.Connection) -> None:
            self._upsert_object(conn, obj)
            conn.execute("DELETE FROM notes WHERE namespace = ?", (self.namespace,))

        self._db.write(put, transaction=True)

    def pending_review(self) -> list[RemoteObject]:
        """The objects whose content review had not ended when last checked."""
        rows = self._db.all(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE namespace = ? AND status < ?",
            (self.namespace, REVIEW_PASSED),
        )
        return [RemoteObject(*row) for row in rows]

    def rejected_objects(self) -> list[RemoteObject]:
        """The objects the content review rejected (their links do not serve)."""
        rows = self._db.all(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE namespace = ? AND status > ?",
            (self.namespace, REVIEW_REJECTED_ABOVE),
        )
        return [RemoteObject(*row) for row in rows]

    def link_folders(self) -> set[str]:
        """The download folder (``https://host/uid/``) of every link this namespace was handed:
        a link starting with one of them is already on the user's image bed."""
        rows = self._db.all(
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
        row = self._db.one(
            "SELECT size, mtime_ns, ctime_ns, inode, md5, recorded_ns FROM file_hashes"
            " WHERE path = ?",
            (path_key(path),),
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
        if is_racy(mtime_ns, recorded_ns):
            return None
        return md5

    def put_file_md5(self, path: Path, st: os.stat_result, md5: str) -> None:
        """Record that ``path``, as described by ``st`` (taken before hashing), has this md5."""
        values = (
            path_key(path),
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            _normalize_md5(md5),
            self._clock_ns(),
        )
        self._db.execute(
            "INSERT INTO file_hashes (path, size, mtime_ns, ctime_ns, inode, md5, recorded_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
            " size = excluded.size, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,"
            " inode = excluded.inode, md5 = excluded.md5, recorded_ns = excluded.recorded_ns",
            values,
        )

    # -- remote URLs ------------------------------------------------------------------------------

    def get_url(self, source_url: str) -> RemoteObject | None:
        """The object a remote image URL was migrated to, if known."""
        row = self._db.one(
            "SELECT o.md5, o.size, o.file_id, o.download_url, o.user_self_url, o.status,"
            " o.filename, o.recorded_ns FROM urls AS u JOIN objects AS o"
            " ON o.namespace = u.namespace AND o.md5 = u.md5 AND o.size = u.size"
            " WHERE u.namespace = ? AND u.source_url = ?",
            (self.namespace, source_url),
        )
        return RemoteObject(*row) if row else None

    def put_url(self, source_url: str, obj: RemoteObject) -> None:
        """Remember that ``source_url`` was migrated to ``obj`` (and remember ``obj`` itself); the
        earlier tries at it (its task, its failures) are forgotten."""

        def put(conn: sqlite3.Connection) -> None:
            self._upsert_object(conn, obj)
            conn.execute(
                "INSERT INTO urls (namespace, source_url, md5, size, recorded_ns)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, source_url) DO UPDATE SET"
                " md5 = excluded.md5, size = excluded.size, recorded_ns = excluded.recorded_ns",
                (self.namespace, source_url, obj.md5, obj.size, self._clock_ns()),
            )
            conn.execute(
                "DELETE FROM url_attempts WHERE namespace = ? AND source_url = ?",
                (self.namespace, source_url),
            )

        self._db.write(put, transaction=True)

    # -- folders ----------------------------------------------------------------------------------

    def get_folder(self, key: str) -> str | None:
        """The folder ID cached under ``key`` (the caller's base URL + folder path)."""
        row = self._db.one(
            "SELECT folder_id FROM folders WHERE namespace = ? AND key = ?", (self.namespace, key)
        )
        return row[0] if row else None

    def put_folder(self, key: str, folder_id: str) -> None:
        """Remember the folder ID of ``key``."""
        self._db.execute(
            "INSERT INTO folders (namespace, key, folder_id, recorded_ns) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (namespace, key) DO UPDATE SET"
            " folder_id = excluded.folder_id, recorded_ns = excluded.recorded_ns",
            (self.namespace, key, folder_id, self._clock_ns()),
        )

    def forget_folder(self, key: str) -> None:
        """Forget one folder ID (it turned out stale: the folder was deleted or moved)."""
        self._db.execute(
            "DELETE FROM folders WHERE namespace = ? AND key = ?", (self.namespace, key)
        )

    def forget_folders(self) -> None:
        """Forget every folder ID of this namespace."""
        self._db.execute("DELETE FROM folders WHERE namespace = ?", (self.namespace,))

    # -- service facts ----------------------------------------------------------------------------

    def get_fact(self, name: str) -> str | None:
        """What was learned about this account's service under ``name``, if anything."""
        row = self._db.one(
            "SELECT value FROM service_facts WHERE namespace = ? AND name = ?",
            (self.namespace, name),
        )
        return row[0] if row else None

    def put_fact(self, name: str, value: str) -> None:
        """Remember ``value`` under ``name`` for this account's service."""
        self._db.execute(
            "INSERT INTO service_facts (namespace, name, value, recorded_ns) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (namespace, name) DO UPDATE SET"
            " value = excluded.value, recorded_ns = excluded.recorded_ns",
            (self.namespace, name, value, self._clock_ns()),
        )

    # -- whole cache ------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Rows per table (namespaced tables: this namespace only) and the bytes on disk.

        Keys: the names in :data:`TABLES`, ``namespaces`` (how many namespaces hold objects) and
        ``bytes`` (database plus WAL).
        """
        result: dict[str, int] = {}
        for table in TABLES:
            if table in NAMESPACED_TABLES:
                row = self._db.one(
                    f"SELECT COUNT(*) FROM {table} WHERE namespace = ?", (self.namespace,)
                )
            else:
                row = self._db.one(f"SELECT COUNT(*) FROM {table}", ())
            result[table] = row[0] if row else 0
        row = self._db.one("SELECT COUNT(DISTINCT namespace) FROM objects", ())
        result["namespaces"] = row[0] if row else 0
        result["bytes"] = self._db.size_on_disk()
        return result

    def clear(self) -> None:
        """Empty every table, for every namespace. The file stays (and stays in use by others)."""

        def clear_all(conn: sqlite3.Connection) -> None:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")

        self._db.write(clear_all, transaction=True)

    # -- internals --------------------------------------------------------------------------------

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
