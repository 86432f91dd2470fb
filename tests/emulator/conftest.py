"""Fixtures for the emulator's own tests: one in-process emulator for the session, reset before each
test, and a thin helper that speaks its API and control plane over real HTTP with plain requests.

Nothing here imports the imgsync client: the emulator is tested from the reference alone (the
shared ``tests/support.py`` lends only plain helpers: md5, image bytes, wait_for).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from imgsync.emulator import Emulator

from ..support import md5

JPEG_SIGNATURE = b"\xff\xd8\xff\xe0"
HTTP_TIMEOUT_S = 30


class Bed:
    """A plain-HTTP speaker of the emulated 123pan API and of its control plane."""

    def __init__(self, base_url: str, client_id: str = "demo", client_secret: str = "demo"):
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.http = requests.Session()
        self.http.trust_env = False  # never via a proxy from the environment
        self._token: str | None = None

    # ------------------------------------------------------------------------------ API calls

    def new_token(self) -> str:
        answer = self.call(
            "/api/v1/access_token",
            {"clientID": self.client_id, "clientSecret": self.client_secret},
            token=None,
        )
        assert answer["code"] == 0, answer
        return answer["data"]["accessToken"]

    def login(self) -> str:
        """Get the token now (before a fault plan could hit access_token) and keep it."""
        if self._token is None:
            self._token = self.new_token()
        return self._token

    @property
    def token(self) -> str:
        return self.login()

    def headers(self, token: str | None) -> dict[str, str]:
        headers = {"Platform": "open_platform"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def raw(
        self, method: str, path: str, *, token: str | None | bool = True, **kwargs: Any
    ) -> requests.Response:
        chosen = self.token if token is True else (token or None)
        headers = {**self.headers(chosen), **kwargs.pop("headers", {})}
        return self.http.request(
            method, self.base_url + path, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs
        )

    def call(self, path: str, body: Any = None, *, token: str | None | bool = True) -> dict:
        """POST a JSON body; the decoded envelope."""
        response = self.raw("POST", path, json=body, token=token)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def get(self, path: str, params: dict[str, Any], *, token: str | None | bool = True) -> dict:
        """GET with a query string; the decoded envelope."""
        response = self.raw("GET", path, params=params, token=token)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def ok(self, path: str, body: Any = None) -> Any:
        answer = self.call(path, body)
        assert answer["code"] == 0, answer
        return answer["data"]

    def ok_get(self, path: str, params: dict[str, Any]) -> Any:
        answer = self.get(path, params)
        assert answer["code"] == 0, answer
        return answer["data"]

    # --------------------------------------------------------------------------- conveniences

    def mkdir(self, name: str, parent: str = "") -> str:
        data = self.ok("/upload/v1/oss/file/mkdir", {"name": name, "parentID": parent, "type": 1})
        return data["list"][0]["dirID"]

    def create(self, data: bytes, name: str, parent: str = "") -> dict:
        body = {"parentFileID": parent, "filename": name, "etag": md5(data), "size": len(data)}
        return self.ok("/upload/v1/oss/file/create", {**body, "type": 1})

    def upload_url(self, preupload_id: str, slice_no: int = 1) -> dict:
        body = {"preuploadID": preupload_id, "sliceNo": slice_no}
        return self.ok("/upload/v1/oss/file/get_upload_url", body)

    def put(self, url: str, data: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.http.put(url, data=data, **kwargs)

    def complete(self, preupload_id: str) -> dict:
        return self.call("/upload/v1/oss/file/upload_complete", {"preuploadID": preupload_id})

    def async_result(self, preupload_id: str) -> dict:
        return self.call("/upload/v1/oss/file/upload_async_result", {"preuploadID": preupload_id})

    def send_slices(self, preupload_id: str, data: bytes, slice_size: int) -> None:
        for number, start in enumerate(range(0, len(data), slice_size), start=1):
            url = self.upload_url(preupload_id, number)["presignedURL"]
            response = self.put(url, data[start : start + slice_size])
            assert response.status_code == 200, response.text

    def upload(self, data: bytes, name: str, parent: str = "") -> str:
        """The whole synchronous flow; the new object's fileID."""
        created = self.create(data, name, parent)
        if created["reuse"]:
            return created["fileID"]
        self.send_slices(created["preuploadID"], data, created["sliceSize"])
        answer = self.complete(created["preuploadID"])
        assert answer["code"] == 0 and answer["data"]["completed"], answer
        return answer["data"]["fileID"]

    def detail(self, file_id: str) -> dict:
        return self.ok_get("/api/v1/oss/file/detail", {"fileID": file_id})

    def listing(self, parent: str = "", limit: int = 100, **extra: Any) -> dict:
        body = {"parentFileId": parent, "limit": limit, "type": 1, **extra}
        return self.ok("/api/v1/oss/file/list", body)

    # ---------------------------------------------------------------------------- control plane

    def control(self, name: str, body: Any = None, method: str = "POST") -> requests.Response:
        url = f"{self.base_url}/_emulator/{name}"
        return self.http.request(method, url, json=body, timeout=HTTP_TIMEOUT_S)

    def set(self, name: str, body: Any) -> Any:
        response = self.control(name, body)
        assert response.status_code == 200, response.text
        return response.json()

    def config(self, **changes: Any) -> dict:
        return self.set("config", changes)

    def faults(self, *rules: dict[str, Any], random: Any = None) -> None:
        self.set("faults", {"rules": list(rules), "random": random})

    def log(self, path_part: str = "") -> list[dict[str, Any]]:
        entries = self.control("requests", method="GET").json()["requests"]
        return [e for e in entries if path_part in e["path"]]

    def files(self) -> list[dict[str, Any]]:
        return self.control("state", method="GET").json()["files"]


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def bed(emulator: Emulator) -> Iterator[Bed]:
    helper = Bed(emulator.base_url)
    assert helper.control("reset").status_code == 200
    yield helper
    helper.http.close()
