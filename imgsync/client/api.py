"""The 123pan image-bed (图床) Open API: one thin, typed method per documented endpoint.

Each method sends exactly the field names the reference documents for its endpoint (their casing
differs from endpoint to endpoint: ``parentFileId`` for list, ``parentFileID`` for create,
``parentID`` for mkdir, ...) and returns a frozen dataclass, or raises an :mod:`imgsync.errors`
class carrying the code, the service's message, the endpoint and the ``x-traceID``. There is no
policy here: no polling, no deduplication, no folder walking beyond :meth:`Api.iter_files` paging.
Retries and rate limiting live below, in :mod:`imgsync.client.transport` and
:mod:`imgsync.client.limiter`; tokens (obtained, stored, refreshed once on a 401) in
:mod:`imgsync.client.auth` and :mod:`imgsync.client.tokens`; the typed results in
:mod:`imgsync.client.models`. :meth:`Api.from_settings` wires them.

About retries of calls that may already have been applied (a connection reset after the request
was sent): most endpoints are safe to send twice. ``create`` answers the same pending upload (or an
instant reuse) again; ``upload_complete`` completes one preuploadID once; ``delete`` and ``move``
end in the same state. Not so: ``mkdir`` may answer code 1 "folder exists" to its own retry
(callers list the parent and take the folder by name), and ``offline_download`` / ``copy`` may
start a second task (harmless for the result: the service overwrites an image with the same etag
and size).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import requests

from imgsync.client.auth import TokenIssuer
from imgsync.client.limiter import RateLimiter, shared_limiter
from imgsync.client.models import (
    LAST_PAGE,
    AsyncResult,
    CompleteResult,
    CopyFailure,
    CopyFailures,
    CopyProgress,
    CopyTask,
    CreateResult,
    FileList,
    Folder,
    OfflineProgress,
    OfflineTask,
    RemoteFile,
    UploadPart,
    UploadUrl,
)
from imgsync.client.tokens import Token, TokenProvider, TokenStore, former_store_key
from imgsync.client.transport import Envelope, RetryPolicy, SliceData, Transport
from imgsync.config import DEFAULT_QPS, Settings
from imgsync.errors import ServerError

# The result types live in imgsync.client.models; they are named here too so that callers holding
# an Api can import what its methods return from the same place.
__all__ = [
    "Api",
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
    "Token",
    "UploadPart",
    "UploadUrl",
]

# "固定为1": the business type every image-bed call carries.
TYPE_IMAGE_BED = 1
# source/copy's sourceType: 1 = the user's 123pan cloud drive (the only source there is).
SOURCE_CLOUD_DRIVE = 1
# list: "最大不超过100".
MAX_LIST_LIMIT = 100

# --------------------------------------------------------------------------------------------------
# The client


def _file_id(value: Any) -> str:
    """A fileID as text; absent, empty and 0 (a number or "0") mean no file yet.

    The reference types fileIDs as strings, but the offline callback's example sends ``100`` and
    the cloud-drive flow answers 0 until a file exists ("fileID不为0时，上传完成").
    """
    if value is None or value == "" or value == 0 or value == "0":
        return ""
    return str(value)


def _timestamp(value: int | float | datetime | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


class Api:
    """The image-bed API for one account. Thread-safe; build it with :meth:`from_settings`."""

    def __init__(self, transport: Transport, *, tokens: TokenProvider) -> None:
        """``transport`` is authenticated by ``tokens`` (see :meth:`from_settings`, which wires
        both); the Api only keeps ``tokens`` to hand it to callers."""
        self._transport = transport
        #: Hands out the bearer token; ``login`` reads the stored and the current one from it.
        self.tokens = tokens

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> Api:
        """Wire transport, rate limiter, token store, issuer and provider from ``settings``.

        This is the one place the client's parts are put together: an unauthenticated transport
        (which the token issuer uses), the token provider over the store and the issuer, and the
        same transport authenticated by that provider, under an Api. Tokens are kept under
        ``settings.account.key`` in ``settings.data_dir``.

        ``session`` replaces the HTTP session (its owner closes it); ``sleep``/``clock`` drive
        backoff, rate limiting and the refresh interval; ``now`` (aware datetimes) judges token
        expiry; ``rng`` jitters the backoff. All default to the real ones.
        """
        account, network = settings.account, settings.network
        qps = {**DEFAULT_QPS, **network.qps}
        if clock is time.monotonic and sleep is time.sleep:
            limiter = shared_limiter(account.key, qps)
        else:
            limiter = RateLimiter(qps, clock=clock, sleep=sleep)
        unauthenticated = Transport(
            account.base_url,
            session=session,
            timeout=(network.connect_timeout, network.read_timeout),
            policy=RetryPolicy(network.max_attempts, network.backoff_initial, network.backoff_max),
            limiter=limiter,
            sleep=sleep,
            rng=rng,
        )
        tokens = TokenProvider(
            fetch=TokenIssuer(unauthenticated, account.client_id, account.client_secret).issue,
            store=TokenStore(settings.data_dir),
            key=account.key,
            # Earlier versions stored tokens fetched with a client id under another key.
            former_keys=[former_store_key(account.base_url, account.client_id)]
            if account.client_id
            else [],
            pasted=account.access_token,
            now=now,
            clock=clock,
        )
        return cls(unauthenticated.with_tokens(tokens), tokens=tokens)

    def close(self) -> None:
        """Release the connection pool."""
        self._transport.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- helpers -------------------------------------------------------------------------------

    def _post(
        self, endpoint: str, path: str, body: dict[str, Any], limit_key: str | None = None
    ) -> Envelope:
        return self._transport.call(endpoint, "POST", path, json=body, limit_key=limit_key)

    def _get(
        self, endpoint: str, path: str, query: dict[str, Any], limit_key: str | None = None
    ) -> Envelope:
        return self._transport.call(endpoint, "GET", path, params=query, limit_key=limit_key)

    # ---- upload --------------------------------------------------------------------------------

    def mkdir(self, name: str, parent_id: str = "", *, name_as_list: bool = False) -> list[Folder]:
        """POST /upload/v1/oss/file/mkdir ``{name, parentID, type}``; ``parent_id`` "" = root.

        ``name`` goes as a string, as the reference's example sends it, or with ``name_as_list``
        as ``[name]``, the type its table documents (``[]string``); which one the service takes
        is the caller's to find out. An existing name answers code 1 (an ApiError), also when a
        retry follows a lost answer. An empty list means the answer named no folder (not that
        none was made).
        """
        env = self._post(
            "mkdir",
            "/upload/v1/oss/file/mkdir",
            {
                "name": [name] if name_as_list else name,
                "parentID": parent_id,
                "type": TYPE_IMAGE_BED,
            },
        )
        with env.parsing():
            # An answer without the list (null, or data: null) names no folder: the caller finds
            # the one it asked for by name.
            made = (env.data or {}).get("list") or []
            return [Folder(str(f["filename"]), str(f["dirID"])) for f in made]

    def create(self, parent_file_id: str, filename: str, etag: str, size: int) -> CreateResult:
        """POST /upload/v1/oss/file/create ``{parentFileID, filename, etag, size, type}``.

        With ``reuse`` the preuploadID may be absent or "" (reference; api-facts), and a fileID of
        0 is no file (cloud-drive clients see 0 when reuse is not real): ``file_id`` is then "".
        """
        env = self._post(
            "create",
            "/upload/v1/oss/file/create",
            {
                "parentFileID": parent_file_id,
                "filename": filename,
                "etag": etag,
                "size": size,
                "type": TYPE_IMAGE_BED,
            },
        )
        with env.parsing():
            data = env.data
            return CreateResult(
                file_id=_file_id(data.get("fileID")),
                preupload_id=str(data.get("preuploadID") or ""),
                reuse=bool(data.get("reuse")),
                slice_size=int(data.get("sliceSize") or 0),
            )

    def get_upload_url(self, preupload_id: str, slice_no: int) -> UploadUrl:
        """POST /upload/v1/oss/file/get_upload_url ``{preuploadID, sliceNo}`` (slices count from 1).

        Ask just before the PUT: presigned URLs expire.
        """
        env = self._post(
            "get_upload_url",
            "/upload/v1/oss/file/get_upload_url",
            {"preuploadID": preupload_id, "sliceNo": slice_no},
        )
        with env.parsing():
            return UploadUrl(str(env.data["presignedURL"]), bool(env.data.get("isMultipart")))

    def put_slice(self, url: str, data: SliceData, length: int) -> None:
        """PUT one slice to its presigned URL, with no Authorization or Platform header.

        ``data`` is bytes, a seekable binary file positioned at the slice start, or a callable
        returning a fresh file-like; exactly ``length`` bytes are streamed (never read whole), and
        a retry starts the slice over. Re-PUTting a slice replaces it, so retries are safe.
        """
        self._transport.put(url, data, length)

    def list_upload_parts(self, preupload_id: str) -> list[UploadPart]:
        """POST /upload/v1/oss/file/list_upload_parts ``{preuploadID}``.

        Not in the image-bed reference (its flow mentions the step; the path follows the cloud-drive
        API): a guess, optional, and unneeded for single-slice files. Rate key ``upload_complete``
        (the settings have no key of its own).
        """
        env = self._post(
            "list_upload_parts",
            "/upload/v1/oss/file/list_upload_parts",
            {"preuploadID": preupload_id},
            limit_key="upload_complete",
        )
        with env.parsing():
            parts = (env.data or {}).get("parts") or []
            return [
                UploadPart(int(p["partNumber"]), int(p.get("size") or 0), str(p.get("etag") or ""))
                for p in parts
            ]

    def upload_complete(self, preupload_id: str) -> CompleteResult:
        """POST /upload/v1/oss/file/upload_complete ``{preuploadID}``.

        Code 20103 (still verifying) is raised as :class:`~imgsync.errors.StillVerifying`, not
        retried here: the caller treats it like ``async: true``. Completing a preuploadID twice
        leaves one file.

        Read leniently, as public clients of the real service do: a missing ``async`` (the
        cloud-drive v2 completion has none) or ``completed`` is false, ``data: null`` is "not
        done", and a fileID of 0 is no file (the reference: "fileID不为0时，上传完成").
        """
        env = self._post(
            "upload_complete", "/upload/v1/oss/file/upload_complete", {"preuploadID": preupload_id}
        )
        with env.parsing():
            data = env.data or {}
            return CompleteResult(
                is_async=bool(data.get("async")),
                completed=bool(data.get("completed")),
                file_id=_file_id(data.get("fileID")),
            )

    def upload_async_result(self, preupload_id: str) -> AsyncResult:
        """POST /upload/v1/oss/file/upload_async_result ``{preuploadID}``; poll ≥ 1 s apart.

        An answer without ``completed`` (or with ``data: null``) is "not yet"; code 20103 is
        raised as :class:`~imgsync.errors.StillVerifying`, also "not yet".
        """
        env = self._post(
            "upload_async_result",
            "/upload/v1/oss/file/upload_async_result",
            {"preuploadID": preupload_id},
        )
        with env.parsing():
            data = env.data or {}
            return AsyncResult(bool(data.get("completed")), _file_id(data.get("fileID")))

    # ---- browse --------------------------------------------------------------------------------

    def list_files(
        self,
        parent_file_id: str = "",
        limit: int = MAX_LIST_LIMIT,
        last_file_id: str | None = None,
        start_time: int | float | datetime | None = None,
        end_time: int | float | datetime | None = None,
    ) -> FileList:
        """POST /api/v1/oss/file/list ``{parentFileId, limit, type}`` + optional ``lastFileId``,
        ``startTime``, ``endTime``.

        ``parent_file_id`` "" = root; times are Unix seconds (or aware datetimes).
        """
        body: dict[str, Any] = {
            "parentFileId": parent_file_id,
            "limit": limit,
            "type": TYPE_IMAGE_BED,
        }
        if last_file_id is not None:
            body["lastFileId"] = last_file_id
        if start_time is not None:
            body["startTime"] = _timestamp(start_time)
        if end_time is not None:
            body["endTime"] = _timestamp(end_time)
        env = self._post("list", "/api/v1/oss/file/list", body)
        with env.parsing():
            # An empty folder may answer fileList: null (the reference answers an empty list so
            # in copy/fail) or data: null (the envelope's data is "any|null"): no files, last page.
            data = env.data or {}
            files = [RemoteFile.from_json(item) for item in data.get("fileList") or []]
            return FileList(files, str(data.get("lastFileId") or LAST_PAGE))

    def iter_files(self, parent_file_id: str = "") -> Iterator[RemoteFile]:
        """Every file and folder directly in ``parent_file_id``, paging through list."""
        last: str | None = None
        while True:
            page = self.list_files(parent_file_id, MAX_LIST_LIMIT, last)
            yield from page.files
            if page.is_last:
                return
            if page.last_file_id == last:  # a service that repeats itself would loop forever
                raise ServerError(0, "list returned the same lastFileId twice", endpoint="list")
            last = page.last_file_id

    def detail(self, file_id: str) -> RemoteFile:
        """GET /api/v1/oss/file/detail ``?fileID=``."""
        env = self._get("detail", "/api/v1/oss/file/detail", {"fileID": file_id})
        with env.parsing():
            return RemoteFile.from_json(env.data)

    # ---- manage --------------------------------------------------------------------------------

    def delete(self, file_ids: Sequence[str]) -> None:
        """POST /api/v1/oss/file/delete ``{fileIDs}`` (at most 100 ids)."""
        self._post("delete", "/api/v1/oss/file/delete", {"fileIDs": list(file_ids)})

    def move(self, file_ids: Sequence[str], to_parent_file_id: str) -> None:
        """POST /api/v1/oss/file/move ``{fileIDs, toParentFileID}`` (at most 100; "" = root)."""
        self._post(
            "move",
            "/api/v1/oss/file/move",
            {"fileIDs": list(file_ids), "toParentFileID": to_parent_file_id},
        )

    # ---- copy from the cloud drive -------------------------------------------------------------

    def copy(self, file_ids: Sequence[str], to_parent_file_id: str) -> CopyTask:
        """POST /api/v1/oss/source/copy ``{fileIDs, toParentFileID, sourceType, type}``.

        ``file_ids`` are cloud-drive ids (sent as strings, at most 100). Rate key ``copy``.
        """
        env = self._post(
            "copy",
            "/api/v1/oss/source/copy",
            {
                "fileIDs": [str(i) for i in file_ids],
                "toParentFileID": to_parent_file_id,
                "sourceType": SOURCE_CLOUD_DRIVE,
                "type": TYPE_IMAGE_BED,
            },
        )
        with env.parsing():
            return CopyTask(str(env.data["taskID"]))

    def copy_process(self, task_id: str) -> CopyProgress:
        """GET /api/v1/oss/source/copy/process ``?taskID=`` (rate key ``copy``)."""
        env = self._get(
            "copy_process", "/api/v1/oss/source/copy/process", {"taskID": task_id}, "copy"
        )
        with env.parsing():
            return CopyProgress(int(env.data["status"]), str(env.data.get("failMsg") or ""))

    def copy_fail(self, task_id: str, limit: int = MAX_LIST_LIMIT, page: int = 1) -> CopyFailures:
        """GET /api/v1/oss/source/copy/fail ``?taskID=&limit=&page=`` (rate key ``copy``)."""
        env = self._get(
            "copy_fail",
            "/api/v1/oss/source/copy/fail",
            {"taskID": task_id, "limit": limit, "page": page},
            "copy",
        )
        with env.parsing():
            data = env.data
            items = [
                CopyFailure(str(item["fileId"]), str(item.get("filename") or ""))
                for item in data.get("list") or []
            ]
            return CopyFailures(int(data.get("total") or 0), items)

    # ---- offline migration ---------------------------------------------------------------------

    def offline_download(
        self,
        url: str,
        file_name: str | None = None,
        business_dir_id: str | None = None,
        callback_url: str | None = None,
    ) -> OfflineTask:
        """POST /api/v1/oss/offline/download ``{url, type}`` + optional ``fileName``,
        ``businessDirID``, ``callBackUrl``.

        Without ``business_dir_id`` the service uses a folder "来自:离线下载" (never the root).
        Rate key ``offline``.
        """
        body: dict[str, Any] = {"url": url, "type": TYPE_IMAGE_BED}
        if file_name is not None:
            body["fileName"] = file_name
        if business_dir_id is not None:
            body["businessDirID"] = business_dir_id
        if callback_url is not None:
            body["callBackUrl"] = callback_url
        env = self._post("offline_download", "/api/v1/oss/offline/download", body, "offline")
        with env.parsing():
            return OfflineTask(int(env.data["taskID"]))

    def offline_process(self, task_id: int) -> OfflineProgress:
        """GET /api/v1/oss/offline/download/process ``?taskID=`` (rate key ``offline``)."""
        env = self._get(
            "offline_process",
            "/api/v1/oss/offline/download/process",
            {"taskID": task_id},
            "offline",
        )
        with env.parsing():
            return OfflineProgress(int(env.data["status"]), int(env.data.get("process") or 0))
