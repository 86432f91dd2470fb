"""The client's parts that need no service: rate limiter, backoff, token store and provider, bodies.

Clock and sleep are injected (a fake clock that sleep advances), so timing is asserted exactly
instead of hoped for.
"""

from __future__ import annotations

import io
import json
import os
import random
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest

from imgsync.client.limiter import RateLimiter
from imgsync.client.session import reason
from imgsync.client.tokens import (
    EXPIRY_MARGIN,
    Token,
    TokenProvider,
    TokenStore,
    former_store_key,
    parse_expiry,
)
from imgsync.client.transport import (
    RetryPolicy,
    _body_factory,
    _LimitedReader,
)
from imgsync.config import AccountSettings
from imgsync.errors import AuthError, ItemError

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# ---- rate limiter -------------------------------------------------------------------------------


def test_rate_limiter_spaces_calls_per_key() -> None:
    t = FakeTime()
    limiter = RateLimiter({"list": 2, "detail": 5}, clock=t.clock, sleep=t.sleep)
    waits = [limiter.acquire("list") for _ in range(5)]
    assert waits == pytest.approx([0, 0.5, 0.5, 0.5, 0.5])
    # another key has its own schedule: no wait although "list" is booked ahead
    assert limiter.acquire("detail") == 0
    assert limiter.acquire("detail") == pytest.approx(0.2)


def test_rate_limiter_zero_and_unknown_keys_are_unlimited() -> None:
    t = FakeTime()
    limiter = RateLimiter({"list": 0}, clock=t.clock, sleep=t.sleep)
    for _ in range(10):
        limiter.acquire("list")
        limiter.acquire("not-configured")
        limiter.acquire(None)
    assert t.slept == []


def test_rate_limiter_idle_time_is_not_banked() -> None:
    t = FakeTime()
    limiter = RateLimiter({"list": 1}, clock=t.clock, sleep=t.sleep)
    limiter.acquire("list")
    t.now += 10  # idle for a while
    assert limiter.acquire("list") == 0
    assert limiter.acquire("list") == pytest.approx(1.0)  # no burst of 10 saved-up calls


def test_rate_limiter_never_sleeps_holding_a_lock_other_keys_need() -> None:
    """A thread sleeping for "list" must not block "detail" (nor another "list" booking)."""
    release = threading.Event()
    entered = threading.Event()

    def blocking_sleep(_seconds: float) -> None:
        entered.set()
        assert release.wait(5)

    clock_value = [0.0]
    limiter = RateLimiter(
        {"list": 1, "detail": 1}, clock=lambda: clock_value[0], sleep=blocking_sleep
    )
    limiter.acquire("list")  # books the slot at t=0; the next "list" must wait 1 s
    waiter = threading.Thread(target=limiter.acquire, args=("list",))
    waiter.start()
    assert entered.wait(5)  # the second "list" is now sleeping
    done = threading.Event()
    threading.Thread(target=lambda: (limiter.acquire("detail"), done.set())).start()
    assert done.wait(2), "detail was blocked by a sleeping list caller"
    release.set()
    waiter.join(5)


def test_rate_limiter_threads_share_one_schedule() -> None:
    t = FakeTime()
    lock = threading.Lock()
    limiter = RateLimiter({"create": 4}, clock=t.clock, sleep=lambda s: None)
    waits: list[float] = []

    def worker() -> None:
        w = limiter.acquire("create")
        with lock:
            waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # clock frozen: the 8 callers got the 8 distinct slots 0, 0.25, ..., 1.75
    assert sorted(waits) == pytest.approx([i * 0.25 for i in range(8)])


# ---- backoff ------------------------------------------------------------------------------------


def test_backoff_grows_jitters_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_initial=0.5, backoff_max=30.0)
    rng = random.Random(7)
    for failures in range(1, 12):
        step = min(30.0, 0.5 * 2 ** (failures - 1))
        delays = {policy.delay(failures, rng) for _ in range(50)}
        assert all(step / 2 <= d <= step for d in delays)
        assert len(delays) > 1  # jittered
    assert policy.delay(1, rng, retry_after=4.0) >= 4.0
    assert policy.delay(1, rng, retry_after=999.0) <= 30.0


# ---- token store --------------------------------------------------------------------------------


def account_key(base_url: str, client_id: str) -> str:
    return AccountSettings(base_url=base_url, client_id=client_id).key


def test_token_store_round_trip_is_private_and_keyed(tmp_path) -> None:
    store = TokenStore(tmp_path / "data")
    a = Token("tok-a", NOW + timedelta(days=30))
    b = Token("tok-b", NOW + timedelta(days=1))
    store.save(account_key("https://open-api.123pan.com/", "id1"), a)
    store.save(account_key("http://127.0.0.1:9", "id1"), b)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.load(account_key("https://open-api.123pan.com", "id1")) == a
    assert store.load(account_key("http://127.0.0.1:9", "id1")) == b
    assert store.load(account_key("https://open-api.123pan.com", "id2")) is None
    assert [p.name for p in (tmp_path / "data").iterdir() if p.name.endswith(".tmp")] == []


def test_token_store_tightens_a_loose_file(tmp_path) -> None:
    store = TokenStore(tmp_path)
    store.path.write_text("{}")
    os.chmod(store.path, 0o644)
    store.save("k", Token("t", NOW))
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"tokens": 5}',
        b'{"tokens": {"k": {"accessToken": "x"}}}',
        b'{"tokens": {"k": {"accessToken": "x", "expiredAt": "yesterday"}}}',
        b"\xff\xfe",
    ],
)
def test_corrupt_token_store_is_ignored_with_a_warning(tmp_path, caplog, content) -> None:
    store = TokenStore(tmp_path)
    store.path.write_bytes(content)
    with caplog.at_level("WARNING", logger="imgsync.client.tokens"):
        assert store.load("k") is None
    assert caplog.records, "a corrupt store must be reported"
    store.save("k", Token("fresh", NOW))  # and replaced without a crash
    assert store.load("k") == Token("fresh", NOW)


def test_parse_expiry() -> None:
    assert parse_expiry("2025-03-23T15:48:37+08:00") == datetime(2025, 3, 23, 7, 48, 37, tzinfo=UTC)
    assert parse_expiry("2025-03-23T07:48:37Z") == datetime(2025, 3, 23, 7, 48, 37, tzinfo=UTC)
    # no offset: the service's zone, China Standard Time
    assert parse_expiry("2025-03-23 15:48:37") == datetime(2025, 3, 23, 7, 48, 37, tzinfo=UTC)


def test_token_repr_hides_the_token() -> None:
    assert "sekrit" not in repr(Token("sekrit", NOW))


# ---- token provider -----------------------------------------------------------------------------


class Fetcher:
    def __init__(self, ttl: timedelta = timedelta(days=30)) -> None:
        self.calls = 0
        self.ttl = ttl
        self.lock = threading.Lock()

    def __call__(self) -> Token:
        with self.lock:
            self.calls += 1
            return Token(f"token-{self.calls}", NOW + self.ttl)


def provider(tmp_path, fetch, *, now=lambda: NOW, clock=None, pasted="") -> TokenProvider:
    t = clock or FakeTime().clock
    return TokenProvider(
        fetch=fetch, store=TokenStore(tmp_path), key="k", pasted=pasted, now=now, clock=t
    )


def test_provider_fetches_once_and_reuses_across_instances(tmp_path) -> None:
    fetch = Fetcher()
    assert provider(tmp_path, fetch).token() == "token-1"
    for _ in range(5):  # new runs, same data folder
        assert provider(tmp_path, fetch).token() == "token-1"
    assert fetch.calls == 1


def test_provider_renews_five_minutes_before_expiry(tmp_path) -> None:
    fetch = Fetcher(ttl=timedelta(hours=1))
    current = [NOW]
    p = provider(tmp_path, fetch, now=lambda: current[0])
    assert p.token() == "token-1"
    current[0] = NOW + timedelta(hours=1) - EXPIRY_MARGIN - timedelta(seconds=1)
    assert p.token() == "token-1"
    current[0] += timedelta(seconds=2)
    assert p.token() == "token-2"
    assert TokenStore(tmp_path).load("k").access_token == "token-2"


def test_provider_one_fetch_for_many_threads(tmp_path) -> None:
    fetch = Fetcher()
    p = provider(tmp_path, fetch)
    barrier = threading.Barrier(16)
    got: list[str] = []

    def worker() -> None:
        barrier.wait()
        got.append(p.token())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == ["token-1"] * 16
    assert fetch.calls == 1


def test_refresh_once_then_refuse_a_second_401_within_a_minute(tmp_path) -> None:
    fetch = Fetcher()
    t = FakeTime()
    p = provider(tmp_path, fetch, clock=t.clock)
    old = p.token()
    assert p.invalidate_and_refresh(old) == "token-2"
    # another thread that was refused with the old token just gets the new one
    assert p.invalidate_and_refresh(old) == "token-2"
    assert fetch.calls == 2
    t.now += 5
    with pytest.raises(AuthError):
        p.invalidate_and_refresh("token-2")
    assert fetch.calls == 2
    t.now += 60
    assert p.invalidate_and_refresh("token-2") == "token-3"


def test_refresh_adopts_a_token_another_process_stored(tmp_path) -> None:
    fetch = Fetcher()
    p = provider(tmp_path, fetch)
    old = p.token()
    TokenStore(tmp_path).save("k", Token("from-other-process", NOW + timedelta(days=30)))
    assert p.invalidate_and_refresh(old) == "from-other-process"
    assert fetch.calls == 1


def test_a_token_stored_under_the_former_key_is_used_and_moved(tmp_path) -> None:
    """Token files written before the one account key: their token is still good, and fetching a
    new one would use up one of the account's 3 slots."""
    fetch = Fetcher()
    old = former_store_key("https://open-api.123pan.com/", "id1")
    assert old == "https://open-api.123pan.com|id1"  # the spelling earlier versions wrote
    new = account_key("https://open-api.123pan.com/", "id1")
    store = TokenStore(tmp_path)
    store.save(old, Token("kept", NOW + timedelta(days=20)))
    store.save("someone-else", Token("theirs", NOW + timedelta(days=20)))
    p = TokenProvider(
        fetch=fetch,
        store=store,
        key=new,
        former_keys=[old],
        now=lambda: NOW,
        clock=FakeTime().clock,
    )
    assert p.stored() == Token("kept", NOW + timedelta(days=20))  # what login checks first
    assert p.token() == "kept"
    assert fetch.calls == 0
    tokens = json.loads(store.path.read_text())["tokens"]
    assert set(tokens) == {new, "someone-else"}  # moved, not copied; others untouched
    assert store.load(new) == Token("kept", NOW + timedelta(days=20))
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_an_expired_token_under_the_former_key_is_replaced_under_the_new_one(tmp_path) -> None:
    fetch = Fetcher()
    store = TokenStore(tmp_path)
    store.save("old", Token("stale", NOW - timedelta(days=1)))
    p = TokenProvider(
        fetch=fetch, store=store, key="new", former_keys=["old"], now=lambda: NOW, clock=lambda: 0
    )
    assert p.stored() is None
    assert p.token() == "token-1"
    assert set(json.loads(store.path.read_text())["tokens"]) == {"new"}


def test_pasted_token_is_used_as_is_and_never_refreshed(tmp_path) -> None:
    fetch = Fetcher()
    p = provider(tmp_path, fetch, pasted="pasted-tok")
    assert p.token() == "pasted-tok"
    with pytest.raises(AuthError, match="paste a new one"):
        p.invalidate_and_refresh("pasted-tok")
    assert fetch.calls == 0
    assert not TokenStore(tmp_path).path.exists()


# ---- slice bodies -------------------------------------------------------------------------------


def test_limited_reader_streams_exactly_length_bytes() -> None:
    source = io.BytesIO(b"abcdefghij")
    reader = _LimitedReader(source, 4)
    assert len(reader) == 4
    assert b"".join(reader) == b"abcd"
    assert source.tell() == 4


def test_limited_reader_refuses_a_short_source() -> None:
    reader = _LimitedReader(io.BytesIO(b"ab"), 4)
    with pytest.raises(ItemError, match="short"):
        b"".join(reader)


def test_body_factory_rewinds_a_seekable_file_for_each_attempt() -> None:
    f = io.BytesIO(b"xxHELLOyy")
    f.seek(2)
    make = _body_factory(f, 5)
    assert b"".join(make()) == b"HELLO"
    assert b"".join(make()) == b"HELLO"  # a retry starts the slice over


def test_body_factory_checks_bytes_length_and_types() -> None:
    assert _body_factory(b"abc", 3)() == b"abc"
    with pytest.raises(ValueError):
        _body_factory(b"abc", 4)
    with pytest.raises(TypeError):
        _body_factory(iter([b"a"]), 1)  # not seekable: a retry could not start over
    calls = []

    def opener():
        calls.append(1)
        return io.BytesIO(b"0123")

    make = _body_factory(opener, 4)
    assert b"".join(make()) == b"0123" and b"".join(make()) == b"0123" and len(calls) == 2


def test_network_reasons_drop_urls() -> None:
    import requests

    exc = requests.ConnectionError(
        "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: "
        "/p?X-Amz-Signature=abc "
        "(Caused by NewConnectionError('<x>: Failed to establish a new connection: "
        "[Errno 111] Connection refused'))"
    )
    assert reason(exc) == "[Errno 111] Connection refused"
    assert reason(requests.ReadTimeout("url ?sig=1")) == "read timeout"
    assert "sig" not in reason(requests.ConnectionError("weird ?sig=1"))


def test_store_file_is_json_with_version(tmp_path) -> None:
    store = TokenStore(tmp_path)
    store.save("k", Token("t", NOW))
    doc = json.loads(store.path.read_text())
    assert doc["version"] == 1 and doc["tokens"]["k"]["accessToken"] == "t"
