"""The PicGo server protocol, apart from HTTP: what an upload request asks for, and the answer.

Editors speak it to PicGo, PicList and now imgsync (docs/users.md): ``POST /upload`` with
``{"list": ["/abs/a.png", "https://…"]}``, with an empty body (or an empty or missing ``list``) for
"the image on the clipboard", or as ``multipart/form-data`` carrying the files themselves
(PicGo reads the field ``files``, the Obsidian "Image auto upload" plugin sends ``list``, PicList
takes any: so does imgsync). The answer:

``{"success": true, "result": ["url1", "", "url3"], "fullResult": [{…}, {…}, {…}]}``

``result`` holds one entry per input, in order, an empty string where that item failed, so a client
that pairs links with its images by position never puts a link on the wrong image (complaint 2 of
docs/users.md). ``fullResult`` gives each item's details and error: the fields of ``imgsync upload
--json`` plus PicList's ``imgUrl`` and ``fileName``. ``success`` is false only when no item
succeeded (``message`` then says why), or when the request itself was wrong (``result`` empty).

Files sent in a form are written to a private temporary folder (0700), each under its own
numbered subfolder so equal names never collide, and removed when the request is answered.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgsync.errors import ImgsyncError
from imgsync.jobs.clip import ClipItem, Upload, clipboard_items, item_name
from imgsync.links import is_url

if TYPE_CHECKING:
    from imgsync.desktop.clipboard import Clipboard
    from imgsync.engine.results import UploadResult

log = logging.getLogger(__name__)

# What a file sent without a usable name is called (the engine sniffs its real type anyway).
FALLBACK_FILE_NAME = "image"
_PATH_SEPARATORS = re.compile(r"[/\\]")


class BadRequest(ImgsyncError):
    """The request is not one the protocol knows; the message says what was expected."""


@dataclass(frozen=True)
class FormFile:
    """One file part of a ``multipart/form-data`` body: its name as sent, and its bytes."""

    name: str
    data: bytes


def parse_list(body: bytes) -> list[str] | None:
    """The paths and URLs of a JSON upload body, or None for "the clipboard" (an empty body, or an
    empty or missing ``list``, as PicGo reads it)."""
    if not body.strip():
        return None
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest('the body is not JSON: send {"list": ["/path/a.png", …]}') from None
    if not isinstance(document, dict):
        raise BadRequest('the body must be a JSON object: {"list": ["/path/a.png", …]}')
    items = document.get("list")
    if items is None or items == []:
        return None
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise BadRequest('"list" must be a list of paths or URLs (non-empty strings)')
    return items


def parse_form(content_type: str, body: bytes) -> list[FormFile]:
    """The file parts of a ``multipart/form-data`` body, in order, whatever their field name.

    Parts without a file name (plain form fields) are skipped. Raises :class:`BadRequest` when the
    body is not a form or holds no file.
    """
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if message.get_boundary() is None:
        raise BadRequest("the form cannot be read: multipart/form-data needs its boundary")
    parts = message.iter_parts() if message.is_multipart() else []  # type: ignore[attr-defined]
    files = []
    for part in parts:
        name = part.get_filename()
        if name is None:
            continue
        data = part.get_payload(decode=True) or b""
        files.append(FormFile(_readable(name), data))
    if not files:
        raise BadRequest("the form holds no file (send the images as file fields, e.g. files)")
    return files


def _readable(name: str) -> str:
    """A part's file name as text: raw UTF-8 bytes in the header (browsers and Node send them so)
    reach us as surrogate escapes."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return name.encode("utf-8", "replace").decode("utf-8")


def safe_file_name(name: str) -> str:
    """The last component of a sent file name, never empty, ``.``, ``..`` or holding a NUL.

    The Obsidian plugin sends a whole local path as the name; only its last part is kept, and a
    name can never point outside the request's folder.
    """
    last = _PATH_SEPARATORS.split(name.replace("\0", ""))[-1].strip()
    return FALLBACK_FILE_NAME if last in ("", ".", "..") else last


def response(items: Sequence[ClipItem], results: Sequence[UploadResult]) -> dict[str, Any]:
    """The protocol's answer for ``results`` (one per item, in order)."""
    full = [_details(item, result) for item, result in zip(items, results, strict=True)]
    answer: dict[str, Any] = {
        "success": any(result.linked for result in results),
        "result": [(result.url or "") if result.linked else "" for result in results],
        "fullResult": full,
    }
    failed = [entry for entry in full if not entry["ok"]]
    if failed:
        first = failed[0]
        answer["message"] = (
            f"{len(failed)} of {len(full)} failed; {first['input']}: {first['error']}"
        )
    return answer


def _details(item: ClipItem, result: UploadResult) -> dict[str, Any]:
    """One ``fullResult`` entry: what ``imgsync upload --json`` says of an item, plus PicList's
    ``imgUrl`` and ``fileName`` (the Obsidian plugin keeps these to delete images later)."""
    return {
        "input": _shown(item, result),
        "ok": result.linked,
        "url": result.url,
        "md5": result.md5,
        "fileID": result.file_id,
        "error": None if result.linked else result.why_no_link,
        "kind": result.kind,
        "status": result.status,
        "imgUrl": result.url or "",
        "fileName": item.name,
    }


def _shown(item: ClipItem, result: UploadResult) -> str:
    """What ``input`` says about an item: what the client sent, not our temporary path."""
    return item.name if item.source == "image" else result.input


def failure(message: str) -> dict[str, Any]:
    """The protocol's answer for a request that uploaded nothing."""
    return {"success": False, "result": [], "message": message}


class PicGoUploads:
    """Answers upload requests: by path list, from the clipboard, from form files.

    ``upload`` is the one collaborator that uploads (a long-lived engine session can stand in for
    the default); ``clipboard`` makes the clipboard on first need, so a server on a machine without
    a desktop still serves path lists and forms.
    """

    def __init__(
        self,
        upload: Upload,
        clipboard: Callable[[], Clipboard],
        *,
        temp_root: str | None = None,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._upload = upload
        self._clipboard = clipboard
        self._temp_root = temp_root
        self._now = now

    def paths(self, items: Sequence[str]) -> dict[str, Any]:
        """Upload paths and URLs as the client named them."""
        found = [
            ClipItem(text, item_name(text), "url" if is_url(text) else "path") for text in items
        ]
        return response(found, self._upload(list(items)))

    def clipboard(self) -> dict[str, Any]:
        """Upload what the clipboard holds (an image, or image paths or URLs)."""
        with tempfile.TemporaryDirectory(prefix="imgsync-serve-", dir=self._temp_root) as folder:
            found = clipboard_items(self._clipboard().read(), Path(folder), now=self._now)
            return response(found, self._upload([item.item for item in found]))

    def files(self, files: Sequence[FormFile]) -> dict[str, Any]:
        """Upload files sent in a form, from a private folder removed afterwards."""
        folder = tempfile.mkdtemp(prefix="imgsync-serve-", dir=self._temp_root)
        try:
            found = []
            for index, sent in enumerate(files):
                name = safe_file_name(sent.name)
                part = os.path.join(folder, str(index))
                os.mkdir(part, 0o700)
                path = os.path.join(part, name)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(sent.data)
                found.append(ClipItem(path, name, "image"))
            return response(found, self._upload([item.item for item in found]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
