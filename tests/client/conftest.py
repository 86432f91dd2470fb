"""Fixtures for the client tests: the shared emulator (tests/conftest.py), settings built in code.

The emulator is the real counterpart: the client talks HTTP to it, and its request log
(``GET /_emulator/requests``) shows exactly what went over the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsync.client.api import Api
from imgsync.config import Settings

from ..support import Control, md5, settings_for


def header(entry: dict[str, Any], name: str) -> str | None:
    """A logged request's header, by case-insensitive name."""
    for key, value in entry["headers"].items():
        if key.lower() == name.lower():
            return value
    return None


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


@pytest.fixture
def settings(control: Control, data_dir: Path) -> Settings:
    """Built in code with the fast network (the shared fixture reads a config file)."""
    return settings_for(control.base_url, data_dir)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    client = Api.from_settings(settings)
    yield client
    client.close()
