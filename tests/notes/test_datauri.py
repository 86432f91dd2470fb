"""The bytes a data: URI holds, decoded as RFC 2397 says; an undecodable one gives no bytes."""

from __future__ import annotations

import base64

import pytest

from imgsync.notes.datauri import decode_data_uri

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.mark.parametrize(
    ("uri", "payload"),
    [
        pytest.param("data:image/png;base64," + base64.b64encode(PNG).decode(), PNG, id="base64"),
        pytest.param("DATA:IMAGE/PNG;BASE64," + base64.b64encode(PNG).decode(), PNG, id="upper"),
        pytest.param(
            "data:image/png;base64, " + base64.b64encode(PNG).decode() + "\n", PNG, id="spaces"
        ),
        pytest.param("data:text/plain,hello%20world", b"hello world", id="percent-encoded"),
        pytest.param("data:,%89PNG", b"\x89PNG", id="no-media-type"),
        pytest.param("data:image/png;base64,!!!not-base64", b"", id="bad-base64"),
        pytest.param("data:image/png;base64,abc", b"", id="bad-padding"),
        pytest.param("data:image/png;base64", b"", id="no-comma"),
    ],
)
def test_decode_data_uri(uri: str, payload: bytes) -> None:
    assert decode_data_uri(uri) == payload
