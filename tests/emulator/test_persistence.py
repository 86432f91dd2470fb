"""With a data folder, the whole account survives a restart; without one, nothing does."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from imgsync.emulator import Emulator

from ..support import md5, wait_for
from ..support import png_like as png
from .conftest import Bed


def test_state_survives_a_restart(tmp_path: Path) -> None:
    data = png("persisted", 5000)
    with Emulator(data_dir=tmp_path) as first:
        bed = Bed(first.base_url)
        folder = bed.mkdir("kept")
        file_id = bed.upload(data, "kept.png", folder)
        bed.config(slice_size=1000, async_polls=1)
        half = png("half", 2500)
        pending = bed.create(half, "half.png")["preuploadID"]
        assert bed.put(bed.upload_url(pending, 1)["presignedURL"], half[:1000]).status_code == 200
        seed = {"fileID": "5", "filename": "d.png", "content_b64": base64.b64encode(data).decode()}
        bed.set("drive", {"files": [seed]})
        copy_task = bed.ok(
            "/api/v1/oss/source/copy",
            {"fileIDs": ["5"], "toParentFileID": folder, "sourceType": 1, "type": 1},
        )["taskID"]
        process = "/api/v1/oss/source/copy/process"
        wait_for(lambda: bed.ok_get(process, {"taskID": copy_task})["status"] == 2)
        token = bed.token
        download_path = bed.detail(file_id)["downloadURL"][len(first.base_url) :]
    assert json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))["version"] == 1
    assert (tmp_path / "blobs" / md5(data)).read_bytes() == data

    with Emulator(data_dir=tmp_path) as second:
        bed = Bed(second.base_url)
        bed._token = token  # the token issued before the restart is still valid
        detail = bed.detail(file_id)
        assert detail["filename"] == "kept.png" and detail["parentFileId"] == folder
        assert detail["downloadURL"] == second.base_url + download_path
        assert bed.http.get(detail["downloadURL"], timeout=10).content == data
        config = bed.control("config", method="GET").json()
        assert config["slice_size"] == 1000 and config["async_polls"] == 1
        # the open upload is still there, with its first slice; the rest follows now
        for number, start in ((2, 1000), (3, 2000)):
            url = bed.upload_url(pending, number)["presignedURL"]
            assert bed.put(url, half[start : start + 1000]).status_code == 200
        assert bed.complete(pending)["data"]["async"] is True  # async_polls=1 survived too
        assert bed.async_result(pending)["data"]["completed"] is False
        done = bed.async_result(pending)["data"]
        assert bed.http.get(bed.detail(done["fileID"])["downloadURL"], timeout=10).content == half
        assert bed.ok_get(process, {"taskID": copy_task})["status"] == 2
        assert bed.set("drive", {"files": []})["files"] == 1


def test_without_a_data_folder_nothing_survives() -> None:
    with Emulator() as first:
        bed = Bed(first.base_url)
        bed.mkdir("fleeting")
        token = bed.token
    with Emulator() as second:
        bed = Bed(second.base_url)
        assert bed.files() == []
        assert (
            bed.call("/api/v1/oss/file/list", {"limit": 1, "type": 1}, token=token)["code"] == 401
        )


def test_other_credentials_and_constructor_config() -> None:
    with Emulator(client_id="id", client_secret="secret", config={"slice_size": 512}) as emu:
        assert Bed(emu.base_url, "id", "secret").new_token()
        wrong = Bed(emu.base_url).call(
            "/api/v1/access_token", {"clientID": "demo", "clientSecret": "demo"}, token=None
        )
        assert wrong["code"] == 401
        assert emu.app.settings.slice_size == 512
