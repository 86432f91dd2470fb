"""Endpoints for the account and the folder tree: access_token, mkdir, list, detail, delete, move,
plus the download URLs that serve stored bytes.

Each handler validates its parameters exactly as the reference types them (names, casing, JSON
types, ``type: 1``) and answers the reference's shapes, so a client that drifts from the reference
fails here. Handlers run with the state lock held (see :mod:`imgsync.emulator.routing`).
"""

from __future__ import annotations

from typing import Any

from .app import Call, EmulatorApp
from .media import extension_of, filename_problem
from .model import Node
from .protocol import (
    CODE_FILE_NOT_FOUND,
    CODE_UNAUTHORIZED,
    MAX_PAGE_SIZE,
    MSG_BAD_CREDENTIALS,
    MSG_FILE_NOT_FOUND,
    MSG_FOLDER_EXISTS,
    ApiError,
    bad_request,
    china_time,
    json_type_name,
    missing_parent,
    rfc3339_china,
)
from .state import STORAGE_NODE

# Reference: "status ... 大于100为审核驳回文件": such a file's link does not serve.
REVIEW_REJECTED_ABOVE = 100
# The list endpoint's "last page" marker is this string, not a number.
LAST_PAGE = "-1"
DOWNLOAD_PREFIX = "/dl/"


def render_node(app: EmulatorApp, node: Node) -> dict[str, Any]:
    """One object exactly as list and detail show it (reference field names and order)."""
    state = app.state
    parent = state.nodes.get(node.parent_id)
    download_url = self_url = ""
    if not node.is_folder:
        state.settle_review(node)
        path = state.download_path(node)
        download_url = app.base_url + path
        domain = state.settings.self_domain
        self_url = download_url if domain is None else (domain + path if domain else "")
    return {
        "fileId": node.file_id,
        "filename": node.filename,
        "parentFileId": node.parent_id,
        "type": 1 if node.is_folder else 0,
        "etag": node.etag,
        "size": node.size,
        "status": node.status,
        "s3KeyFlag": "" if node.is_folder else f"{state.uid}-0",
        "storageNode": "" if node.is_folder else STORAGE_NODE,
        "createAt": china_time(node.create_at),
        "updateAt": china_time(node.update_at),
        "downloadURL": download_url,
        "ossIndex": node.oss_index,
        "totalTraffic": node.total_traffic,
        "parentFilename": parent.filename if parent else "",
        "extension": "" if node.is_folder else extension_of(node.filename),
        "userSelfURL": self_url,
    }


def access_token(call: Call) -> dict[str, Any]:
    app = call.app
    client_id = call.params.required_str("clientID")
    client_secret = call.params.required_str("clientSecret")
    if client_id != app.client_id or client_secret != app.client_secret:
        raise ApiError(CODE_UNAUTHORIZED, MSG_BAD_CREDENTIALS)
    token = app.state.issue_token(client_id, app.settings.token_ttl_s)
    return {"accessToken": token.value, "expiredAt": rfc3339_china(token.expires_at)}


def _folder_names(raw: Any, form: str) -> list[str]:
    """mkdir's ``name`` is typed []string but the reference example sends a string: take both,
    unless the ``mkdir_name`` setting (``form``) makes this service refuse one of them."""
    if form == "string" and not isinstance(raw, str):
        raise bad_request(f"name: expected string, got {json_type_name(raw)}")
    if form == "list" and isinstance(raw, str):
        raise bad_request("name: expected array of strings, got string")
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list):
        raise bad_request(f"name: expected string or array of strings, got {json_type_name(raw)}")
    if not names:
        raise bad_request("name: must not be empty")
    for name in names:
        if not isinstance(name, str):
            raise bad_request(f"name: expected array of strings, got {json_type_name(name)}")
        problem = filename_problem(name)
        if problem:
            raise bad_request(f"name: {name!r} {problem}")
    return names


def mkdir(call: Call) -> dict[str, Any]:
    params, state = call.params, call.app.state
    params.require_type_one()
    parent_id = params.required_str("parentID")
    if not params.has("name"):
        raise bad_request("name: required parameter missing")
    names = _folder_names(params.raw("name"), state.settings.mkdir_name)
    parent = state.folder(parent_id)
    if parent is None:
        raise missing_parent(state.settings.missing_parent, "parentID", parent_id)
    # GUESS: several names are all-or-nothing, and a file of that name blocks a folder too.
    if len(set(names)) != len(names) or any(state.child_named(parent.file_id, n) for n in names):
        raise bad_request(MSG_FOLDER_EXISTS)
    created = [state.add_folder(parent.file_id, name) for name in names]
    return {"list": [{"filename": n.filename, "dirID": n.file_id} for n in created]}


def list_files(call: Call) -> dict[str, Any]:
    params, state = call.params, call.app.state
    params.require_type_one()
    limit = params.required_int("limit", low=1, high=MAX_PAGE_SIZE)
    parent_id = params.optional_str("parentFileId") or ""
    last_file_id = params.optional_str("lastFileId") or ""
    start_time = params.optional_int("startTime")
    end_time = params.optional_int("endTime")
    folder = state.folder(parent_id)
    if folder is None:
        mode = state.settings.missing_parent
        if mode == "silent":
            # GUESS (missing_parent "silent"): a folder that is gone lists as an empty one.
            return {"lastFileId": LAST_PAGE, "fileList": []}
        raise missing_parent(mode, "parentFileId", parent_id)
    if last_file_id == LAST_PAGE:
        return {"lastFileId": LAST_PAGE, "fileList": []}
    # GUESS: startTime/endTime filter on createAt, both ends inclusive.
    entries = [
        n
        for n in state.children(folder.file_id)
        if (start_time is None or n.create_at >= start_time)
        and (end_time is None or n.create_at <= end_time)
    ]
    start = 0
    if last_file_id:
        positions = [i for i, n in enumerate(entries) if n.file_id == last_file_id]
        if not positions:
            # GUESS: a cursor that is not in this listing is refused rather than ignored.
            raise bad_request(f"lastFileId: {last_file_id!r} is not in this listing")
        start = positions[0]
    page = entries[start : start + limit]
    more = start + limit < len(entries)
    return {
        "lastFileId": entries[start + limit].file_id if more else LAST_PAGE,
        "fileList": [render_node(call.app, n) for n in page],
    }


def detail(call: Call) -> dict[str, Any]:
    file_id = call.params.required_str("fileID", allow_empty=False)
    node = call.app.state.nodes.get(file_id)
    if node is None:
        raise ApiError(CODE_FILE_NOT_FOUND, MSG_FILE_NOT_FOUND)
    return render_node(call.app, node)


def _existing_nodes(call: Call, ids: list[str]) -> list[Node]:
    """The objects ``ids`` name; 5066 if any is unknown, code 1 for the root (never touched)."""
    state = call.app.state
    nodes = []
    for file_id in ids:
        node = state.nodes.get(file_id)
        if node is None:
            # GUESS: one unknown id fails the whole call and changes nothing.
            raise ApiError(CODE_FILE_NOT_FOUND, f"{MSG_FILE_NOT_FOUND}: {file_id}")
        if file_id == state.root_id:
            raise bad_request("the root folder cannot be deleted or moved")
        nodes.append(node)
    return nodes


def delete(call: Call) -> None:
    state = call.app.state
    nodes = _existing_nodes(call, call.params.id_list("fileIDs"))
    for node in nodes:
        if node.file_id in state.nodes:  # an earlier id may have been its folder
            # GUESS: deleting a folder deletes everything below it.
            state.remove(node.file_id)
    return None


def move(call: Call) -> None:
    params, state = call.params, call.app.state
    ids = params.id_list("fileIDs")
    to_id = params.required_str("toParentFileID")
    target = state.folder(to_id)
    if target is None:
        raise bad_request(f"toParentFileID: no folder {to_id!r}")
    nodes = _existing_nodes(call, ids)
    incoming: set[str] = set()
    for node in nodes:
        if node.is_folder and state.is_inside(target.file_id, node.file_id):
            raise bad_request(f"cannot move folder {node.filename!r} into itself")
        clash = state.child_named(target.file_id, node.filename)
        if (clash is not None and clash.file_id != node.file_id) or node.filename in incoming:
            # GUESS: names stay unique per folder ("不能重名"), so a clashing move is refused.
            raise bad_request(f"目标目录下已有同名文件: {node.filename}")
        incoming.add(node.filename)
    for node in nodes:
        if node.parent_id != target.file_id:
            state.move(node.file_id, target.file_id)
    return None


def find_download(app: EmulatorApp, path: str) -> tuple[int, Node | None]:
    """The file a download path names: (200, node), (404, None) or (403, node) when rejected."""
    state = app.state
    file_part = path.rsplit("/", 1)[-1]
    node = state.nodes.get(file_part.split(".", 1)[0])
    if node is None or node.is_folder or state.download_path(node) != path:
        return 404, None
    state.settle_review(node)
    if node.status > REVIEW_REJECTED_ABOVE:
        return 403, node
    return 200, node


def count_traffic(app: EmulatorApp, node: Node) -> None:
    """totalTraffic grows by the bytes served (GUESS: the unit is bytes)."""
    node.total_traffic += node.size
    app.state.mark_dirty()
