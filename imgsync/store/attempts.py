"""What became of imgsync's tries at remote image URLs that are not on the image bed yet.

Per account (the cache's namespace) and URL, one row remembers:

- the offline task started for the URL while it is not settled (running, or done but its file not
  found yet), so a later run polls that task or finds its file by name instead of starting a second
  task on the service;
- the failures in a row, the last one's reason in words and its kind (:data:`FAILED`,
  :data:`NOT_IMAGE`: a link left alone, not an error; :data:`PRIVATE_ADDRESS`: refused by a setting
  the user may change), when it was last tried and when it may be tried again. Dead links are thus
  not tried on every run, each try costing seconds and, without this, a new task.

What to do with these facts (the back-off, the words shown) is the engine's business
(:mod:`imgsync.engine.remote_policy`); a success forgets the row (:meth:`Cache.put_url
<imgsync.store.cache.Cache.put_url>`).

Only the standard library is imported here: the cache-only answer of ``imgsync upload`` reads it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from imgsync.records import record
from imgsync.store.db import Database

__all__ = ["FAILED", "NOT_IMAGE", "PRIVATE_ADDRESS", "UrlAttempt", "UrlAttempts"]

# The kinds of a remembered failure.
FAILED = "failed"  # the URL could not be fetched, or gave no usable image
NOT_IMAGE = "not-image"  # what the URL serves is not an image: the link is left alone
PRIVATE_ADDRESS = "private-address"  # refused: its host is not public (upload.allow_private_urls)

_COLUMNS = "task_id, failures, reason, kind, last_try_ns, next_try_ns"


@record(frozen=True)
class UrlAttempt:
    """What the tries at one remote URL came to so far."""

    #: The offline task started for the URL and not settled yet, "" when none is known.
    task_id: str
    #: Failed tries in a row (0 when only a task is known).
    failures: int
    #: Why the last try failed, in words ("" when none did).
    reason: str
    #: What kind of failure that was: :data:`FAILED`, :data:`NOT_IMAGE`, :data:`PRIVATE_ADDRESS`.
    kind: str
    #: When the URL was last tried, and the earliest time to try it again (wall clock, ns).
    last_try_ns: int
    next_try_ns: int


class UrlAttempts:
    """The ``url_attempts`` rows of one namespace. Thread-safe, as the database is."""

    def __init__(self, db: Database, namespace: str, clock_ns: Callable[[], int]) -> None:
        self._db = db
        self._namespace = namespace
        self._clock_ns = clock_ns

    def get(self, url: str) -> UrlAttempt | None:
        """What is known of the tries at ``url``, or None (never tried, or it succeeded)."""
        row = self._db.one(
            f"SELECT {_COLUMNS} FROM url_attempts WHERE namespace = ? AND source_url = ?",
            (self._namespace, url),
        )
        if row is None:
            return None
        return UrlAttempt(*row)

    def started_task(self, url: str, task_id: str) -> None:
        """Remember the offline task just started for ``url`` (failures so far are kept)."""
        now = self._clock_ns()
        self._db.execute(
            f"INSERT INTO url_attempts (namespace, source_url, {_COLUMNS})"
            " VALUES (?, ?, ?, 0, '', '', ?, ?) ON CONFLICT (namespace, source_url) DO UPDATE SET"
            " task_id = excluded.task_id, last_try_ns = excluded.last_try_ns",
            (self._namespace, url, str(task_id), now, now),
        )

    def failed(
        self, url: str, reason: str, *, kind: str, backoff_ns: Callable[[int], int]
    ) -> UrlAttempt:
        """Record one more failed try at ``url``, of ``kind`` (its task, if any, is settled), and
        return the new state: ``backoff_ns(failures)`` is how long to wait before the next try."""
        now = self._clock_ns()
        result: list[UrlAttempt] = []

        def record(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT failures FROM url_attempts WHERE namespace = ? AND source_url = ?",
                (self._namespace, url),
            ).fetchone()
            failures = (row[0] if row else 0) + 1
            attempt = UrlAttempt("", failures, reason, kind, now, now + backoff_ns(failures))
            conn.execute(
                f"INSERT INTO url_attempts (namespace, source_url, {_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, source_url) DO UPDATE SET"
                " task_id = excluded.task_id, failures = excluded.failures,"
                " reason = excluded.reason, kind = excluded.kind,"
                " last_try_ns = excluded.last_try_ns, next_try_ns = excluded.next_try_ns",
                (
                    self._namespace,
                    url,
                    attempt.task_id,
                    attempt.failures,
                    attempt.reason,
                    attempt.kind,
                    attempt.last_try_ns,
                    attempt.next_try_ns,
                ),
            )
            result.append(attempt)

        self._db.write(record, transaction=True)
        return result[0]

    def forget(self, url: str) -> None:
        """Forget the tries at ``url`` (it succeeded, or the user asked)."""
        self._db.execute(
            "DELETE FROM url_attempts WHERE namespace = ? AND source_url = ?",
            (self._namespace, url),
        )
