"""The memory of tries at remote URLs: tasks, failures, back-off times; real sqlite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from imgsync.store.attempts import FAILED, NOT_IMAGE
from imgsync.store.cache import Cache, NoteStamp, RemoteObject, UrlAttempt
from imgsync.store.schema import MIGRATIONS, SCHEMA_VERSION

URL = "https://dead.example/pic.png"
HOUR_NS = 3600 * 10**9


class Clock:
    def __init__(self, now_ns: int = 10**18) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def hours(failures: int) -> int:
    return failures * HOUR_NS


def test_failures_count_up_and_a_task_is_settled_by_a_failure(tmp_path: Path) -> None:
    clock = Clock()
    with Cache.open(tmp_path, namespace="acct", clock_ns=clock) as cache:
        assert cache.attempts.get(URL) is None
        cache.attempts.started_task(URL, "403316")
        assert cache.attempts.get(URL) == UrlAttempt("403316", 0, "", "", clock(), clock())

        first = cache.attempts.failed(
            URL, "could not resolve dead.example", kind=FAILED, backoff_ns=hours
        )
        assert first == UrlAttempt(
            "", 1, "could not resolve dead.example", FAILED, clock(), clock() + HOUR_NS
        )
        clock.now_ns += 5 * HOUR_NS
        second = cache.attempts.failed(
            URL, "not an image: text/html", kind=NOT_IMAGE, backoff_ns=hours
        )
        assert (second.failures, second.kind, second.task_id) == (2, NOT_IMAGE, "")
        assert second.next_try_ns == clock() + 2 * HOUR_NS
        assert cache.attempts.get(URL) == second


def test_a_new_task_keeps_the_failures_so_far(tmp_path: Path) -> None:
    with Cache.open(tmp_path, clock_ns=Clock()) as cache:
        cache.attempts.failed(URL, "gone", kind=FAILED, backoff_ns=hours)
        cache.attempts.started_task(URL, "7")
        found = cache.attempts.get(URL)
        assert found is not None and (found.task_id, found.failures, found.reason) == (
            "7",
            1,
            "gone",
        )


def test_a_success_forgets_the_failures(tmp_path: Path) -> None:
    obj = RemoteObject(
        "0123456789abcdef0123456789abcdef", 5, "f1", "https://b/u/f1.png", "", 2, "x"
    )
    with Cache.open(tmp_path, clock_ns=Clock()) as cache:
        cache.attempts.failed(URL, "gone", kind=FAILED, backoff_ns=hours)
        cache.put_url(URL, obj)
        assert cache.attempts.get(URL) is None
        assert cache.get_url(URL) == obj


def test_accounts_do_not_share_their_attempts(tmp_path: Path) -> None:
    with Cache.open(tmp_path, namespace="a") as a, Cache.open(tmp_path, namespace="b") as b:
        a.attempts.failed(URL, "gone", kind=FAILED, backoff_ns=hours)
        assert b.attempts.get(URL) is None
        assert a.stats()["url_attempts"] == 1 and b.stats()["url_attempts"] == 0
        a.clear()
        assert a.attempts.get(URL) is None


def test_a_cache_of_the_first_schema_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO folders (namespace, key, folder_id, recorded_ns) VALUES ('n', 'k', 'f', 1)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Cache(path, namespace="n") as cache:
        assert cache.get_folder("k") == "f"
        cache.attempts.started_task(URL, "1")
        assert cache.attempts.get(URL) is not None
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_note_stamp_can_vouch_until_a_time(tmp_path: Path) -> None:
    """A note whose dead links are in their back-off is skipped unread until the back-off ends."""
    clock = Clock()
    note = tmp_path / "n.md"
    until = clock() + HOUR_NS
    with Cache.open(tmp_path, namespace="acct", clock_ns=clock) as cache:
        cache.notes.put(note, NoteStamp(1, 2, 3, "d", recheck_ns=until))
        cache.notes.put(tmp_path / "plain.md", NoteStamp(1, 2, 3, "d"))
        assert cache.notes.get(note) is not None and cache.notes.get(note).recheck_ns == until
        assert set(cache.notes.all()) == {str(note), str(tmp_path / "plain.md")}
        clock.now_ns = until
        assert cache.notes.get(note) is None
        assert set(cache.notes.all()) == {str(tmp_path / "plain.md")}
