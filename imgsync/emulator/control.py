"""The control plane under ``/_emulator/``: how tests and demos inspect and steer the emulator.

Shapes follow docs/contract.md ("The emulator"). Control requests are never logged, faulted,
throttled or delayed: they are the test's own hands, not traffic of the client under test.
Errors answer HTTP 400 ``{"error": "..."}`` naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from .api_tree import render_node
from .app import EmulatorApp
from .faults import FaultPlanError
from .media import MAX_FILE_SIZE, has_image_extension
from .model import DriveFile, to_json
from .protocol import is_json_integer
from .settings import SettingsError

CONTROL_PREFIX = "/_emulator/"


class ControlError(Exception):
    """A control request that cannot be done: HTTP ``status`` with ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ControlError(f"{what}: the body must be a JSON object")
    return body


def get_requests(app: EmulatorApp, body: Any) -> dict[str, Any]:
    return {"requests": app.log.entries()}


def clear_requests(app: EmulatorApp, body: Any) -> dict[str, Any]:
    app.log.clear()
    return {"ok": True}


def reset(app: EmulatorApp, body: Any) -> dict[str, Any]:
    app.reset()
    return {"ok": True}


def set_faults(app: EmulatorApp, body: Any) -> dict[str, Any]:
    try:
        app.faults.replace(body)
    except FaultPlanError as exc:
        raise ControlError(f"faults: {exc}") from exc
    return {"ok": True, "faults": app.faults.describe()}


def get_faults(app: EmulatorApp, body: Any) -> dict[str, Any]:
    return app.faults.describe()


def set_config(app: EmulatorApp, body: Any) -> dict[str, Any]:
    try:
        return app.configure(_object(body, "config")).to_dict()
    except SettingsError as exc:
        raise ControlError(f"config: {exc}") from exc


def get_config(app: EmulatorApp, body: Any) -> dict[str, Any]:
    return app.settings.to_dict()


def set_review(app: EmulatorApp, body: Any) -> dict[str, Any]:
    """``{"etag", "status"}``: the review's verdict on that content, for files now and later.
    With ``"delay_s"`` the files there now keep their status that many seconds more: a rejection
    that arrives after the upload."""
    spec = _object(body, "review")
    etag, status, delay_s = spec.get("etag"), spec.get("status"), spec.get("delay_s")
    if not isinstance(etag, str) or not etag:
        raise ControlError("review: etag must be a non-empty string")
    if not is_json_integer(status) or status < 0:
        raise ControlError("review: status must be an integer >= 0 (above 100 = rejected)")
    if delay_s is not None and (
        not isinstance(delay_s, int | float) or isinstance(delay_s, bool) or delay_s < 0
    ):
        raise ControlError("review: delay_s must be a number >= 0 (seconds)")
    with app.state.lock:
        updated = app.state.set_review(
            etag.lower(), status, None if delay_s is None else float(delay_s)
        )
        app.state.commit()
    return {"ok": True, "updated": updated}


_DRIVE_SHAPE = (
    'drive: expected {"files": [{"fileID", "filename", "content_b64"}]}'
    ' (or "size" instead of content_b64 for a file a copy never reads)'
)


def _drive_entry(entry: Any) -> tuple[str, str, bytes | None, int]:
    """(fileID, filename, bytes or None, size) of one seeded drive file.

    ``size`` alone (no ``content_b64``) declares a file the copy never reads, as the reference
    passes such files over before reading them: one over 100 MiB or one not named as an image.
    Seeding it then costs no bytes. With both, the size must be that of the bytes.
    """
    if not isinstance(entry, dict):
        raise ControlError("drive: each file must be an object")
    file_id, filename, content = (entry.get(k) for k in ("fileID", "filename", "content_b64"))
    size = entry.get("size")
    if not isinstance(file_id, str) or not file_id or not isinstance(filename, str):
        raise ControlError("drive: fileID and filename must be strings")
    if size is not None and (not is_json_integer(size) or size < 0):
        raise ControlError(f"drive: size of {file_id} must be an integer >= 0")
    if content is None:
        if size is None:
            raise ControlError(_DRIVE_SHAPE)
        if size <= MAX_FILE_SIZE and has_image_extension(filename):
            raise ControlError(
                f"drive: {file_id} needs content_b64: a copy reads an image of at most"
                f" {MAX_FILE_SIZE} bytes (size alone is for larger files or other formats)"
            )
        return file_id, filename, None, size
    if not isinstance(content, str):
        raise ControlError(f"drive: content_b64 of {file_id} must be a string")
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ControlError(f"drive: content_b64 of {file_id} is not base64") from exc
    if size is not None and size != len(data):
        raise ControlError(f"drive: size of {file_id} is {size}, its content {len(data)} bytes")
    return file_id, filename, data, len(data)


def seed_drive(app: EmulatorApp, body: Any) -> dict[str, Any]:
    """Add (or replace, by fileID) files of the cloud drive that copy tasks read."""
    files = _object(body, "drive").get("files")
    if not isinstance(files, list):
        raise ControlError(_DRIVE_SHAPE)
    decoded = [_drive_entry(entry) for entry in files]
    state = app.state
    with state.lock:
        for file_id, filename, data, size in decoded:
            old = state.drive.get(file_id)
            etag = state.blobs.put_blob(data) if data is not None else ""
            state.drive[file_id] = DriveFile(file_id, filename, etag, size)
            if old is not None and old.etag != etag:
                state.release_blob(old.etag)
        state.mark_dirty()
        state.commit()
        return {"ok": True, "files": len(state.drive)}


def get_drive(app: EmulatorApp, body: Any) -> dict[str, Any]:
    with app.state.lock:
        return {"files": [to_json(d) for d in app.state.drive.values()]}


def get_state(app: EmulatorApp, body: Any) -> dict[str, Any]:
    """Every folder and file (not the root itself), in creation order, shaped as list shapes them.

    The task lists are our addition to the contract, for debugging.
    """
    state = app.state
    with state.lock:
        nodes = sorted(state.nodes.values(), key=lambda n: n.oss_index)
        return {
            "files": [render_node(app, n) for n in nodes if n.file_id != state.root_id],
            "offline_tasks": [to_json(t) for t in state.offline_tasks.values()],
            "copy_tasks": [to_json(t) for t in state.copy_tasks.values()],
            "root_id": state.root_id,
        }


Handler = Callable[[EmulatorApp, Any], dict[str, Any]]

CONTROL_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "requests"): get_requests,
    ("DELETE", "requests"): clear_requests,
    ("POST", "reset"): reset,
    ("POST", "faults"): set_faults,
    ("GET", "faults"): get_faults,
    ("POST", "config"): set_config,
    ("GET", "config"): get_config,
    ("POST", "review"): set_review,
    ("POST", "drive"): seed_drive,
    ("GET", "drive"): get_drive,
    ("GET", "state"): get_state,
}


def answer_control(app: EmulatorApp, method: str, path: str, body: Any) -> tuple[int, Any]:
    """HTTP status and JSON answer of one control request."""
    name = path[len(CONTROL_PREFIX) :].strip("/")
    handler = CONTROL_ROUTES.get((method, name))
    if handler is None:
        known = sorted({n for _, n in CONTROL_ROUTES})
        if any(n == name for _, n in CONTROL_ROUTES):
            return 405, {"error": f"{method} is not supported on {path}"}
        return 404, {"error": f"no control endpoint {path}; known: {known}"}
    try:
        return 200, handler(app, body)
    except ControlError as exc:
        return exc.status, {"error": str(exc)}
