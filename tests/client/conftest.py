"""Fixtures for the client tests: one emulator on loopback for the session, reset before each test.

The emulator is the real counterpart: the client talks HTTP to it, and its request log
(``GET /_emulator/requests``) shows exactly what went over the wire.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from imgsync.api import Api
from imgsync.config import DEFAULT_QPS, AccountSettings, NetworkSettings, Settings
from imgsync.emulator import Emulator

CLIENT_ID = "client-id-for-tests"
# Distinctive, so a test can search every captured output for it.
CLIENT_SECRET = "client-secret-7b1e0c9d-never-print-me"

UNLIMITED = {key: 0.0 for key in DEFAULT_QPS}

# Tests must not wait on real backoff: a few milliseconds keep the loop's shape, not its patience.
FAST_NETWORK = NetworkSettings(
    connect_timeout=2.0,
    read_timeout=5.0,
    max_attempts=6,
    backoff_initial=0.01,
    backoff_max=0.05,
    qps=UNLIMITED,
)


class Control:
    """The emulator's control plane (docs/contract.md)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = requests.Session()
        self._http.trust_env = False

    def _post(self, what: str, body: Any) -> Any:
        resp = self._http.post(f"{self.base_url}/_emulator/{what}", json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json() if resp.content else None

    def reset(self) -> None:
        self._post("reset", {})

    def faults(self, rules: list[dict[str, Any]] | None = None, random: Any = None) -> None:
        body: dict[str, Any] = {"rules": rules or []}
        if random is not None:
            body["random"] = random
        self._post("faults", body)

    def config(self, **changes: Any) -> None:
        self._post("config", changes)

    def review(self, etag: str, status: int) -> None:
        self._post("review", {"etag": etag, "status": status})

    def drive(self, files: list[dict[str, Any]]) -> None:
        self._post("drive", {"files": files})

    def requests(self, path_part: str = "") -> list[dict[str, Any]]:
        resp = self._http.get(f"{self.base_url}/_emulator/requests", timeout=10)
        assert resp.status_code == 200
        return [r for r in resp.json()["requests"] if path_part in r["path"]]

    def token_requests(self) -> int:
        return len([r for r in self.requests("/api/v1/access_token") if r["status"] is not None])

    def files(self) -> list[dict[str, Any]]:
        resp = self._http.get(f"{self.base_url}/_emulator/state", timeout=10)
        assert resp.status_code == 200
        return resp.json()["files"]


def header(entry: dict[str, Any], name: str) -> str | None:
    """A logged request's header, by case-insensitive name."""
    for key, value in entry["headers"].items():
        if key.lower() == name.lower():
            return value
    return None


def make_settings(base_url: str, data_dir: Path, **changes: Any) -> Settings:
    """Settings for tests: emulator account, fast backoff, no client-side rate limit.

    ``changes`` may hold account fields (``client_secret=...``) or network fields.
    """
    account_fields = {f.name for f in dataclasses.fields(AccountSettings)}
    account = AccountSettings(
        **{
            "base_url": base_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **{k: v for k, v in changes.items() if k in account_fields},
        }
    )
    network = dataclasses.replace(
        FAST_NETWORK, **{k: v for k, v in changes.items() if k not in account_fields}
    )
    return Settings(account=account, network=network, data_dir=data_dir)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_bytes(tag: str, size: int = 2048) -> bytes:
    """Distinct bytes per tag that a server sniffing the first bytes takes for a PNG."""
    seed = hashlib.sha256(tag.encode()).digest()
    return (PNG_SIGNATURE + seed * (size // len(seed) + 1))[:size]


def upload(api: Api, parent_id: str, name: str, data: bytes) -> str:
    """The documented flow, single-threaded: create, slices, complete, poll. Returns the fileID."""
    created = api.create(parent_id, name, md5(data), len(data))
    if created.reuse:
        return created.file_id
    step = created.slice_size
    for number, start in enumerate(range(0, len(data), step), start=1):
        url = api.get_upload_url(created.preupload_id, number)
        chunk = data[start : start + step]
        api.put_slice(url.presigned_url, chunk, len(chunk))
    done = api.upload_complete(created.preupload_id)
    if not done.is_async and done.file_id:
        return done.file_id
    for _ in range(50):
        result = api.upload_async_result(created.preupload_id)
        if result.completed:
            return result.file_id
    raise AssertionError("upload never completed")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as emu:
        yield emu


@pytest.fixture
def control(emulator: Emulator) -> Control:
    """A freshly reset emulator's control plane."""
    ctl = Control(emulator.base_url)
    ctl.reset()
    return ctl


@pytest.fixture
def settings(control: Control, tmp_path: Path) -> Settings:
    return make_settings(control.base_url, tmp_path / "data")


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    client = Api.from_settings(settings)
    yield client
    client.close()
