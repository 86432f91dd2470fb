"""The records the emulated image bed keeps: objects, tokens, uploads, URLs, tasks, drive files.

Plain dataclasses that round-trip through JSON, so the whole state can be written to one file and
read back after a restart. Behaviour lives in :mod:`imgsync.emulator.state` and the handlers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Upload phases: accepting slices, completion requested but the answer still pending, finished.
PHASE_OPEN = "open"
PHASE_VERIFYING = "verifying"
PHASE_DONE = "done"
PHASE_FAILED = "failed"

# Offline task statuses (reference: 0 进行中, 1 下载失败, 2 下载成功, 3 重试中).
OFFLINE_RUNNING = 0
OFFLINE_FAILED = 1
OFFLINE_DONE = 2
OFFLINE_RETRYING = 3

# Copy task statuses (reference: 1 进行中, 2 结束, 3 失败, 4 等待).
COPY_RUNNING = 1
COPY_DONE = 2
COPY_FAILED = 3
COPY_WAITING = 4
COPY_UNFINISHED = frozenset({COPY_RUNNING, COPY_WAITING})


@dataclass
class Node:
    """One folder or file on the image bed."""

    file_id: str
    filename: str
    parent_id: str  # "" only for the root folder itself
    is_folder: bool
    create_at: float
    update_at: float
    oss_index: int
    etag: str = ""
    size: int = 0
    status: int = 0
    total_traffic: int = 0
    # An asynchronous review under way: at ``review_due`` (state clock) the status becomes
    # ``review_verdict``; 0 when no review is pending.
    review_due: float = 0.0
    review_verdict: int = 0


@dataclass
class Token:
    """An issued access token and whose it is."""

    value: str
    client_id: str
    issued_at: float
    expires_at: float


@dataclass
class Upload:
    """One ``create`` that did not reuse: its slices and how far completion has come."""

    preupload_id: str
    key: str  # short, filesystem-safe name of the slices in the blob store
    parent_id: str
    filename: str
    etag: str
    size: int
    slice_size: int
    created_at: float
    slices: dict[str, list[Any]] = field(default_factory=dict)  # "n" -> [size, md5]
    phase: str = PHASE_OPEN
    verified_ok: bool = False  # the assembled bytes matched the declared etag
    file_id: str = ""
    polls_left: int = 0  # completed:false answers still to give
    busy_answers_left: int = 0  # code 20103 answers still to give

    @property
    def slice_count(self) -> int:
        return max(1, math.ceil(self.size / self.slice_size))

    def expected_slice_length(self, slice_no: int) -> int:
        """Every slice is exactly sliceSize bytes except the last, which holds the rest."""
        if slice_no < self.slice_count:
            return self.slice_size
        return self.size - self.slice_size * (self.slice_count - 1)

    def missing_slices(self) -> list[int]:
        return [
            n
            for n in range(1, self.slice_count + 1)
            if str(n) not in self.slices or self.slices[str(n)][0] != self.expected_slice_length(n)
        ]


@dataclass
class Grant:
    """A presigned PUT URL: which slice of which upload it may write, and until when."""

    token: str
    preupload_id: str
    slice_no: int
    expires_at: float


@dataclass
class OfflineTask:
    """An offline migration: fetch ``url`` in the background into a folder."""

    task_id: int
    url: str
    file_name: str  # "" when the request gave none
    dir_id: str  # "" means the default folder 来自:离线下载
    callback_url: str
    created_at: float
    status: int = OFFLINE_RUNNING
    process: int = 0
    fail_reason: str = ""
    file_id: str = ""


@dataclass
class CopyTask:
    """A copy of cloud-drive files onto the image bed, processed one task at a time."""

    task_id: str
    file_ids: list[str]
    to_parent_id: str
    created_at: float
    status: int = COPY_WAITING
    fail_msg: str = ""
    failures: list[dict[str, Any]] = field(default_factory=list)  # {"fileId", "filename"}


@dataclass
class DriveFile:
    """A file on the seeded cloud drive that copy tasks read; bytes are the blob ``etag``.

    ``etag`` is "" for a file seeded by its size alone (a copy never reads it: it is over 100 MiB,
    or not named as an image), so tests need not send 100 MiB to seed one.
    """

    file_id: str
    filename: str
    etag: str
    size: int


T = TypeVar("T")


def to_json(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a record, ignoring fields this version does not know."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})
