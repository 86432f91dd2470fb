"""Everything the emulated account holds, behind one lock, optionally persisted to a data folder.

One re-entrant lock guards all records: handlers take it for their whole (short) run, so concurrent
client threads see the same consistent tree a real server would. Large byte transfers happen
outside the lock, in :mod:`imgsync.emulator.blobs`.

With a data folder, metadata is written as one JSON file (atomically, via rename) after every
change and blobs live beside it; a restarted emulator picks everything up again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .blobs import BlobStore, DiskBlobStore, MemoryBlobStore
from .media import extension_of
from .model import (
    CopyTask,
    DriveFile,
    Grant,
    Node,
    OfflineTask,
    Token,
    Upload,
    from_json,
    to_json,
)
from .settings import Settings

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_VERSION = 1
# The root folder's display name in listings (reference list example: parentFilename "img_oss").
ROOT_NAME = "img_oss"
# Reference example ids: 32 lowercase alphanumerics, then a 20-character suffix that every id of
# one account shares ("yk6baz03t0l000d7w33fbyt8704m2boh" + "DIYPAIDOBIY0DcxvDwFO").
ID_BODY_CHARS = 32
ID_SUFFIX_CHARS = 20
ID_BODY_ALPHABET = string.ascii_lowercase + string.digits
ID_SUFFIX_ALPHABET = string.ascii_letters + string.digits
# Reference: "status" of the example image is 2; folders show 0. GUESS: 2 = passed review.
DEFAULT_FILE_STATUS = 2
FOLDER_STATUS = 0
# GUESS: what a file shows while an asynchronous review is under way (review_delay_s); nothing
# documents the statuses 0..100.
PENDING_REVIEW_STATUS = 0
# GUESS: the status review_reject_share gives; the reference says only "大于100为审核驳回文件".
SHARE_REJECTED_STATUS = 150
# review_reject_share picks files by the first 32 bits of their etag, as a fraction of this.
ETAG_PREFIX_HEX = 8
ETAG_PREFIX_RANGE = 16**ETAG_PREFIX_HEX
# api-facts: "At most 3 live tokens per clientID: issuing a 4th silently logs out the oldest".
MAX_LIVE_TOKENS = 3
# Offline task ids are numbers (reference example 403316); start in that neighbourhood.
FIRST_OFFLINE_TASK_ID = 400001
# GUESS: the reference's storageNode "m76" and s3KeyFlag "<n>-0" are storage details; fixed here.
STORAGE_NODE = "m76"


def random_text(length: int, alphabet: str = ID_BODY_ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _account_suffix(client_id: str) -> str:
    """A stable 20-character id suffix per account, so ids look alike across restarts."""
    digest = hashlib.sha256(f"suffix:{client_id}".encode()).digest()
    return "".join(
        ID_SUFFIX_ALPHABET[b % len(ID_SUFFIX_ALPHABET)] for b in digest[:ID_SUFFIX_CHARS]
    )


def _account_uid(client_id: str) -> int:
    """The numeric user id that download URLs carry (reference: vip.123pan.cn/1815309870/...)."""
    digest = hashlib.sha256(f"uid:{client_id}".encode()).digest()
    return 1_000_000_000 + int.from_bytes(digest[:8], "big") % 900_000_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class State:
    """The image bed, tokens, uploads, tasks and drive of one account."""

    def __init__(
        self,
        client_id: str,
        data_dir: Path | None,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.client_id = client_id
        self.data_dir = data_dir
        self.clock = clock
        self.uid = _account_uid(client_id)
        self.id_suffix = _account_suffix(client_id)
        self.blobs: BlobStore = DiskBlobStore(data_dir) if data_dir else MemoryBlobStore()
        self._dirty = False
        self._clear(settings)
        if data_dir and (data_dir / STATE_FILE).exists():
            self._load(data_dir / STATE_FILE)

    # ----------------------------------------------------------------- lifecycle and persistence

    def _clear(self, settings: Settings) -> None:
        self.settings = settings
        self.nodes: dict[str, Node] = {}
        self.children_of: dict[str, dict[str, Node]] = {}
        self.tokens: list[Token] = []
        self.uploads: dict[str, Upload] = {}
        self.grants: dict[str, Grant] = {}
        self.offline_tasks: dict[int, OfflineTask] = {}
        self.copy_tasks: dict[str, CopyTask] = {}
        self.drive: dict[str, DriveFile] = {}
        self.review: dict[str, int] = {}
        self.next_oss_index = 1
        self.next_offline_task_id = FIRST_OFFLINE_TASK_ID
        self.token_secret = secrets.token_hex(16)
        self.root_id = self.new_file_id()
        now = self.clock()
        root = Node(self.root_id, ROOT_NAME, "", True, now, now, self._take_oss_index())
        self.nodes[root.file_id] = root
        self.children_of[root.file_id] = {}

    def reset(self, settings: Settings) -> None:
        """Forget everything: files, folders, bytes, tokens, tasks, drive, review, settings."""
        with self.lock:
            self.blobs.clear()
            self._clear(settings)
            self.mark_dirty()
            self.commit()

    def mark_dirty(self) -> None:
        self._dirty = True

    def commit(self) -> None:
        """Write the metadata if anything changed and there is a data folder."""
        with self.lock:
            if not self._dirty or self.data_dir is None:
                self._dirty = False
                return
            path = self.data_dir / STATE_FILE
            temp = path.with_name(f".{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
            temp.write_text(json.dumps(self._snapshot(), ensure_ascii=False), encoding="utf-8")
            os.replace(temp, path)
            self._dirty = False

    def _snapshot(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "client_id": self.client_id,
            "root_id": self.root_id,
            "token_secret": self.token_secret,
            "next_oss_index": self.next_oss_index,
            "next_offline_task_id": self.next_offline_task_id,
            "settings": self.settings.to_dict(),
            "nodes": [to_json(n) for n in self.nodes.values()],
            "tokens": [to_json(t) for t in self.tokens],
            "uploads": [to_json(u) for u in self.uploads.values()],
            "grants": [to_json(g) for g in self.grants.values()],
            "offline_tasks": [to_json(t) for t in self.offline_tasks.values()],
            "copy_tasks": [to_json(t) for t in self.copy_tasks.values()],
            "drive": [to_json(d) for d in self.drive.values()],
            "review": self.review,
        }

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION or data.get("client_id") != self.client_id:
            logger.warning("ignoring %s: written for another version or client id", path)
            return
        self.settings = Settings.from_dict(data.get("settings", {}))
        self.root_id = data["root_id"]
        self.token_secret = data["token_secret"]
        self.next_oss_index = data["next_oss_index"]
        self.next_offline_task_id = data["next_offline_task_id"]
        self.nodes = {}
        self.children_of = {}
        for raw in data["nodes"]:
            node = from_json(Node, raw)
            self.nodes[node.file_id] = node
            if node.is_folder:
                self.children_of.setdefault(node.file_id, {})
        for node in self.nodes.values():
            if node.file_id != self.root_id:
                self.children_of.setdefault(node.parent_id, {})[node.file_id] = node
        self.tokens = [from_json(Token, t) for t in data["tokens"]]
        self.uploads = {u.preupload_id: u for u in (from_json(Upload, x) for x in data["uploads"])}
        self.grants = {g.token: g for g in (from_json(Grant, x) for x in data["grants"])}
        offline = (from_json(OfflineTask, x) for x in data["offline_tasks"])
        self.offline_tasks = {t.task_id: t for t in offline}
        self.copy_tasks = {
            t.task_id: t for t in (from_json(CopyTask, x) for x in data["copy_tasks"])
        }
        self.drive = {d.file_id: d for d in (from_json(DriveFile, x) for x in data["drive"])}
        self.review = {str(k): int(v) for k, v in data["review"].items()}
        logger.info("loaded %d objects from %s", len(self.nodes) - 1, path)

    # ------------------------------------------------------------------------------- identifiers

    def new_file_id(self) -> str:
        return random_text(ID_BODY_CHARS) + self.id_suffix

    def _take_oss_index(self) -> int:
        # GUESS: ossIndex (42, 43 in the reference) is undocumented; a running number here.
        index = self.next_oss_index
        self.next_oss_index += 1
        return index

    def take_offline_task_id(self) -> int:
        task_id = self.next_offline_task_id
        self.next_offline_task_id += 1
        return task_id

    # -------------------------------------------------------------------------------- the tree

    def folder(self, folder_id: str) -> Node | None:
        """The folder ``folder_id`` names ("" is the root), or None if it is no folder."""
        node = self.nodes.get(folder_id or self.root_id)
        return node if node is not None and node.is_folder else None

    def children(self, folder_id: str) -> list[Node]:
        """A folder's entries, newest first (GUESS: the reference example lists newest first)."""
        entries = self.children_of.get(folder_id or self.root_id, {}).values()
        return sorted(entries, key=lambda n: n.oss_index, reverse=True)

    def child_named(self, folder_id: str, name: str) -> Node | None:
        for node in self.children_of.get(folder_id or self.root_id, {}).values():
            if node.filename == name:
                return node
        return None

    def is_inside(self, node_id: str, ancestor_id: str) -> bool:
        """True when ``node_id`` is ``ancestor_id`` or lies somewhere below it."""
        current = self.nodes.get(node_id)
        while current is not None:
            if current.file_id == ancestor_id:
                return True
            current = self.nodes.get(current.parent_id)
        return False

    def add_folder(self, parent_id: str, name: str) -> Node:
        return self._add(parent_id, name, is_folder=True, etag="", size=0)

    def add_file(self, parent_id: str, name: str, etag: str, size: int) -> Node:
        return self._add(parent_id, name, is_folder=False, etag=etag, size=size)

    def _add(self, parent_id: str, name: str, *, is_folder: bool, etag: str, size: int) -> Node:
        parent_id = parent_id or self.root_id
        now = self.clock()
        status = FOLDER_STATUS if is_folder else self.review_verdict(etag)
        node = Node(
            self.new_file_id(), name, parent_id, is_folder, now, now, self._take_oss_index(),
            etag=etag, size=size, status=status,
        )  # fmt: skip
        delay = self.settings.review_delay_s
        if not is_folder and delay > 0:
            node.status, node.review_verdict = PENDING_REVIEW_STATUS, status
            node.review_due = now + delay
        self.nodes[node.file_id] = node
        self.children_of.setdefault(parent_id, {})[node.file_id] = node
        if is_folder:
            self.children_of[node.file_id] = {}
        self.mark_dirty()
        return node

    def remove(self, node_id: str) -> None:
        """Delete an object; a folder goes with everything below it. Frees unshared blobs."""
        node = self.nodes.pop(node_id)
        self.children_of.get(node.parent_id, {}).pop(node_id, None)
        for child_id in list(self.children_of.pop(node_id, {})):
            self.remove(child_id)
        if not node.is_folder:
            self.release_blob(node.etag)
        self.mark_dirty()

    def move(self, node_id: str, to_folder_id: str) -> None:
        node = self.nodes[node_id]
        to_folder_id = to_folder_id or self.root_id
        self.children_of.get(node.parent_id, {}).pop(node_id, None)
        node.parent_id = to_folder_id
        node.update_at = self.clock()
        self.children_of.setdefault(to_folder_id, {})[node_id] = node
        self.mark_dirty()

    def files(self) -> Iterator[Node]:
        return (n for n in self.nodes.values() if not n.is_folder)

    def file_with_content(self, etag: str, size: int, folder_id: str | None = None) -> Node | None:
        """A file with these bytes, anywhere or in one folder: what instant upload reuses."""
        for node in self.files():
            same_bytes = node.etag == etag and node.size == size
            if same_bytes and (folder_id is None or node.parent_id == (folder_id or self.root_id)):
                return node
        return None

    def release_blob(self, etag: str) -> None:
        """Delete a blob once no object and no drive file refers to it."""
        if not etag or any(n.etag == etag for n in self.files()):
            return
        if any(d.etag == etag for d in self.drive.values()):
            return
        if any(u.etag == etag and u.verified_ok for u in self.uploads.values()):
            return
        self.blobs.delete_blob(etag)

    def review_verdict(self, etag: str) -> int:
        """The status the content review gives a new file with ``etag``: its own verdict
        (``/_emulator/review``), else rejected when ``review_reject_share`` picks its content,
        else passed."""
        explicit = self.review.get(etag)
        if explicit is not None:
            return explicit
        share = self.settings.review_reject_share
        if share > 0 and len(etag) >= ETAG_PREFIX_HEX:
            try:
                picked = int(etag[:ETAG_PREFIX_HEX], 16) < share * ETAG_PREFIX_RANGE
            except ValueError:
                picked = False
            if picked:
                return SHARE_REJECTED_STATUS
        return DEFAULT_FILE_STATUS

    def set_review(self, etag: str, status: int, delay_s: float | None = None) -> int:
        """Make ``status`` the review's verdict on ``etag``, for files now and later; return how
        many files there are now. Without ``delay_s`` they get it at once; with it they keep their
        status for ``delay_s`` seconds more (a rejection that arrives later)."""
        self.review[etag] = status
        changed = 0
        now = self.clock()
        for node in self.files():
            if node.etag == etag:
                if delay_s is None:
                    node.status, node.review_due = status, 0.0
                else:
                    node.review_verdict, node.review_due = status, now + delay_s
                    self.settle_review(node)
                changed += 1
        self.mark_dirty()
        return changed

    def settle_review(self, node: Node) -> Node:
        """Apply a pending review whose time has come (checked whenever a file is shown or
        served, so no thread is needed); returns ``node``."""
        if node.review_due and self.clock() >= node.review_due:
            node.status, node.review_due = node.review_verdict, 0.0
            self.mark_dirty()
        return node

    def download_path(self, node: Node) -> str:
        """Path part of an object's downloadURL: /dl/<uid>/<fileId>.<ext> (no dot without ext)."""
        ext = extension_of(node.filename)
        return f"/dl/{self.uid}/{node.file_id}" + (f".{ext}" if ext else "")

    # ------------------------------------------------------------------------------------ tokens

    def issue_token(self, client_id: str, ttl_s: float) -> Token:
        """A new token; the oldest live one is dropped when the cap of 3 would be exceeded."""
        now = self.clock()
        live = [t for t in self.tokens if t.client_id == client_id and t.expires_at > now]
        others = [t for t in self.tokens if t.client_id != client_id and t.expires_at > now]
        live.sort(key=lambda t: t.issued_at)
        while len(live) >= MAX_LIVE_TOKENS:
            live.pop(0)
            logger.info("token cap reached: the oldest token of %s is now invalid", client_id)
        expires_at = now + ttl_s
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "id": client_id,
            "iat": int(now),
            "exp": int(expires_at),
            "jti": secrets.token_hex(8),
        }
        payload = _b64url(json.dumps(claims).encode())
        signature = hmac.new(
            self.token_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256
        ).digest()
        token = Token(f"{header}.{payload}.{_b64url(signature)}", client_id, now, expires_at)
        self.tokens = others + live + [token]
        self.mark_dirty()
        return token

    def token_owner(self, value: str) -> str | None:
        """The client id a live token belongs to, or None for an unknown or expired token."""
        now = self.clock()
        for token in self.tokens:
            if token.value == value:
                return token.client_id if token.expires_at > now else None
        return None
