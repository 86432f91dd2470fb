"""The local index: real sqlite files in tmp_path, real threads, real concurrent processes."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from imgsync.config import AccountSettings
from imgsync.errors import EXIT_USAGE, CacheError, ImgsyncError
from imgsync.store import cache as cache_module
from imgsync.store import db as db_module
from imgsync.store.cache import (
    CACHE_FILE_NAME,
    RACY_WINDOW_NS,
    Cache,
    CacheBusy,
    CacheCorrupt,
    NoteStamp,
    RemoteObject,
    cache_path,
    remove_cache_files,
)
from imgsync.store.schema import ODD_NOTE_STAMPS, SCHEMA_VERSION, TABLES
from imgsync.store.stamps import is_racy

MD5_A = "0123456789abcdef0123456789abcdef"
MD5_B = "fedcba9876543210fedcba9876543210"
HOUR_NS = 3600 * 10**9

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def make_object(
    md5: str = MD5_A, size: int = 10, file_id: str = "fid-1", **changes
) -> RemoteObject:
    fields = dict(
        md5=md5,
        size=size,
        file_id=file_id,
        download_url=f"https://vip.example/u/{file_id}.png",
        user_self_url="",
        status=2,
        filename=f"{md5}.png",
    )
    fields.update(changes)
    return RemoteObject(**fields)


def old_file(path: Path, content: bytes = b"image bytes") -> os.stat_result:
    """A file last modified an hour ago, so its stat stamp is not racy under the real clock."""
    path.write_bytes(content)
    an_hour_ago = time.time_ns() - HOUR_NS
    os.utime(path, ns=(an_hour_ago, an_hour_ago))
    return path.stat()


@pytest.fixture
def cache(tmp_path: Path):
    with Cache.open(tmp_path / "data", namespace="https://emu#demo") as opened:
        yield opened


# -- objects


def test_object_round_trip_and_md5_spelling(cache: Cache) -> None:
    obj = make_object(md5=MD5_A.upper())
    cache.put_object(obj)
    assert obj.md5 == MD5_A  # one spelling, or lookups would miss
    assert cache.get_object(MD5_A, 10) == obj
    assert cache.get_object(MD5_A.upper(), 10) == obj
    assert cache.get_object(MD5_A, 11) is None  # size is part of the key
    assert cache.get_object(MD5_B, 10) is None


def test_link_folders_are_where_the_accounts_links_live(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.sqlite3", namespace="a") as mine:
        mine.put_object(make_object(file_id="x1"))
        mine.put_object(make_object(md5="b" * 32, file_id="x2", user_self_url="https://me.cn/p/x2"))
        with Cache(tmp_path / "c.sqlite3", namespace="b") as other:
            other.put_object(make_object(download_url="https://elsewhere.example/v/1.png"))
        assert mine.link_folders() == {"https://vip.example/u/", "https://me.cn/p/"}


def test_put_object_replaces(cache: Cache) -> None:
    cache.put_object(make_object(status=0))
    cache.put_object(make_object(status=150, file_id="fid-2"))
    got = cache.get_object(MD5_A, 10)
    assert got is not None and got.file_id == "fid-2" and got.rejected
    assert cache.stats()["objects"] == 1


def test_remote_object_validates_md5_and_size() -> None:
    with pytest.raises(ValueError, match="md5"):
        make_object(md5="not-a-digest")
    with pytest.raises(ValueError, match="size"):
        make_object(size=-1)
    assert not make_object(status=100).rejected
    assert make_object(status=101).rejected


def test_namespaces_do_not_mix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    emulator = AccountSettings("http://127.0.0.1:5000/", "demo").key
    real = AccountSettings("https://open-api.123pan.com", "my-client").key
    with Cache.open(data, namespace=emulator) as emu, Cache.open(data, namespace=real) as acct:
        emu.put_object(make_object())
        emu.put_url("https://example.com/a.png", make_object())
        emu.put_folder("imgsync/2024", "folder-emu")
        emu.notes.put(tmp_path / "n.md", NoteStamp(1, 2, 3, "d"))
        assert acct.get_object(MD5_A, 10) is None
        assert acct.get_url("https://example.com/a.png") is None
        assert acct.get_folder("imgsync/2024") is None
        assert acct.notes.get(tmp_path / "n.md") is None
        assert emu.get_object(MD5_A, 10) is not None
        assert acct.stats()["namespaces"] == 1


def test_forget_object_also_forgets_its_urls(cache: Cache) -> None:
    cache.put_url("https://example.com/a.png", make_object())
    cache.put_object(make_object(md5=MD5_B, file_id="fid-b"))
    cache.forget_object(MD5_A)
    assert cache.get_object(MD5_A, 10) is None
    assert cache.get_url("https://example.com/a.png") is None
    assert cache.stats()["urls"] == 0
    assert cache.get_object(MD5_B, 10) is not None


def test_forget_file_id(cache: Cache) -> None:
    cache.put_object(make_object(file_id="gone"))
    cache.forget_file_id("gone")
    cache.forget_file_id("never-known")
    assert cache.get_object(MD5_A, 10) is None


def test_object_by_file_id(cache: Cache) -> None:
    obj = make_object(file_id="known")
    cache.put_object(obj)
    assert cache.get_object_by_file_id("known") == obj
    assert cache.get_object_by_file_id("unknown") is None
    other = Cache(cache.path, namespace="another account")
    try:
        assert other.get_object_by_file_id("known") is None
    finally:
        other.close()


def test_put_objects_writes_all_in_one_go(cache: Cache) -> None:
    objects = [make_object(md5=f"{n:032x}", file_id=f"f{n}") for n in range(50)]
    assert cache.put_objects(iter(objects)) == 50
    assert set(cache.iter_objects()) == set(objects)
    # Replacing, as put_object does.
    assert cache.put_objects([make_object(md5=f"{0:032x}", file_id="f0-new")]) == 1
    assert cache.get_object(f"{0:032x}", 10).file_id == "f0-new"


def test_put_objects_is_all_or_nothing(cache: Cache) -> None:
    def objects():
        yield make_object(md5=MD5_A, file_id="first")
        raise RuntimeError("the listing failed half-way")

    with pytest.raises(RuntimeError):
        cache.put_objects(objects())
    assert cache.get_object(MD5_A, 10) is None


def test_iter_objects_pages_through_everything(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "ITER_BATCH", 3)
    expected = set()
    for n in range(10):
        obj = make_object(md5=f"{n:032x}", size=n % 2, file_id=f"f{n}")
        cache.put_object(obj)
        expected.add(obj)
    cache.put_object(make_object(md5=f"{3:032x}", size=7, file_id="same-md5-other-size"))
    expected.add(make_object(md5=f"{3:032x}", size=7, file_id="same-md5-other-size"))
    walked = list(cache.iter_objects())
    assert len(walked) == len(expected) == 11
    assert set(walked) == expected


# -- file hashes


def test_file_md5_hit_when_unchanged(cache: Cache, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    st = old_file(image)
    assert cache.get_file_md5(image, st) is None
    cache.put_file_md5(image, st, MD5_A)
    assert cache.get_file_md5(image, image.stat()) == MD5_A
    # Another spelling of the same path hits too.
    assert cache.get_file_md5(tmp_path / "sub" / ".." / "a.png", image.stat()) == MD5_A


def test_file_md5_miss_after_changes(cache: Cache, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    st = old_file(image, b"one")
    cache.put_file_md5(image, st, MD5_A)

    old_file(image, b"two!")  # other size
    assert cache.get_file_md5(image, image.stat()) is None

    st = old_file(image, b"one")
    cache.put_file_md5(image, st, MD5_A)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))  # other mtime
    assert cache.get_file_md5(image, image.stat()) is None

    st = old_file(image, b"one")
    cache.put_file_md5(image, st, MD5_A)
    replacement = tmp_path / "new.png"
    old_file(replacement, b"one")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, image)  # same size and mtime, other inode and ctime
    assert image.stat().st_ino != st.st_ino
    assert cache.get_file_md5(image, image.stat()) is None


def test_file_md5_with_restored_mtime_is_caught_by_ctime(cache: Cache, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    st = old_file(image, b"abc")
    cache.put_file_md5(image, st, MD5_A)
    time.sleep(0.02)
    image.write_bytes(b"xyz")  # same size, same inode
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back, as `touch -r` would
    now = image.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert cache.get_file_md5(image, now) is None


def test_racy_file_stamp_is_not_trusted(tmp_path: Path) -> None:
    image = tmp_path / "fresh.png"
    image.write_bytes(b"just written")
    st = image.stat()
    clock = [st.st_mtime_ns + RACY_WINDOW_NS // 2]
    with Cache(tmp_path / "c.sqlite3", clock_ns=lambda: clock[0]) as cache:
        cache.put_file_md5(image, st, MD5_A)
        assert cache.get_file_md5(image, st) is None  # could change again unseen: hash again
        clock[0] = st.st_mtime_ns + RACY_WINDOW_NS + 1
        cache.put_file_md5(image, st, MD5_A)  # hashed again later: now trusted
        assert cache.get_file_md5(image, st) == MD5_A


# -- urls, folders, notes


def test_url_round_trip(cache: Cache) -> None:
    source = "https://example.com/img/a%20b.png?x=1"
    cache.put_url(source, make_object())
    assert cache.get_url(source) == make_object()
    assert cache.get_object(MD5_A, 10) == make_object()  # the object is remembered too
    assert cache.get_url("https://example.com/img/other.png") is None
    cache.put_url(source, make_object(md5=MD5_B, file_id="fid-b"))
    got = cache.get_url(source)
    assert got is not None and got.md5 == MD5_B


def test_folders(cache: Cache) -> None:
    cache.put_folder("http://h#imgsync/2024/05", "id-1")
    cache.put_folder("http://h#imgsync/2024/06", "id-2")
    assert cache.get_folder("http://h#imgsync/2024/05") == "id-1"
    cache.put_folder("http://h#imgsync/2024/05", "id-1b")
    assert cache.get_folder("http://h#imgsync/2024/05") == "id-1b"
    cache.forget_folder("http://h#imgsync/2024/05")
    assert cache.get_folder("http://h#imgsync/2024/05") is None
    assert cache.get_folder("http://h#imgsync/2024/06") == "id-2"
    cache.forget_folders()
    assert cache.stats()["folders"] == 0


def test_note_stamp_round_trip(cache: Cache, tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    st = old_file(note, b"# title\n")
    stamp = NoteStamp.from_stat(st, "digest-1")
    cache.notes.put(note, stamp)
    got = cache.notes.get(note)
    assert got == stamp and got.stat_trusted
    assert got.matches_stat(note.stat())
    note.write_bytes(b"# title!\n")
    assert not got.matches_stat(note.stat())
    cache.notes.forget(note)
    assert cache.notes.get(note) is None


def test_note_stamps_in_one_query_match_get_note(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    notes = [tmp_path / f"n{i}.md" for i in range(3)]
    with Cache(db, namespace="a") as mine, Cache(db, namespace="b") as other:
        for i, note in enumerate(notes):
            mine.notes.put(note, NoteStamp.from_stat(old_file(note, b"x" * i), f"d{i}"))
        other.notes.put(notes[0], NoteStamp.from_stat(notes[0].stat(), "other"))
        stamps = mine.notes.all()
        assert set(stamps) == {os.path.abspath(n) for n in notes}
        for note in notes:
            got = stamps[os.path.abspath(note)]
            assert got == mine.notes.get(note)
            assert got.stat_trusted == mine.notes.get(note).stat_trusted
        assert other.notes.all()[os.path.abspath(notes[0])].digest == "other"


def test_note_written_just_before_its_stamp_needs_the_digest(tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_bytes(b"rewritten by sync a moment ago\n")
    st = note.stat()
    with Cache(tmp_path / "c.sqlite3", clock_ns=lambda: st.st_mtime_ns + 1000) as cache:
        cache.notes.put(note, NoteStamp.from_stat(st, "digest-1"))
        got = cache.notes.get(note)
    assert got is not None and not got.stat_trusted
    assert not got.matches_stat(st)  # the caller must compare digests instead
    assert got.digest == "digest-1"


def test_the_odd_stamps_index_holds_what_the_racy_rule_calls_racy(tmp_path: Path) -> None:
    # Migration 4 indexes the odd stamps by a condition written out once; it must say "racy" as
    # is_racy does (RACY_WINDOW_NS), and the walk finds them through the index (INDEXED BY fails
    # outright if sqlite cannot use it for the query).
    assert f"recorded_ns - mtime_ns < {RACY_WINDOW_NS} OR" in ODD_NOTE_STAMPS
    note = tmp_path / "note.md"
    st = old_file(note, b"x")
    for recorded_ns, racy in (
        (st.st_mtime_ns + RACY_WINDOW_NS - 1, True),
        (st.st_mtime_ns + RACY_WINDOW_NS, False),
    ):
        with Cache(tmp_path / "c.sqlite3", clock_ns=lambda r=recorded_ns: r) as cache:
            cache.notes.put(note, NoteStamp.from_stat(st, "d"))
            trusted, odd, _rechecks = cache.notes.walk_stamps()
            assert (str(note) in odd, str(note) in trusted) == (racy, not racy)
            assert is_racy(st.st_mtime_ns, recorded_ns) is racy


# -- stats, clear, life cycle


def test_stats_and_clear(cache: Cache, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    cache.put_file_md5(image, old_file(image), MD5_A)
    cache.put_url("https://e/x.png", make_object())
    cache.put_folder("k", "f")
    cache.notes.put(tmp_path / "n.md", NoteStamp(1, 2, 3, "d"))
    stats = cache.stats()
    assert {k: stats[k] for k in ("objects", "file_hashes", "urls", "folders", "notes")} == {
        "objects": 1,
        "file_hashes": 1,
        "urls": 1,
        "folders": 1,
        "notes": 1,
    }
    assert stats["bytes"] > 0
    cache.clear()
    stats = cache.stats()
    assert all(stats[table] == 0 for table in TABLES)


def test_closed_cache_refuses_use(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite3")
    cache.close()
    with pytest.raises(ValueError, match="closed"):
        cache.get_object(MD5_A, 1)


def test_reopen_keeps_data(tmp_path: Path) -> None:
    with Cache.open(tmp_path) as first:
        first.put_object(make_object())
    with Cache.open(tmp_path) as second:
        assert second.get_object(MD5_A, 10) == make_object()
    assert cache_path(tmp_path) == tmp_path / CACHE_FILE_NAME


# -- files on disk


@posix_only
def test_files_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        with Cache.open(tmp_path / "new" / "data") as cache:
            cache.put_object(make_object())
            db = cache.path
            modes = {
                suffix: stat.S_IMODE(os.stat(f"{db}{suffix}").st_mode)
                for suffix in ("", "-wal", "-shm")
            }
            dir_mode = stat.S_IMODE(db.parent.stat().st_mode)
    finally:
        os.umask(old_umask)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    assert dir_mode == 0o700


@posix_only
def test_existing_loose_file_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with Cache(db):
        pass
    db.chmod(0o644)
    with Cache(db):
        pass
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def assert_not_open(path: Path) -> None:
    """A failed open must leave nothing open on the file, or `cache clear` could not remove it on
    Windows."""
    if not Path("/proc/self/fd").is_dir():
        return
    open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    assert str(path.resolve()) not in open_files


def test_garbage_file_is_reported_as_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    db.write_bytes(b"this is not sqlite " * 500)
    with pytest.raises(CacheCorrupt) as caught:
        Cache(db)
    error = caught.value
    assert isinstance(error, ImgsyncError) and error.exit_code == EXIT_USAGE
    # It names the file and the command that clears it.
    assert "damaged" in str(error) and str(db) in str(error)
    assert "run `imgsync cache clear`" in str(error)
    assert_not_open(db)
    # The way out: remove the files, start again.
    assert db in remove_cache_files(db)
    with Cache(db) as fresh:
        assert fresh.get_object(MD5_A, 1) is None


def test_damaged_page_found_later_is_reported_as_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with Cache(db) as cache:
        for n in range(300):
            cache.put_object(make_object(md5=f"{n:032x}", file_id=f"file-{n}" * 5))
    page_size = 4096
    data = bytearray(db.read_bytes())
    assert len(data) > 4 * page_size
    for offset in range(page_size, len(data), page_size):  # keep the header page, smash the rest
        data[offset : offset + page_size] = b"\xa5" * page_size
    db.write_bytes(bytes(data))
    with pytest.raises(CacheCorrupt, match="imgsync cache clear"), Cache(db) as cache:
        cache.get_object(f"{5:032x}", 10)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with Cache(db):
        pass
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(CacheCorrupt, match="newer imgsync.*imgsync cache clear"):
        Cache(db)
    assert_not_open(db)


def test_unusable_location_is_a_cache_error(tmp_path: Path) -> None:
    (tmp_path / "a-directory.sqlite3").mkdir()
    with pytest.raises(CacheError, match="cannot create the cache"):
        Cache(tmp_path / "a-directory.sqlite3")


# -- concurrency


def test_many_threads_share_one_cache(cache: Cache) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(100):
                md5 = f"{worker:016x}{n:016x}"
                cache.put_object(make_object(md5=md5, file_id=f"{worker}-{n}"))
                assert cache.get_object(md5, 10) is not None
                cache.put_folder(f"w{worker}", str(n))
        except BaseException as exc:  # reported below, with the thread's traceback lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert cache.stats()["objects"] == 800
    assert cache.get_folder("w3") == "99"


WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from imgsync.store.cache import Cache, RemoteObject

    db, worker, start_at = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    time.sleep(max(0.0, start_at - time.time()))  # all workers open the fresh file together
    with Cache(db, namespace="shared") as cache:
        for n in range(150):
            md5 = f"{worker:016x}{n:016x}"
            cache.put_object(RemoteObject(md5, n, f"{worker}-{n}", "u", "", 2, "f.png"))
            cache.put_url(f"https://e/{worker}/{n}", cache.get_object(md5, n))
            cache.put_folder("shared-folder", f"{worker}-{n}")
            for other in range(4):  # read what the others wrote so far
                cache.get_object(f"{other:016x}{n:016x}", n)
        print(cache.stats()["objects"])
    """
)


def test_processes_share_one_file_without_locking_errors(tmp_path: Path) -> None:
    db = tmp_path / "shared" / "cache.sqlite3"
    start_at = time.time() + 1.0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(worker), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for worker in range(4)
    ]
    results = [worker.communicate(timeout=60) for worker in workers]
    for worker, (_out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert "locked" not in err
    with Cache(db, namespace="shared") as cache:
        stats = cache.stats()
        assert stats["objects"] == 600 and stats["urls"] == 600
        assert cache.get_url("https://e/2/149") is not None


def test_writer_waits_for_another_process_lock(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    with Cache(db) as cache:
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
        release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
        release.start()
        started = time.monotonic()
        cache.put_folder("k", "v")  # waits instead of failing with "database is locked"
        waited = time.monotonic() - started
        release.join()
        holder.close()
        assert cache.get_folder("k") == "v"
        assert waited >= 0.2


def test_lock_held_too_long_is_cache_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_S", 0.1)
    db = tmp_path / "c.sqlite3"
    with Cache(db) as cache:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(CacheBusy, match="locked by another imgsync process") as caught:
                cache.put_folder("k", "v")
            assert caught.value.retryable
            assert cache.get_folder("k") is None  # readers are not blocked by the writer (WAL)
        finally:
            holder.execute("ROLLBACK")
            holder.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open descriptors via /proc")
def test_short_lived_threads_do_not_leak_connections(cache: Cache) -> None:
    """A watcher runs a fresh thread pool for every change: connections of finished threads must
    be closed, or file descriptors run out after a few hundred syncs."""

    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    def use_cache() -> None:
        cache.get_object(MD5_A, 10)

    use_cache()
    before = open_descriptors()
    for _ in range(40):
        thread = threading.Thread(target=use_cache)
        thread.start()
        thread.join()
    assert open_descriptors() - before <= 4  # the last thread's connection, at most


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_opens_its_own_connection(cache: Cache) -> None:
    cache.put_object(make_object())
    parent_connection = cache._db._conn()
    pid = os.fork()
    if pid == 0:  # the child: must not touch the parent's sqlite handle
        code = 1
        try:
            cache.put_folder("from-child", "c")
            if cache._db._conn() is parent_connection:
                code = 3
            else:
                code = 0 if cache.get_object(MD5_A, 10) == make_object() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get_folder("from-child") == "c"
    cache.put_folder("from-parent", "p")  # the parent's connection still works
    assert cache.get_folder("from-parent") == "p"


def test_paths_with_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    """A name from an old system (Latin-1 bytes) is a key like any other, and never the same key
    as a text name that merely spells those bytes out."""
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png"))
    spelled = tmp_path / "caf\\xe9.png"
    with Cache(tmp_path / "c.sqlite3", namespace="n") as cache:
        st = old_file(odd, b"image bytes")
        cache.put_file_md5(odd, st, "a" * 32)
        assert cache.get_file_md5(odd, st) == "a" * 32
        assert cache.get_file_md5(spelled, old_file(spelled, b"image bytes")) is None
        note = Path(os.fsdecode(os.fsencode(tmp_path) + b"/not\xffe.md"))
        stamp = NoteStamp.from_stat(old_file(note, b"# x\n"), "d")
        cache.notes.put(note, stamp)
        assert cache.notes.get(note) == stamp
        assert cache.notes.all()[os.path.abspath(note)] == stamp
