"""The upload flow: create, get_upload_url, the presigned PUT, upload_complete, upload_async_result.

What it enforces, because a real client must cope with it:

- instant upload (``reuse: true``) when an object with the same etag and size exists on the bed;
- slices cut at exactly ``sliceSize``, each PUT with the exact Content-Length and no Authorization;
- presigned URLs that expire;
- MD5 verification of the assembled bytes at completion (mismatch: ``文件上传失败``);
- completion that may be asynchronous (``async_polls``) or answer 20103 first (``verify_20103``);
- completion that is idempotent per preuploadID, so a retried complete never makes a second object.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from .app import Call, EmulatorApp
from .media import MAX_FILE_SIZE, filename_problem
from .model import PHASE_DONE, PHASE_FAILED, PHASE_OPEN, PHASE_VERIFYING, Grant, Upload
from .protocol import (
    CODE_BAD_REQUEST,
    CODE_STILL_VERIFYING,
    MSG_EMPTY_PREUPLOAD_ID,
    MSG_STILL_VERIFYING,
    MSG_UPLOAD_FAILED,
    ApiError,
    bad_request,
    missing_parent,
)

ETAG_PATTERN = re.compile(r"^[0-9a-f]{32}$")
# The reference's preuploadID is a long base64 text ("h1Kiaaaaaaac/0IDD87I..."); same flavour here,
# slashes and plus signs included, to catch clients that put it in a URL unescaped.
PREUPLOAD_ID_BYTES = 96
PUT_PATH_PREFIX = "/_s3/"
# Query parameters of a presigned PUT URL (S3's names).
SIGNATURE_PARAM = "X-Amz-Signature"
EXPIRES_PARAM = "X-Amz-Expires"


class S3Error(Exception):
    """An answer of the storage (not the API) side: HTTP status and an S3-style XML body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
        ).encode()


@dataclass(frozen=True)
class PutTarget:
    """A checked PUT: the slice it writes and how many bytes it must carry."""

    preupload_id: str
    key: str
    slice_no: int
    length: int


def _reused(file_id: str, slice_size: int) -> dict[str, Any]:
    """The instant-upload answer; api-facts [client]: preuploadID may be "" rather than absent."""
    return {"fileID": file_id, "reuse": True, "preuploadID": "", "sliceSize": slice_size}


def create(call: Call) -> dict[str, Any]:
    params, app = call.params, call.app
    state = app.state
    params.require_type_one()
    parent_id = params.required_str("parentFileID")
    filename = params.required_str("filename")
    etag = params.required_str("etag")
    size = params.required_int("size")
    problem = filename_problem(filename)
    if problem:
        raise bad_request(f"filename: {problem}")
    if not ETAG_PATTERN.match(etag):
        raise bad_request("etag: must be the MD5 as 32 lowercase hex digits")
    if size <= 0:
        raise bad_request("size: must be greater than 0")
    if size > MAX_FILE_SIZE:
        raise bad_request(f"size: at most {MAX_FILE_SIZE} bytes")
    parent = state.folder(parent_id)
    if parent is None:
        raise missing_parent(state.settings.missing_parent, "parentFileID", parent_id)
    slice_size = app.settings.slice_size
    clash = state.child_named(parent.file_id, filename)
    if clash is not None:
        if not clash.is_folder and clash.etag == etag and clash.size == size:
            # GUESS: the same name with the same bytes is already this upload: reuse the object.
            return _reused(clash.file_id, slice_size)
        # GUESS: the reference says names must not repeat ("不能重名"); the real answer is unknown.
        raise bad_request(f"filename: 该目录下已经有同名文件: {filename}")
    if state.file_with_content(etag, size) is not None and state.blobs.has_blob(etag):
        return _reused(state.add_file(parent.file_id, filename, etag, size).file_id, slice_size)
    upload = Upload(
        preupload_id=base64.b64encode(secrets.token_bytes(PREUPLOAD_ID_BYTES)).decode(),
        key=uuid.uuid4().hex,
        parent_id=parent.file_id,
        filename=filename,
        etag=etag,
        size=size,
        slice_size=slice_size,
        created_at=state.clock(),
    )
    state.uploads[upload.preupload_id] = upload
    state.mark_dirty()
    return {
        "fileID": "",
        "reuse": False,
        "preuploadID": upload.preupload_id,
        "sliceSize": slice_size,
    }


def _upload_named(call: Call) -> Upload:
    preupload_id = call.params.required_str("preuploadID")
    if preupload_id == "":
        raise ApiError(CODE_BAD_REQUEST, MSG_EMPTY_PREUPLOAD_ID)
    upload = call.app.state.uploads.get(preupload_id)
    if upload is None:
        raise bad_request("preuploadID: no such upload")
    return upload


def get_upload_url(call: Call) -> dict[str, Any]:
    app, state = call.app, call.app.state
    upload = _upload_named(call)
    slice_no = call.params.required_int("sliceNo")
    if upload.phase != PHASE_OPEN:
        raise bad_request("preuploadID: this upload is already completed")
    if not 1 <= slice_no <= upload.slice_count:
        raise bad_request(f"sliceNo: must be 1..{upload.slice_count}, got {slice_no}")
    now = state.clock()
    for token in [t for t, g in state.grants.items() if g.expires_at <= now]:
        del state.grants[token]
    grant = Grant(
        secrets.token_urlsafe(24), upload.preupload_id, slice_no, now + app.settings.url_ttl_s
    )
    state.grants[grant.token] = grant
    state.mark_dirty()
    # Shaped like the reference's example (an S3 presigned URL): the object's place in the path,
    # the credential in the query, so a client that logs URLs by path alone leaks nothing.
    # GUESS: the path's parts mimic the example; only the signature is checked.
    url = (
        f"{app.base_url}{PUT_PATH_PREFIX}{upload.etag[:8]}/{upload.key}-{slice_no}/{upload.etag}"
        f"?{EXPIRES_PARAM}={int(grant.expires_at)}&{SIGNATURE_PARAM}={grant.token}"
    )
    # api-facts [client]: isMultipart is false when the file is one slice.
    return {"presignedURL": url, "isMultipart": upload.slice_count > 1}


def list_upload_parts(call: Call) -> dict[str, Any]:
    """GUESS: the cloud-drive endpoint; unconfirmed for the image bed (api-facts)."""
    upload = _upload_named(call)
    # Reference step 4: "如果您的文件小于sliceSize,该操作将会返回空值".
    if upload.size < upload.slice_size:
        return {"parts": []}
    parts = sorted(upload.slices.items(), key=lambda item: int(item[0]))
    return {
        "parts": [{"partNumber": n, "size": size, "etag": md5} for n, (size, md5) in parts],
    }


def _verify(app: EmulatorApp, upload: Upload) -> None:
    """Check the assembled bytes against the declared etag; start the (maybe async) answer."""
    state = app.state
    md5, total = state.blobs.md5_of_slices(upload.key, upload.slice_count)
    upload.verified_ok = md5 == upload.etag and total == upload.size
    if upload.verified_ok:
        state.blobs.promote_slices(upload.key, upload.slice_count, md5)
    else:
        state.blobs.drop_upload(upload.key)
    upload.phase = PHASE_VERIFYING
    upload.polls_left = app.settings.async_polls
    upload.busy_answers_left = app.settings.verify_20103
    for token in [t for t, g in state.grants.items() if g.preupload_id == upload.preupload_id]:
        del state.grants[token]
    state.mark_dirty()


def _fail(app: EmulatorApp, upload: Upload) -> ApiError:
    upload.phase = PHASE_FAILED
    upload.verified_ok = False
    app.state.release_blob(upload.etag)
    app.state.mark_dirty()
    return ApiError(CODE_BAD_REQUEST, MSG_UPLOAD_FAILED)


def _finish(app: EmulatorApp, upload: Upload) -> str:
    """Make the object (once) and return its fileID, or raise 文件上传失败."""
    state = app.state
    if upload.phase == PHASE_DONE:
        return upload.file_id
    if upload.phase == PHASE_FAILED or not upload.verified_ok:
        raise _fail(app, upload)
    parent = state.folder(upload.parent_id)
    if parent is None:
        raise _fail(app, upload)  # the target folder was deleted meanwhile
    clash = state.child_named(parent.file_id, upload.filename)
    if clash is not None:
        if clash.is_folder or clash.etag != upload.etag or clash.size != upload.size:
            raise _fail(app, upload)  # GUESS: a same-name object appeared meanwhile
        upload.file_id = clash.file_id  # GUESS: the same bytes under the same name: that object
    else:
        upload.file_id = state.add_file(
            parent.file_id, upload.filename, upload.etag, upload.size
        ).file_id
    upload.phase = PHASE_DONE
    state.mark_dirty()
    return upload.file_id


def upload_complete(call: Call) -> dict[str, Any]:
    app = call.app
    upload = _upload_named(call)
    if upload.phase == PHASE_DONE:
        return {"async": False, "completed": True, "fileID": upload.file_id}
    if upload.phase == PHASE_FAILED:
        raise ApiError(CODE_BAD_REQUEST, MSG_UPLOAD_FAILED)
    if upload.phase == PHASE_OPEN:
        missing = upload.missing_slices()
        if missing:
            # GUESS: the real text for completing with slices missing is unknown.
            raise bad_request(f"slices not uploaded (or of the wrong size): {missing}")
        _verify(app, upload)
    # GUESS: 20103 comes from upload_complete only (where it was seen), before any async answer.
    if upload.busy_answers_left > 0:
        upload.busy_answers_left -= 1
        app.state.mark_dirty()
        raise ApiError(CODE_STILL_VERIFYING, MSG_STILL_VERIFYING)
    if upload.polls_left == 0:
        return {"async": False, "completed": True, "fileID": _finish(app, upload)}
    return {"async": True, "completed": False, "fileID": ""}


def upload_async_result(call: Call) -> dict[str, Any]:
    app = call.app
    upload = _upload_named(call)
    if upload.phase == PHASE_OPEN:
        raise bad_request("preuploadID: upload_complete has not been called yet")
    if upload.phase == PHASE_FAILED:
        raise ApiError(CODE_BAD_REQUEST, MSG_UPLOAD_FAILED)
    # GUESS: async_polls = N gives N answers of completed:false, then completed:true.
    if upload.phase == PHASE_VERIFYING and upload.polls_left > 0:
        upload.polls_left -= 1
        app.state.mark_dirty()
        return {"completed": False, "fileID": ""}
    return {"completed": True, "fileID": _finish(app, upload)}


def check_put(
    app: EmulatorApp, token: str, headers: Mapping[str, str], content_length: str | None
) -> PutTarget:
    """Everything a presigned PUT is checked for before its body is read; raises S3Error."""
    state = app.state
    if headers.get("Authorization") is not None:
        raise S3Error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
        )
    if app.settings.refuse_platform_on_put and headers.get("Platform") is not None:
        # GUESS: the reference only says "do not send"; refusing makes a leaking client visible.
        raise S3Error(400, "InvalidArgument", "the Platform header must not be sent to storage")
    grant = state.grants.get(token)
    if grant is None:
        raise S3Error(403, "AccessDenied", "unknown or revoked upload URL")
    if grant.expires_at <= state.clock():
        raise S3Error(403, "AccessDenied", "Request has expired")
    upload = state.uploads.get(grant.preupload_id)
    if upload is None or upload.phase != PHASE_OPEN:
        # GUESS: like S3's UploadPart after CompleteMultipartUpload.
        raise S3Error(404, "NoSuchUpload", "the upload is completed or does not exist")
    if content_length is None:
        raise S3Error(411, "MissingContentLength", "You must provide the Content-Length header")
    expected = upload.expected_slice_length(grant.slice_no)
    if not content_length.isdigit() or int(content_length) != expected:
        raise S3Error(
            400,
            "InvalidArgument",
            f"Content-Length must be {expected} for slice {grant.slice_no}, got {content_length}",
        )
    return PutTarget(upload.preupload_id, upload.key, grant.slice_no, expected)


def record_slice(app: EmulatorApp, target: PutTarget, md5: str) -> None:
    """Note a received slice; a re-PUT of the same number replaces the earlier one."""
    upload = app.state.uploads.get(target.preupload_id)
    if upload is None or upload.phase != PHASE_OPEN:
        app.state.blobs.drop_upload(target.key)  # the late bytes must not linger
        raise S3Error(404, "NoSuchUpload", "the upload was completed while this slice arrived")
    upload.slices[str(target.slice_no)] = [target.length, md5]
    app.state.mark_dirty()
