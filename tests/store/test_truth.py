"""What the index keeps so it stays true: when the service last vouched for an object, objects
rejected after the fact, reviews not ended yet, what was learned about the service, and a file of
the previous schema brought up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imgsync.store.cache import Cache, NoteStamp, RemoteObject, cache_path
from imgsync.store.schema import MIGRATIONS, SCHEMA_VERSION

MD5_A = "0123456789abcdef0123456789abcdef"
MD5_B = "fedcba9876543210fedcba9876543210"
MD5_C = "00112233445566778899aabbccddeeff"


def make_object(md5: str, file_id: str, status: int = 2) -> RemoteObject:
    return RemoteObject(
        md5=md5,
        size=10,
        file_id=file_id,
        download_url=f"https://vip.example/u/{file_id}.png",
        user_self_url="",
        status=status,
        filename=f"{md5}.png",
    )


class Clock:
    """A wall clock the test moves by hand (Unix nanoseconds)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000 * 10**9

    def __call__(self) -> int:
        return self.now


def test_each_object_says_when_the_service_last_vouched_for_it(tmp_path: Path) -> None:
    clock = Clock()
    with Cache(tmp_path / "c.db", clock_ns=clock) as cache:
        cache.put_object(make_object(MD5_A, "a"))
        first = cache.get_object(MD5_A, 10)
        assert first is not None and first.checked_ns == clock.now
        clock.now += 5 * 10**9
        cache.put_url("https://elsewhere.example/a.png", make_object(MD5_A, "a"))
        again = cache.get_url("https://elsewhere.example/a.png")
        assert again is not None and again.checked_ns == clock.now
        assert [o.checked_ns for o in cache.iter_objects()] == [clock.now]
        by_id = cache.get_object_by_file_id("a")
        assert by_id is not None and by_id.checked_ns == clock.now
    # When it was checked is not part of what the object is.
    assert first == again


def test_a_rejected_object_stays_known_and_forgets_the_note_stamps(tmp_path: Path) -> None:
    with (
        Cache(tmp_path / "c.db", namespace="acct") as cache,
        Cache(tmp_path / "c.db", namespace="other") as other,
    ):
        note = tmp_path / "a.md"
        stamp = NoteStamp(size=1, mtime_ns=1, inode=1, digest="d")
        cache.notes.put(note, stamp)
        other.notes.put(note, stamp)
        cache.put_object(make_object(MD5_A, "a"))

        cache.put_rejected(make_object(MD5_A, "a", status=150))
        known = cache.get_object(MD5_A, 10)
        assert known is not None and known.rejected and known.status == 150
        assert [o.file_id for o in cache.rejected_objects()] == ["a"]
        # Every clean note of the account may link to it: the next sync must read them again.
        assert cache.notes.all() == {}
        assert other.notes.get(note) == stamp  # another account's notes are not touched
        with pytest.raises(ValueError):
            cache.put_rejected(make_object(MD5_B, "b"))


def test_reviews_not_ended_yet_are_found(cache_file: Path) -> None:
    with Cache(cache_file) as cache:
        cache.put_object(make_object(MD5_A, "pending", status=0))
        cache.put_object(make_object(MD5_B, "passed", status=2))
        cache.put_object(make_object(MD5_C, "rejected", status=101))
        pending = cache.pending_review()
        assert [o.file_id for o in pending] == ["pending"]
        assert pending[0].review_pending and not pending[0].rejected
        assert [o.file_id for o in cache.rejected_objects()] == ["rejected"]


def test_service_facts_are_kept_per_account(cache_file: Path) -> None:
    with Cache(cache_file, namespace="a") as one, Cache(cache_file, namespace="b") as two:
        assert one.get_fact("mkdir.name") is None
        one.put_fact("mkdir.name", "list")
        assert one.get_fact("mkdir.name") == "list"
        assert two.get_fact("mkdir.name") is None
        one.put_fact("mkdir.name", "string")
        assert one.get_fact("mkdir.name") == "string"
        assert one.stats()["service_facts"] == 1
        one.clear()
        assert one.get_fact("mkdir.name") is None


def test_a_file_of_the_previous_schema_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = cache_path(tmp_path)
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO objects VALUES ('', ?, 10, 'old', 'https://vip.example/u/old.png', '', 2,"
        " 'old.png', 42)",
        (MD5_A,),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Cache.open(tmp_path) as cache:
        kept = cache.get_object(MD5_A, 10)
        assert kept is not None and kept.file_id == "old" and kept.checked_ns == 42
        cache.put_fact("mkdir.name", "list")
        assert cache.get_fact("mkdir.name") == "list"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "c.db"
