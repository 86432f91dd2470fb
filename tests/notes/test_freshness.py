"""Whether a note is as its last clean sync left it, and the stamps that say so, on real files and
a real cache (the sync tests cover the same through whole runs)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgsync.notes.freshness import NoteFreshness, content_digest, read_if_stable
from imgsync.store.cache import RACY_WINDOW_NS, Cache, NoteStamp

TEXT = b"# note\n\n![a](https://bed.example/a.png)\n"
LONG_AGO_NS = 1_000_000_000_000_000_000


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    with Cache.open(tmp_path / "data") as opened:
        yield opened


def write(path: Path, data: bytes = TEXT, *, mtime_ns: int = LONG_AGO_NS) -> Path:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def stamp(cache: Cache, note: Path, *, recorded_ns: int) -> None:
    """Stamp ``note`` as clean as a cache whose clock says ``recorded_ns`` would."""
    with Cache(cache.path, clock_ns=lambda: recorded_ns) as other:
        other.notes.put(note, NoteStamp.from_stat(note.stat(), content_digest(note.read_bytes())))


def freshness(cache: Cache | None, now_ns: int, *, record: bool = True) -> NoteFreshness:
    return NoteFreshness(cache, clock_ns=lambda: now_ns, record=record)


def test_a_note_with_a_trusted_stamp_is_unchanged_until_edited(
    tmp_path: Path, cache: Cache
) -> None:
    note = write(tmp_path / "n.md")
    stamp(cache, note, recorded_ns=LONG_AGO_NS + 2 * RACY_WINDOW_NS)
    assert freshness(cache, LONG_AGO_NS).unchanged(str(note))
    assert not freshness(cache, LONG_AGO_NS).unchanged(str(tmp_path / "other.md"))

    write(note, TEXT + b"edited\n")
    assert not freshness(cache, LONG_AGO_NS).unchanged(str(note))
    note.unlink()
    assert not freshness(cache, LONG_AGO_NS).unchanged(str(note))


@pytest.mark.parametrize("record", [True, False], ids=["run", "dry-run"])
def test_a_racy_stamp_is_proved_by_content_and_trusted_once_old(
    tmp_path: Path, cache: Cache, record: bool
) -> None:
    mtime = LONG_AGO_NS
    note = write(tmp_path / "n.md", mtime_ns=mtime)
    stamp(cache, note, recorded_ns=mtime + 1)  # right after the write: the stat cannot vouch
    assert not cache.notes.get(note).stat_trusted

    # Proved by content, but too soon after the write to trust the stat from now on.
    assert freshness(cache, mtime + RACY_WINDOW_NS - 1, record=record).unchanged(str(note))
    assert not cache.notes.get(note).stat_trusted
    # Old enough: stamped again and trusted (a dry run writes nothing).
    assert freshness(cache, mtime + RACY_WINDOW_NS, record=record).unchanged(str(note))
    assert cache.notes.get(note).stat_trusted is record


def test_a_racy_stamp_of_a_note_edited_in_the_same_tick_is_not_trusted(
    tmp_path: Path, cache: Cache
) -> None:
    note = write(tmp_path / "n.md")
    stamp(cache, note, recorded_ns=LONG_AGO_NS + 1)
    write(note, TEXT.replace(b"# note", b"# edit"))  # same size, same mtime
    assert not freshness(cache, LONG_AGO_NS + 2 * RACY_WINDOW_NS).unchanged(str(note))


def test_mark_clean_stamps_only_the_bytes_the_run_left(tmp_path: Path, cache: Cache) -> None:
    note = write(tmp_path / "n.md")
    fresh = freshness(cache, LONG_AGO_NS + 2 * RACY_WINDOW_NS)
    fresh.mark_clean(note, TEXT)
    assert cache.notes.get(note) == NoteStamp.from_stat(note.stat(), content_digest(TEXT))

    fresh.mark_clean(note, TEXT + b"what the run wrote, before the user's edit\n")
    assert cache.notes.get(note) is None
    fresh.mark_clean(note, TEXT)
    fresh.forget(note)
    assert cache.notes.get(note) is None
    fresh.mark_clean(tmp_path / "gone.md", TEXT)
    assert cache.notes.get(tmp_path / "gone.md") is None


def test_a_dry_run_writes_no_stamp_and_no_cache_knows_no_note(tmp_path: Path, cache: Cache) -> None:
    note = write(tmp_path / "n.md")
    dry = freshness(cache, LONG_AGO_NS, record=False)
    dry.mark_clean(note, TEXT)
    assert cache.notes.get(note) is None
    stamp(cache, note, recorded_ns=LONG_AGO_NS + 2 * RACY_WINDOW_NS)
    freshness(cache, LONG_AGO_NS, record=False).forget(note)
    assert cache.notes.get(note) is not None

    without = freshness(None, LONG_AGO_NS)
    assert not without.unchanged(str(note))
    without.mark_clean(note, TEXT)
    without.forget(note)


def test_read_if_stable(tmp_path: Path) -> None:
    note = write(tmp_path / "n.md")
    st = note.stat()
    assert read_if_stable(note, st) == TEXT
    write(note, TEXT + b"more\n")
    assert read_if_stable(note, st) is None
    assert read_if_stable(tmp_path / "gone.md", st) is None


@pytest.mark.parametrize("name", [b"n.md", "笔记.md".encode(), b"bad\xff name.md"])
def test_stamps_read_in_bulk_keep_every_name_trusted_or_racy(
    tmp_path: Path, cache: Cache, name: bytes
) -> None:
    # The stamps are read for the whole vault at once (one key per trusted stamp): a name
    # that is not UTF-8 (kept as bytes in the cache) and a racy stamp must come out right too.
    note = Path(os.fsdecode(bytes(tmp_path) + b"/" + name))
    racy = Path(os.fsdecode(bytes(tmp_path) + b"/racy-" + name))
    write(note)
    write(racy)
    stamp(cache, note, recorded_ns=LONG_AGO_NS + 2 * RACY_WINDOW_NS)
    stamp(cache, racy, recorded_ns=LONG_AGO_NS + 1)

    trusted, racy_stamps, _rechecks = cache.notes.walk_stamps()
    assert set(trusted) == {str(note)} and set(racy_stamps) == {str(racy)}
    fresh = freshness(cache, LONG_AGO_NS + 1)
    assert fresh.unchanged(str(note)) and fresh.unchanged(str(racy))
    os.utime(note, ns=(LONG_AGO_NS + 5, LONG_AGO_NS + 5))  # touched: not proved by its stat
    assert not freshness(cache, LONG_AGO_NS + 1).unchanged(str(note))


def test_only_the_stamps_below_the_paths_walked_are_read(tmp_path: Path, cache: Cache) -> None:
    # A sync of one note, or of one folder, in a big vault reads only the stamps it can use.
    vault = tmp_path / "vault"
    (vault / "sub").mkdir(parents=True)
    (vault / "sub0").mkdir()  # sorts right after "sub/": outside the range of sub
    notes = [write(vault / "a.md"), write(vault / "sub" / "b.md"), write(vault / "sub0" / "c.md")]
    for note in notes:
        stamp(cache, note, recorded_ns=LONG_AGO_NS + 2 * RACY_WINDOW_NS)

    def read_for(*under: Path) -> set[str]:
        trusted, _racy, _rechecks = cache.notes.walk_stamps([str(p) for p in under])
        return {Path(p).name for p in trusted}

    assert read_for() == {"a.md", "b.md", "c.md"}
    assert read_for(vault) == {"a.md", "b.md", "c.md"}
    assert read_for(vault / "sub") == {"b.md"}
    assert read_for(vault / "a.md") == {"a.md"}
    assert read_for(vault / "a.md", vault / "sub0") == {"a.md", "c.md"}
    fresh = NoteFreshness(cache, clock_ns=lambda: LONG_AGO_NS, under=[str(vault / "sub")])
    assert fresh.unchanged(str(notes[1])) and not fresh.unchanged(str(notes[0]))


def test_the_stamps_of_many_paths_given_are_all_read(tmp_path: Path, cache: Cache) -> None:
    # `imgsync sync *.md` of 600 notes, or a watcher's pass over 600 new notes: the paths are
    # read in several queries (sqlite refuses a compound SELECT of more than 500 terms), all of
    # them, and only them.
    notes = [write(tmp_path / f"n{n:03}.md") for n in range(600)]
    for note in notes:
        stamp(cache, note, recorded_ns=LONG_AGO_NS + 2 * RACY_WINDOW_NS)
    given = notes[:550]

    trusted, _racy, _rechecks = cache.notes.walk_stamps([str(p) for p in given])

    assert set(trusted) == {str(p) for p in given}
    fresh = NoteFreshness(cache, clock_ns=lambda: LONG_AGO_NS, under=[str(p) for p in given])
    assert all(fresh.unchanged(str(p)) for p in given)


def test_a_run_of_unchanged_notes_ends_at_the_first_one_unchanged_cannot_vouch_for_by_stat(
    tmp_path: Path, cache: Cache
) -> None:
    # unchanged_run decides a folder's notes in one loop: it must agree with unchanged() on the
    # notes it counts, and stop at every note that needs more than a stat.
    now = LONG_AGO_NS + 10 * RACY_WINDOW_NS
    names = ["a", "b", "edited", "c", "racy", "d", "never", "e", "gone", "f", "waiting", "g"]
    notes = {name: write(tmp_path / f"{name}.md") for name in names}
    for name, note in notes.items():
        if name == "racy":
            stamp(cache, note, recorded_ns=LONG_AGO_NS + 1)
        elif name == "waiting":
            with Cache(cache.path, clock_ns=lambda: now) as timed:
                NoteFreshness(timed, clock_ns=lambda: now).mark_clean(
                    note, TEXT, recheck_ns=now + 3600 * 10**9
                )
        elif name != "never":
            stamp(cache, note, recorded_ns=now)
    write(notes["edited"], TEXT + b"edited\n")
    notes["gone"].unlink()
    keys = [str(notes[name]) for name in names]
    with Cache(cache.path, clock_ns=lambda: now) as timed:
        fresh = NoteFreshness(timed, clock_ns=lambda: now)
        runs, start = [], 0
        while start < len(keys):
            run = fresh.unchanged_run(keys, start)
            runs.append(run)
            assert all(fresh.unchanged(key) for key in keys[start : start + run])
            start += run or 1
        # a b | edited | c | racy | d | never | e | gone | f | waiting | g
        assert runs == [2, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
        assert fresh.unchanged(str(notes["racy"])) and fresh.unchanged(str(notes["waiting"]))
        assert fresh.unchanged_run([]) == 0


def test_a_stamp_with_a_recheck_time_vouches_until_then(tmp_path: Path, cache: Cache) -> None:
    # A note whose only unfinished links are in back-off: clean until the first back-off ends.
    note = write(tmp_path / "n.md")
    plain = write(tmp_path / "plain.md")
    now = [LONG_AGO_NS + 2 * RACY_WINDOW_NS]
    until = now[0] + 3600 * 10**9
    with Cache(cache.path, clock_ns=lambda: now[0]) as timed:

        def fresh(**options: bool) -> NoteFreshness:
            return NoteFreshness(timed, clock_ns=lambda: now[0], **options)

        fresh().mark_clean(note, TEXT, recheck_ns=until)
        fresh().mark_clean(plain, TEXT)
        assert timed.notes.get(note).recheck_ns == until
        assert fresh().unchanged(str(note)) and fresh().unchanged(str(plain))
        # A run that retries failed links now trusts no stamp with a recheck time, due or not.
        retrying = fresh(with_rechecks=False)
        assert not retrying.unchanged(str(note)) and retrying.unchanged(str(plain))

        now[0] = until - 1
        assert fresh().unchanged(str(note))
        now[0] = until  # due: the note is read again
        assert not fresh().unchanged(str(note)) and fresh().unchanged(str(plain))


def test_a_racy_stamp_keeps_its_recheck_time_when_trusted_once_old(
    tmp_path: Path, cache: Cache
) -> None:
    mtime = LONG_AGO_NS
    note = write(tmp_path / "n.md", mtime_ns=mtime)
    now = [mtime + 1]  # right after the write: a racy stamp
    until = mtime + 3600 * 10**9
    with Cache(cache.path, clock_ns=lambda: now[0]) as timed:
        NoteFreshness(timed, clock_ns=lambda: now[0]).mark_clean(note, TEXT, recheck_ns=until)
        assert not timed.notes.get(note).stat_trusted

        now[0] = mtime + RACY_WINDOW_NS  # old enough: proved by content, stamped again
        assert NoteFreshness(timed, clock_ns=lambda: now[0]).unchanged(str(note))
        stamped = timed.notes.get(note)
        assert stamped.stat_trusted and stamped.recheck_ns == until
        now[0] = until
        assert not NoteFreshness(timed, clock_ns=lambda: now[0]).unchanged(str(note))


def test_the_stamps_read_for_a_walk_are_those_get_vouches_for(tmp_path: Path, cache: Cache) -> None:
    # walk_stamps reads every key at once and then the few odd stamps (racy, with a recheck time,
    # a name kept as bytes): each note must come out as get() sees it, once, in the right place.
    now = LONG_AGO_NS + 10 * RACY_WINDOW_NS
    later, due = now + 3600 * 10**9, now
    vault = tmp_path / "vault"
    vault.mkdir()
    outside = write(tmp_path / "outside.md")
    cases = {
        "trusted.md": (now, 0),
        "racy.md": (LONG_AGO_NS + 1, 0),
        "waiting.md": (now, later),
        "racy-waiting.md": (LONG_AGO_NS + 1, later),
        "due.md": (now, due),
        os.fsdecode(b"bad\xff.md"): (now, 0),
        os.fsdecode(b"racy-bad\xff.md"): (LONG_AGO_NS + 1, 0),
    }
    for name, (recorded_ns, recheck_ns) in cases.items():
        note = write(vault / name)
        with Cache(cache.path, clock_ns=itertools.repeat(recorded_ns).__next__) as at:
            digest = content_digest(note.read_bytes())
            at.notes.put(note, NoteStamp.from_stat(note.stat(), digest, recheck_ns=recheck_ns))
    stamp(cache, outside, recorded_ns=now)
    with Cache(cache.path, clock_ns=lambda: now) as timed:
        trusted, racy, rechecks = timed.notes.walk_stamps([str(vault)])
        for name in cases:
            key = str(vault / name)
            got = timed.notes.get(vault / name)
            assert (key in trusted) == (got is not None and got.stat_trusted), name
            assert (key in racy) == (got is not None and not got.stat_trusted), name
            assert rechecks.get(key, 0) == (got.recheck_ns if got is not None else 0), name
        assert str(outside) not in trusted
        assert set(rechecks) == {str(vault / n) for n in cases if cases[n][1] == later}

        trusted, racy, rechecks = timed.notes.walk_stamps([str(vault)], with_rechecks=False)
        assert {Path(p).name for p in [*trusted, *racy]} == {
            "trusted.md",
            "racy.md",
            *(os.fsdecode(b"bad\xff.md"), os.fsdecode(b"racy-bad\xff.md")),
        }
        assert rechecks == {}
