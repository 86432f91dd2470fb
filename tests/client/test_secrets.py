"""Secrets (client secret, access tokens, presigned URL queries) appear in no output and no log,
at any verbosity, on success and on every failure path."""

from __future__ import annotations

import logging
import socket

import pytest

from imgsync.client.api import Api
from imgsync.client.tokens import TokenStore
from imgsync.errors import ImgsyncError

from ..support import CLIENT_SECRET, md5, png_like, settings_for

LIST = "/api/v1/oss/file/list"


def test_no_secret_in_any_log_or_output(control, tmp_path, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: urllib3 and requests included
    # ... and urllib3's own level, which `imgsync` commands run in-process earlier (CliRunner)
    # leave at WARNING: its DEBUG request lines are the ones most likely to show a URL's query.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    errors: list[str] = []
    tokens: set[str] = set()
    queries: set[str] = set()
    control.faults(
        [
            {"match": LIST, "nth": 2, "times": 1, "action": "code:401"},
            {"match": "", "method": "PUT", "nth": 1, "times": 1, "action": "reset"},
            {"match": "/file/detail", "nth": 1, "times": 1, "action": "http:503"},
            {"match": "get_upload_url", "nth": 1, "times": 1, "action": "code:429"},
        ]
    )
    settings = settings_for(control.base_url, tmp_path)
    with Api.from_settings(settings) as api:
        api.list_files()
        tokens.add(api.tokens.token())
        api.list_files()  # 401 → refresh
        tokens.add(api.tokens.token())
        data = png_like("secret-test", 900)
        created = api.create("", "s.png", md5(data), len(data))
        url = api.get_upload_url(created.preupload_id, 1)
        if "?" in url.presigned_url:
            queries.add(url.presigned_url.split("?", 1)[1])
        logging.getLogger("test").debug("%r", url)  # a careless caller logging the result
        api.put_slice(url.presigned_url, data, len(data))
        file_id = api.upload_complete(created.preupload_id).file_id
        api.detail(file_id)
        # failures: business error, refused PUT, wrong credentials, unreachable host
        for failing in (
            lambda: api.detail("missing"),
            lambda: api.put_slice(url.presigned_url + "x", data, len(data)),
        ):
            try:
                failing()
            except ImgsyncError as exc:
                errors.append(str(exc))
                logging.getLogger("test").exception("failed")
    with Api.from_settings(
        settings_for(control.base_url, tmp_path / "b", client_secret="wrong-" + CLIENT_SECRET)
    ) as bad:
        with pytest.raises(ImgsyncError) as err:
            bad.list_files()
        errors.append(str(err.value))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Api.from_settings(settings_for(f"http://127.0.0.1:{port}", tmp_path / "c")) as down:
        with pytest.raises(ImgsyncError) as err:
            down.list_files()
        errors.append(str(err.value))

    assert len(tokens) == 2
    stored = TokenStore(settings.data_dir).path.read_text()
    assert any(t in stored for t in tokens)  # the store is the one place a token may be
    out, err_text = capfd.readouterr()
    # The in-process emulator's own (server-side) log lines are not the client's output.
    client_records = [r for r in caplog.records if not r.name.startswith("imgsync.emulator")]
    seen = "\n".join(
        [out, err_text, *errors]
        + [logging.Formatter().format(r) for r in client_records]
        + [repr(r.args) for r in client_records]
    )
    # urllib3 did log the PUT request line (so its query-string redaction was exercised)
    assert any(r.name.startswith("urllib3") and "PUT" in r.getMessage() for r in caplog.records)
    for secret in [CLIENT_SECRET, *tokens, *queries]:
        assert secret not in seen, f"a secret leaked: {secret[:6]}…"
    assert "Bearer " not in seen
