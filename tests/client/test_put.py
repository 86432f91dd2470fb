"""The presigned PUT: no Authorization or Platform whatever the session or ~/.netrc say, exact
Content-Length, streamed bodies, and retries that start the slice over."""

from __future__ import annotations

import io

import pytest
import requests

from imgsync.client.api import Api
from imgsync.client.transport import STREAM_CHUNK
from imgsync.errors import ApiError

from ..support import md5, png_like, settings_for
from .conftest import header


def start_upload(api: Api, data: bytes, name: str) -> tuple[str, str]:
    created = api.create("", name, md5(data), len(data))
    return created.preupload_id, api.get_upload_url(created.preupload_id, 1).presigned_url


def test_emulator_refuses_a_put_with_authorization(api, control) -> None:
    data = png_like("refused", 300)
    _, url = start_upload(api, data, "r.png")
    raw = requests.put(url, data=data, headers={"Authorization": "Bearer x"}, timeout=5)
    assert raw.status_code != 200


def test_put_never_carries_session_or_netrc_credentials(control, tmp_path, monkeypatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-pass\n")
    monkeypatch.setenv("NETRC", str(netrc))
    session = requests.Session()
    session.headers["Authorization"] = "Bearer session-level-leak"
    session.headers["Platform"] = "open_platform"
    with Api.from_settings(settings_for(control.base_url, tmp_path), session=session) as api:
        data = png_like("netrc", 700)
        preupload_id, url = start_upload(api, data, "n.png")
        api.put_slice(url, data, len(data))
        assert api.upload_complete(preupload_id).file_id
    session.close()
    (put,) = [r for r in control.requests() if r["method"] == "PUT"]
    assert put["status"] == 200
    assert header(put, "Authorization") is None and header(put, "Platform") is None
    assert header(put, "Content-Length") == "700"
    for r in control.requests("/oss/"):
        # our Bearer, never the session's (which would be the same redacted text) nor netrc's Basic
        assert header(r, "Authorization") == "Bearer <redacted>"


class SpyFile(io.BytesIO):
    """Records how much was read at once: proof that a slice is streamed, not slurped."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def test_put_streams_a_file_with_exact_length(control, api) -> None:
    prefix = b"HEADER--"
    data = png_like("stream", 3 * STREAM_CHUNK + 123)
    spy = SpyFile(prefix + data + b"--TRAILER")
    spy.seek(len(prefix))
    preupload_id, url = start_upload(api, data, "s.png")
    api.put_slice(url, spy, len(data))
    assert max(spy.reads) <= STREAM_CHUNK and -1 not in spy.reads
    file_id = api.upload_complete(preupload_id).file_id  # the service checks the MD5
    assert requests.get(api.detail(file_id).download_url, timeout=5).content == data
    (put,) = [r for r in control.requests() if r["method"] == "PUT"]
    assert header(put, "Content-Length") == str(len(data))
    assert header(put, "Transfer-Encoding") is None


def test_a_reset_put_is_sent_again_from_the_start(control, api) -> None:
    control.faults([{"match": "", "method": "PUT", "nth": 1, "times": 2, "action": "reset"}])
    data = png_like("again", 5000)
    opened: list[io.BytesIO] = []

    def fresh() -> io.BytesIO:
        opened.append(io.BytesIO(data))
        return opened[-1]

    preupload_id, url = start_upload(api, data, "again.png")
    api.put_slice(url, fresh, len(data))
    assert len(opened) == 3
    # Each reader the transport asked for is closed once its attempt is over (a file it opened
    # is not left for the garbage collector).
    assert [reader.closed for reader in opened] == [True, True, True]
    assert api.upload_complete(preupload_id).file_id  # MD5 matched: the whole slice arrived
    assert [r["fault"] for r in control.requests() if r["method"] == "PUT"] == [
        "reset",
        "reset",
        None,
    ]


def test_a_refused_put_is_an_api_error_without_the_url_query(control, api) -> None:
    data = png_like("short", 100)
    _, url = start_upload(api, data, "short.png")
    # The credential of a presigned URL is its signature, at the end of the query: spoil it.
    tampered = url[:-1] + ("A" if url[-1] != "A" else "B")
    with pytest.raises(ApiError) as err:
        api.put_slice(tampered, data, len(data))
    assert err.value.http_status and 400 <= err.value.http_status < 500
    query = url.split("?", 1)[1] if "?" in url else None
    if query:
        assert query not in str(err.value)
