"""Access tokens: the on-disk store, and the provider that hands out a valid one.

Why a store at all: the service keeps at most 3 live tokens per client id and silently logs out the
oldest when a 4th is issued, and a token lives 30 days. A tool that fetched a token per run would
log the user out of their other apps within three runs. So a token is fetched once, written to
``<data_dir>/token.json`` (mode 0600, atomic replace) and reused, by every run and every process,
until 5 minutes before its ``expiredAt``.

Entries are keyed by the account key (:attr:`imgsync.config.AccountSettings.key`: base URL and
client id), so pointing imgsync at the emulator or at another account never sends a token to a
service that did not issue it. Versions before the key was one spelled it ``<base_url>|<client_id>``
(:func:`former_store_key`); a token stored that way is still found, used, and moved under the
account key, since fetching a new one would cost one of the 3 slots. A cross-process file lock
serialises "load, maybe fetch, save", so two editors pasting at once still cause one fetch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from imgsync.errors import AuthError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a rare extra fetch is the cost
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TOKEN_FILE = "token.json"
LOCK_FILE = "token.lock"
STORE_VERSION = 1
# The token file is readable by its owner only.
TOKEN_FILE_MODE = 0o600
# A data folder we create holds the token: only its owner may list or enter it.
DATA_DIR_MODE = 0o700
# The lock file guards nothing secret, but nobody else has a reason to open it either.
LOCK_FILE_MODE = 0o600

# Renew this long before expiredAt: a token that expires during a long sync would fail requests
# mid-run, and clocks of client and service may disagree by a little.
EXPIRY_MARGIN = timedelta(minutes=5)

# A token refreshed because of a 401 that is refused again within this long means the credentials or
# the account are the problem, not the token: stop instead of burning through the 3-token cap.
MIN_REFRESH_INTERVAL = 60.0

# expiredAt without an offset is read as China Standard Time, the service's zone.
SERVICE_TZ = timezone(timedelta(hours=8))

# A pasted token has no known expiry (we do not decode JWTs): it is used until the service refuses
# it, and reported as valid "forever".
NO_EXPIRY = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Token:
    """An access token and when it stops working. The token text is kept out of ``repr``."""

    access_token: str = field(repr=False)
    expired_at: datetime

    def valid_at(self, now: datetime) -> bool:
        """True while ``now`` is more than :data:`EXPIRY_MARGIN` before expiry."""
        return self.expired_at - EXPIRY_MARGIN > now


def parse_expiry(text: str) -> datetime:
    """Read ``expiredAt`` (RFC 3339, e.g. ``2025-03-23T15:48:37+08:00``) as an aware datetime."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=SERVICE_TZ)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def former_store_key(base_url: str, client_id: str) -> str:
    """How the store keyed an account before :attr:`~imgsync.config.AccountSettings.key` was the
    one account key: ``<base_url>|<client_id>``. Only read, to move such an entry; never written.
    """
    return f"{base_url.rstrip('/')}|{client_id}"


class TokenStore:
    """``<data_dir>/token.json``: tokens by account key, readable by the owner only.

    A file that cannot be read or parsed is ignored with a warning (and replaced at the next save):
    losing a cached token costs one fetch, a crash would cost the run.
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / TOKEN_FILE

    def load(self, key: str) -> Token | None:
        """The stored token for ``key``, or None (missing, unreadable or corrupt)."""
        entry = self._read_all().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return Token(str(entry["accessToken"]), parse_expiry(str(entry["expiredAt"])))
        except (KeyError, ValueError) as exc:
            log.warning("ignoring a malformed entry in %s (%s)", self.path, type(exc).__name__)
            return None

    def save(self, key: str, token: Token, *, replacing: str | None = None) -> None:
        """Store ``token`` under ``key``, keeping other accounts' entries; atomic and 0600.

        ``replacing`` names an entry to drop in the same write (the key it was stored under before).
        """
        tokens = self._read_all()
        if replacing is not None:
            tokens.pop(replacing, None)
        tokens[key] = {
            "accessToken": token.access_token,
            "expiredAt": token.expired_at.isoformat(),
        }
        payload = json.dumps({"version": STORE_VERSION, "tokens": tokens}, indent=2).encode()
        self.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        # Created 0600 from the first moment (never chmod-ed after the fact: the token would be
        # readable in between); O_EXCL with a unique name; os.replace makes the new content
        # appear all at once, so a reader sees the old file or the new one, never half of one.
        tmp = self.data_dir / f".token.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, TOKEN_FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's cross-process lock (a no-op where ``fcntl`` does not exist)."""
        if fcntl is None:
            yield
            return
        self.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, LOCK_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read_all(self) -> dict[str, object]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("cannot read %s (%s); ignoring it", self.path, exc.strerror)
            return {}
        try:
            doc = json.loads(raw)
            tokens = doc["tokens"]
            if not isinstance(tokens, dict):
                raise TypeError("tokens is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring corrupt token store %s (%s)", self.path, type(exc).__name__)
            return {}
        return tokens


class TokenProvider:
    """Hands out a valid bearer token: the cached or stored one while fresh, else a fetched one.

    ``fetch`` asks the service for a new token (:meth:`imgsync.client.auth.TokenIssuer.issue`).
    ``key`` is the account key; ``former_keys`` are keys the same account's token may have been
    stored under by earlier versions (moved to ``key`` when found). With ``pasted`` set, that
    token is used as is and never refreshed: a 401 then means the user must paste a new one.

    Thread-safe. One fetch at a time per process (a lock) and across processes (the store's file
    lock); a thread whose token was already replaced by another thread's refresh just takes the new
    one.
    """

    def __init__(
        self,
        *,
        fetch: Callable[[], Token] | None,
        store: TokenStore | None,
        key: str,
        former_keys: Sequence[str] = (),
        pasted: str = "",
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL,
    ) -> None:
        self._fetch = fetch
        self._store = store
        self._key = key
        self._former_keys = tuple(former_keys)
        self._now = now or _utcnow
        self._clock = clock
        self._min_refresh_interval = min_refresh_interval
        self._lock = threading.Lock()
        self._last_refresh: float | None = None
        self._pasted = bool(pasted)
        self._token: Token | None = Token(pasted, NO_EXPIRY) if pasted else None

    @property
    def pasted(self) -> bool:
        """True when the token comes from the configuration and cannot be refreshed."""
        return self._pasted

    def token(self) -> str:
        """The bearer token to send now."""
        return self.current().access_token

    def current(self) -> Token:
        """A token valid beyond :data:`EXPIRY_MARGIN`: cached, else stored, else fetched."""
        token = self._token
        if token is not None and token.valid_at(self._now()):
            return token
        with self._lock:
            token = self._token
            if token is not None and token.valid_at(self._now()):
                return token
            if self._pasted:  # pragma: no cover - NO_EXPIRY is always valid
                return token
            return self._load_or_fetch(reject=None)

    def stored(self) -> Token | None:
        """The stored token if it is still fresh, without fetching (for ``login``)."""
        if self._pasted:
            return self._token
        if self._store is None:
            return None
        with self._store.locked():
            token = self._load(self._store)
        return token if token is not None and token.valid_at(self._now()) else None

    def invalidate_and_refresh(self, old_token: str, rejected: AuthError | None = None) -> str:
        """``old_token`` was refused (code 401): return a new token, or raise AuthError.

        At most one refresh per :data:`MIN_REFRESH_INTERVAL`: a fresh token refused again is fatal.
        """
        endpoint = rejected.endpoint if rejected else ""
        trace_id = rejected.trace_id if rejected else ""
        if self._pasted:
            raise AuthError(
                401,
                "the access_token from the configuration was refused: paste a new one from the "
                "123pan console, or configure account.client_id and account.client_secret instead",
                endpoint=endpoint,
                trace_id=trace_id,
            )
        with self._lock:
            current = self._token
            if (
                current is not None
                and current.access_token != old_token
                and current.valid_at(self._now())
            ):
                return current.access_token  # another thread refreshed already
            now = self._clock()
            if (
                self._last_refresh is not None
                and now - self._last_refresh < self._min_refresh_interval
            ):
                raise AuthError(
                    401,
                    "the service refused a token it issued moments ago; check the account and "
                    "account.client_id / account.client_secret",
                    endpoint=endpoint,
                    trace_id=trace_id,
                )
            self._token = None
            token = self._load_or_fetch(reject=old_token)
            self._last_refresh = self._clock()
            return token.access_token

    def _load_or_fetch(self, reject: str | None) -> Token:
        """Under the lock: take a fresh stored token (not ``reject``), else fetch and store one."""
        store = self._store
        with store.locked() if store is not None else contextlib.nullcontext():
            if store is not None:
                stored = self._load(store)
                if (
                    stored is not None
                    and stored.access_token != reject
                    and stored.valid_at(self._now())
                ):
                    log.debug("using the stored access token (expires %s)", stored.expired_at)
                    self._token = stored
                    return stored
            if self._fetch is None:
                raise AuthError(401, "no way to obtain an access token")
            token = self._fetch()
            log.info("obtained a new access token (expires %s)", token.expired_at.isoformat())
            if store is not None:
                try:
                    store.save(self._key, token)
                except OSError as exc:
                    log.warning(
                        "cannot save the access token in %s (%s); it will be fetched again "
                        "next run",
                        store.path,
                        exc.strerror,
                    )
            self._token = token
            return token

    def _load(self, store: TokenStore) -> Token | None:
        """Under the store's lock: the stored token for this account, moving one found under a
        former key to the account key (a new fetch would cost one of the account's 3 slots)."""
        token = store.load(self._key)
        if token is not None:
            return token
        for former in self._former_keys:
            token = store.load(former)
            if token is None:
                continue
            log.info("moving the stored access token to this version's account key")
            try:
                store.save(self._key, token, replacing=former)
            except OSError as exc:
                log.warning(
                    "cannot rewrite %s (%s); the token is used where it is",
                    store.path,
                    exc.strerror,
                )
            return token
        return None
