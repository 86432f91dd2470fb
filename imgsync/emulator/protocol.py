"""The wire protocol every emulated endpoint shares: envelope, codes, times and strict validation.

Kept in one place so that every endpoint answers in exactly the same envelope and rejects a missing
field, a wrongly typed field or a ``type`` other than 1 in exactly the same way. A client that gets
a field's name, casing or JSON type wrong must fail here loudly, not pass silently.

Written from the 123pan image-bed reference on its own: nothing here is shared with the client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

# The service reports every time in China Standard Time (UTC+8).
CHINA_TZ = timezone(timedelta(hours=8))

# Body codes (api-facts "Envelope and codes").
CODE_OK = 0
CODE_BAD_REQUEST = 1  # the generic business error: bad parameter, duplicate folder, ...
CODE_UNAUTHORIZED = 401
CODE_TOO_MANY_REQUESTS = 429
CODE_FILE_NOT_FOUND = 5066
CODE_TRAFFIC_EXCEEDED = 5113
CODE_STILL_VERIFYING = 20103

# Message texts. The ones marked "seen" were observed in real responses; the rest are invented.
# GUESS: every message not marked "seen" is our own wording; clients must switch on codes only.
MSG_OK = "ok"
MSG_TOO_MANY_REQUESTS = "请求太频繁"  # doc
MSG_FOLDER_EXISTS = "该目录下已经有同名文件夹,无法进行创建"  # seen
MSG_EMPTY_PREUPLOAD_ID = "预上传ID不能为空"  # seen
MSG_STILL_VERIFYING = "文件正在校验中,请间隔1秒后再试"  # seen
MSG_UPLOAD_FAILED = "文件上传失败"  # seen
MSG_FILE_NOT_FOUND = "文件不存在"
MSG_TRAFFIC_EXCEEDED = "流量已超出限制"
MSG_TOKEN_INVALID = "access_token无效或已过期"  # GUESS: real text unknown
MSG_BAD_CREDENTIALS = "clientID or clientSecret invalid"  # GUESS: real text unknown
MSG_BAD_PARAMETER = "参数错误"  # GUESS: a refusal that names nothing (missing_parent "silent")

# What a fault rule's ``code:NNN`` action says, so injected codes read like real ones.
MESSAGES_BY_CODE: dict[int, str] = {
    CODE_UNAUTHORIZED: MSG_TOKEN_INVALID,
    CODE_TOO_MANY_REQUESTS: MSG_TOO_MANY_REQUESTS,
    CODE_FILE_NOT_FOUND: MSG_FILE_NOT_FOUND,
    CODE_TRAFFIC_EXCEEDED: MSG_TRAFFIC_EXCEEDED,
    CODE_STILL_VERIFYING: MSG_STILL_VERIFYING,
}

# Real trace ids look like "<uuid>_kong-db-5898fdd8c6-d258b": a uuid plus the gateway pod name.
TRACE_SUFFIX = "_kong-db-imgsync-emulator"

# The reference's "not more than 100" applies to list limits and to fileIDs arrays alike.
MAX_PAGE_SIZE = 100
MAX_IDS_PER_CALL = 100

_INTEGER_TEXT = re.compile(r"^-?[0-9]+$")


class ApiError(Exception):
    """A business error: HTTP ``http_status`` (200 unless said) with ``code`` in the body."""

    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def bad_request(message: str) -> ApiError:
    """Code 1, the service's catch-all for a request it refuses."""
    return ApiError(CODE_BAD_REQUEST, message)


def missing_parent(mode: str, param: str, parent_id: str) -> ApiError:
    """The refusal of create or mkdir whose parent folder ``parent_id`` (sent as ``param``) does
    not exist, as the ``missing_parent`` setting words it. GUESS: the real answer is undocumented
    (api-facts "Still unconfirmed" 1); "named" names the parameter and the ID."""
    if mode == "not_found":
        return ApiError(CODE_FILE_NOT_FOUND, MSG_FILE_NOT_FOUND)
    if mode == "silent":
        return bad_request(MSG_BAD_PARAMETER)
    return bad_request(f"{param}: no folder {parent_id!r}")


def new_trace_id() -> str:
    """A unique ``x-traceID`` for one response."""
    return f"{uuid.uuid4()}{TRACE_SUFFIX}"


def envelope(code: int, message: str, data: Any) -> dict[str, Any]:
    """The one response shape of every API endpoint."""
    return {"code": code, "message": message, "data": data, "x-traceID": new_trace_id()}


def china_time(timestamp: float) -> str:
    """``createAt``/``updateAt`` form: "YYYY-MM-DD HH:MM:SS" in China time, no zone."""
    return datetime.fromtimestamp(timestamp, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def rfc3339_china(timestamp: float) -> str:
    """``expiredAt`` form: RFC 3339 with the +08:00 offset, e.g. 2025-03-23T15:48:37+08:00."""
    return datetime.fromtimestamp(int(timestamp), CHINA_TZ).isoformat(timespec="seconds")


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_json_integer(value: Any) -> bool:
    """True for a JSON integer; booleans are not numbers here, and neither is 3.0."""
    return isinstance(value, int) and not isinstance(value, bool)


class Params:
    """Strict access to one request's parameters: a JSON body, or a query string.

    Query strings carry only text, so for them numbers are parsed from decimal text; a JSON body
    must carry real JSON numbers and strings, as the reference types them.
    """

    def __init__(self, source: Mapping[str, Any], *, from_query: bool = False) -> None:
        self._source = source
        self._from_query = from_query

    def has(self, name: str) -> bool:
        return name in self._source and self._source[name] is not None

    def raw(self, name: str) -> Any:
        return self._source.get(name)

    def required_str(self, name: str, *, allow_empty: bool = True) -> str:
        if not self.has(name):
            raise bad_request(f"{name}: required parameter missing")
        value = self.optional_str(name)
        assert value is not None
        if not allow_empty and value == "":
            raise bad_request(f"{name}: must not be empty")
        return value

    def optional_str(self, name: str) -> str | None:
        if not self.has(name):
            return None
        value = self._source[name]
        if not isinstance(value, str):
            raise bad_request(f"{name}: expected string, got {json_type_name(value)}")
        return value

    def required_int(self, name: str, *, low: int | None = None, high: int | None = None) -> int:
        if not self.has(name):
            raise bad_request(f"{name}: required parameter missing")
        value = self.optional_int(name, low=low, high=high)
        assert value is not None
        return value

    def optional_int(
        self, name: str, *, low: int | None = None, high: int | None = None
    ) -> int | None:
        if not self.has(name):
            return None
        value = self._source[name]
        if self._from_query:
            if not isinstance(value, str) or not _INTEGER_TEXT.match(value):
                raise bad_request(f"{name}: expected an integer, got {value!r}")
            value = int(value)
        elif not is_json_integer(value):
            raise bad_request(f"{name}: expected integer number, got {json_type_name(value)}")
        if low is not None and value < low:
            raise bad_request(f"{name}: must be at least {low}, got {value}")
        if high is not None and value > high:
            raise bad_request(f"{name}: must be at most {high}, got {value}")
        return value

    def require_type_one(self) -> None:
        """The reference's ``type`` "固定为1": required, a number, and exactly 1."""
        value = self.required_int("type")
        if value != 1:
            raise bad_request(f"type: must be 1, got {value}")

    def id_list(self, name: str) -> list[str]:
        """A required array of 1..100 string ids (delete, move, copy)."""
        if not self.has(name):
            raise bad_request(f"{name}: required parameter missing")
        value = self._source[name]
        if not isinstance(value, list):
            raise bad_request(f"{name}: expected array, got {json_type_name(value)}")
        if not value:
            raise bad_request(f"{name}: must not be empty")
        if len(value) > MAX_IDS_PER_CALL:
            raise bad_request(f"{name}: at most {MAX_IDS_PER_CALL} ids, got {len(value)}")
        for item in value:
            if not isinstance(item, str):
                raise bad_request(f"{name}: expected array of strings, got {json_type_name(item)}")
        return list(value)
