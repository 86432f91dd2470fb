"""Token reuse across runs and processes, the token file, and ``auth.login``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from imgsync.client.api import Api
from imgsync.client.tokens import TokenStore, former_store_key
from imgsync.errors import AuthError, ConfigError
from imgsync.jobs.login import login

from ..support import CLIENT_ID, CLIENT_SECRET, settings_for

LIST = "/api/v1/oss/file/list"


def test_many_runs_in_a_row_get_exactly_one_token(control, settings) -> None:
    for _ in range(5):
        with Api.from_settings(settings) as api:
            api.list_files(limit=1)
    assert control.token_requests() == 1
    path = settings.data_dir / "token.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_separate_processes_share_the_stored_token(control, settings) -> None:
    # A separate interpreter: nothing in memory is shared, only the data folder.
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from imgsync.client.api import Api
        from imgsync.config import AccountSettings, NetworkSettings, Settings
        settings = Settings(
            account=AccountSettings(base_url={control.base_url!r}, client_id={CLIENT_ID!r},
                                    client_secret={CLIENT_SECRET!r}),
            network=NetworkSettings(backoff_initial=0.01, backoff_max=0.05),
            data_dir=Path({str(settings.data_dir)!r}),
        )
        with Api.from_settings(settings) as api:
            api.list_files(limit=1)
        """
    )
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    assert control.token_requests() == 1
    assert len(control.requests(LIST)) == 2


def test_tokens_are_kept_per_service_and_account(control, settings, tmp_path) -> None:
    with Api.from_settings(settings) as api:
        api.list_files(limit=1)
    store = TokenStore(settings.data_dir)
    # the same emulator under another spelling of its URL is another key: a token is only ever
    # sent where it was issued
    other = settings_for(control.base_url.replace("127.0.0.1", "localhost"), settings.data_dir)
    with Api.from_settings(other) as api:
        api.list_files(limit=1)
    assert control.token_requests() == 2
    doc = json.loads(store.path.read_text())
    assert set(doc["tokens"]) == {settings.account.key, other.account.key}


def test_a_token_stored_by_an_earlier_version_is_reused(control, settings) -> None:
    """Token files keyed ``<base_url>|<client_id>`` (before the one account key) keep working:
    no new token is fetched (that would use one of the account's 3 slots), and the entry is
    moved under the account key."""
    token = login(settings)
    store = TokenStore(settings.data_dir)
    former = former_store_key(control.base_url, CLIENT_ID)
    store.save(former, token, replacing=settings.account.key)  # as an earlier version left it
    assert set(json.loads(store.path.read_text())["tokens"]) == {former}
    with Api.from_settings(settings) as api:
        api.list_files(limit=1)
    assert control.token_requests() == 1  # login's, nothing since
    assert [r["code"] for r in control.requests(LIST)] == [0]
    assert set(json.loads(store.path.read_text())["tokens"]) == {settings.account.key}
    assert store.load(settings.account.key) == token


def test_login_takes_a_token_stored_by_an_earlier_version(control, settings) -> None:
    token = login(settings)
    store = TokenStore(settings.data_dir)
    store.save(former_store_key(control.base_url, CLIENT_ID), token, replacing=settings.account.key)
    assert login(settings) == token
    assert control.token_requests() == 1
    assert store.load(settings.account.key) == token


def test_an_expiring_token_is_replaced(control, settings) -> None:
    control.config(token_ttl_s=200)  # less than the 5-minute margin: stale at once
    with Api.from_settings(settings) as api:
        api.list_files(limit=1)
        api.list_files(limit=1)
    assert control.token_requests() == 2


def test_login_fetches_then_verifies_without_fetching(control, settings) -> None:
    token = login(settings)
    assert control.token_requests() == 1
    assert TokenStore(settings.data_dir).load(settings.account.key) == token
    again = login(settings)
    assert again == token
    assert control.token_requests() == 1  # verified with one cheap call instead
    assert [r["json"]["limit"] for r in control.requests(LIST)] == [1]


def test_login_replaces_a_revoked_stored_token(control, settings) -> None:
    first = login(settings)
    control.reset()  # the service forgets every token: the stored one is now refused
    second = login(settings)
    assert second != first
    assert control.token_requests() == 1
    assert [r["code"] for r in control.requests(LIST)] == [401, 0]


def test_login_with_a_pasted_token(control, settings, tmp_path) -> None:
    token = login(settings)
    pasted = settings_for(
        control.base_url,
        tmp_path / "other",
        client_id="",
        client_secret="",
        access_token=token.access_token,
    )
    assert login(pasted).access_token == token.access_token
    assert not (tmp_path / "other" / "token.json").exists()  # pasted tokens are not stored
    bad = settings_for(
        control.base_url,
        tmp_path / "other",
        client_id="",
        client_secret="",
        access_token="not-a-token",
    )
    with pytest.raises(AuthError, match="paste a new one"):
        login(bad)
    assert control.token_requests() == 1


def test_login_needs_credentials(tmp_path) -> None:
    settings = settings_for("http://127.0.0.1:9", tmp_path, client_id="", client_secret="")
    with pytest.raises(ConfigError, match="client_id"):
        login(settings)
    only_id = settings_for("http://127.0.0.1:9", tmp_path, client_secret="")
    with pytest.raises(ConfigError, match="client_secret"):
        login(only_id)


def test_login_with_wrong_secret(control, tmp_path) -> None:
    settings = settings_for(control.base_url, tmp_path, client_secret="nope")
    with pytest.raises(AuthError) as err:
        login(settings)
    assert err.value.trace_id
    assert CLIENT_SECRET not in str(err.value)
    assert not (tmp_path / "token.json").exists()
