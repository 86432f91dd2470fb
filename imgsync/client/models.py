"""The typed answers of the image-bed API: one frozen dataclass per endpoint's result.

:class:`imgsync.client.api.Api` builds them from the service's JSON; callers above the client read
fields with the names and types written here, never the wire's spellings (``fileId``/``fileID``,
``dirID``, ...), so a change in the service's spelling touches the client alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from imgsync.service import review_rejected

__all__ = [
    "LAST_PAGE",
    "AsyncResult",
    "CompleteResult",
    "CopyFailure",
    "CopyFailures",
    "CopyProgress",
    "CopyTask",
    "CreateResult",
    "FileList",
    "Folder",
    "OfflineProgress",
    "OfflineTask",
    "RemoteFile",
    "UploadPart",
    "UploadUrl",
]

# list's lastFileId on the last page.
LAST_PAGE = "-1"
# list and detail's ``type``: 1 is a folder, 0 a file.
FOLDER_TYPE = 1


@dataclass(frozen=True)
class Folder:
    """One folder answered by mkdir."""

    filename: str
    dir_id: str


@dataclass(frozen=True)
class CreateResult:
    """create's answer. ``reuse`` true = instant upload (秒传): ``file_id`` is final, no slices."""

    file_id: str
    preupload_id: str
    reuse: bool
    slice_size: int


@dataclass(frozen=True)
class UploadUrl:
    """Where to PUT one slice. The URL is a credential: do not log its query string."""

    presigned_url: str
    is_multipart: bool

    def __repr__(self) -> str:
        return f"UploadUrl(presigned_url='{self.presigned_url.split('?', 1)[0]}?…', " + (
            f"is_multipart={self.is_multipart})"
        )


@dataclass(frozen=True)
class UploadPart:
    """One slice the service holds (list_upload_parts; not in the image-bed reference)."""

    part_number: int
    size: int
    etag: str


@dataclass(frozen=True)
class CompleteResult:
    """upload_complete's answer. Done when not ``is_async`` and ``file_id`` is set."""

    is_async: bool
    completed: bool
    file_id: str


@dataclass(frozen=True)
class AsyncResult:
    """upload_async_result's answer; poll again (≥ 1 s later) while not ``completed``."""

    completed: bool
    file_id: str


@dataclass(frozen=True)
class RemoteFile:
    """A file or folder as list and detail describe it.

    ``create_at``/``update_at`` are kept as the service writes them ("YYYY-MM-DD HH:MM:SS", China
    time, no zone).
    """

    file_id: str
    filename: str
    parent_file_id: str
    type: int
    etag: str
    size: int
    status: int
    create_at: str
    update_at: str
    download_url: str
    user_self_url: str
    total_traffic: int
    parent_filename: str
    extension: str

    @property
    def is_folder(self) -> bool:
        return self.type == FOLDER_TYPE

    @property
    def rejected(self) -> bool:
        """Rejected by content review (status > 100): the link will not serve."""
        return review_rejected(self.status)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RemoteFile:
        """Read a list or detail entry. The image-bed reference spells ``fileId``/``parentFileId``;
        the platform's cloud-drive detail spells them ``fileID``/``parentFileID``: either is
        taken."""
        file_id = item["fileId"] if "fileId" in item else item["fileID"]
        return cls(
            file_id=str(file_id),
            filename=str(item["filename"]),
            parent_file_id=str(item.get("parentFileId") or item.get("parentFileID") or ""),
            type=int(item.get("type") or 0),
            etag=str(item.get("etag") or ""),
            size=int(item.get("size") or 0),
            status=int(item.get("status") or 0),
            create_at=str(item.get("createAt") or ""),
            update_at=str(item.get("updateAt") or ""),
            download_url=str(item.get("downloadURL") or ""),
            user_self_url=str(item.get("userSelfURL") or ""),
            total_traffic=int(item.get("totalTraffic") or 0),
            parent_filename=str(item.get("parentFilename") or ""),
            extension=str(item.get("extension") or ""),
        )


@dataclass(frozen=True)
class FileList:
    """One page of list. Pass ``last_file_id`` back for the next page unless ``is_last``."""

    files: list[RemoteFile]
    last_file_id: str

    @property
    def is_last(self) -> bool:
        return self.last_file_id == LAST_PAGE or not self.last_file_id


@dataclass(frozen=True)
class OfflineTask:
    """offline/download's answer: a numeric task id."""

    task_id: int


@dataclass(frozen=True)
class OfflineProgress:
    """offline/download/process's answer. It names no file: find the result by name."""

    RUNNING: ClassVar[int] = 0
    FAILED: ClassVar[int] = 1
    DONE: ClassVar[int] = 2
    RETRYING: ClassVar[int] = 3

    status: int
    process: int  # percent, 0-100


@dataclass(frozen=True)
class CopyTask:
    """source/copy's answer: a string task id."""

    task_id: str


@dataclass(frozen=True)
class CopyProgress:
    """source/copy/process's answer."""

    RUNNING: ClassVar[int] = 1
    DONE: ClassVar[int] = 2
    FAILED: ClassVar[int] = 3
    WAITING: ClassVar[int] = 4

    status: int
    fail_msg: str


@dataclass(frozen=True)
class CopyFailure:
    """A file a copy task could not copy; ``file_id`` is a cloud-drive id (numeric on the wire)."""

    file_id: str
    filename: str


@dataclass(frozen=True)
class CopyFailures:
    """One page of source/copy/fail."""

    total: int
    items: list[CopyFailure]
