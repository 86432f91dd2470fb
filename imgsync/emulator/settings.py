"""The emulator's tunable behaviour, changed at run time through ``POST /_emulator/config``.

Every knob is here with its default and the reason for it, and every change is validated: a test
that misspells a key or sends a negative latency gets a clear error instead of a silent no-op.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024

# The reference's create example answers sliceSize 104857600 (100 MiB): most images are one slice.
DEFAULT_SLICE_SIZE = 100 * MIB
# api-facts: "A token lives 30 days".
DEFAULT_TOKEN_TTL_S = 30 * 24 * 3600.0
# GUESS: the presigned PUT URL lifetime is undocumented; S3 presigned URLs commonly live minutes.
DEFAULT_URL_TTL_S = 600.0
# GUESS: how long the offline downloader waits for a remote server; undocumented.
DEFAULT_OFFLINE_TIMEOUT_S = 30.0
# GUESS: the offline task status 3 "重试中" means the service retries; how often is undocumented.
DEFAULT_OFFLINE_RETRIES = 1

# What create, mkdir and list answer when the parent folder they name no longer exists (deleted in
# the console while a client still holds its ID). Undocumented (api-facts "Still unconfirmed" 1):
# "named" (GUESS, the default) refuses with code 1 and a message naming the parameter and the ID;
# "not_found" answers code 5066 (file does not exist) without naming it; "silent" makes list answer
# an empty last page and create and mkdir refuse with code 1 and a message that names nothing.
MISSING_PARENT_ANSWERS = ("named", "not_found", "silent")
# mkdir's ``name`` is typed []string but the reference's example sends a string (api-facts "Still
# unconfirmed" 2): "both" (GUESS, the default) takes either; "string" or "list" refuses the other
# form with code 1.
MKDIR_NAME_FORMS = ("both", "string", "list")


class SettingsError(ValueError):
    """A ``/_emulator/config`` change that cannot be applied; the message names the key."""


@dataclass(frozen=True)
class Settings:
    """One immutable snapshot of the tunables; ``updated`` makes a validated copy."""

    latency_ms: int = 0  # added to every API request, to exercise client timeouts and spacing
    slice_size: int = DEFAULT_SLICE_SIZE  # sliceSize answered by create (new uploads only)
    async_polls: int = 0  # 0: complete is synchronous; N: N answers of completed:false first
    verify_20103: int = 0  # how many times upload_complete answers code 20103 before proceeding
    qps: dict[str, float] = field(default_factory=dict)  # path (or "*") -> requests/second; 0 = off
    token_ttl_s: float = DEFAULT_TOKEN_TTL_S  # lifetime of newly issued tokens
    url_ttl_s: float = DEFAULT_URL_TTL_S  # lifetime of newly issued presigned PUT URLs
    self_domain: str | None = None  # userSelfURL prefix; None = same as downloadURL, "" = empty
    offline_timeout_s: float = DEFAULT_OFFLINE_TIMEOUT_S  # per offline fetch attempt
    offline_retries: int = DEFAULT_OFFLINE_RETRIES  # extra attempts after a network failure
    hold_tasks: bool = False  # True parks offline and copy tasks before they start working
    refuse_platform_on_put: bool = True  # the reference says not to send Platform on the PUT
    # 0: the content review decides when a file is made. N: a new file shows the pending status
    # for N seconds, then the review's verdict (api-facts "Still unconfirmed" 3).
    review_delay_s: float = 0.0
    # The share (0..1) of new files without a verdict of their own that the review rejects,
    # chosen by content (the etag), so the same bytes always get the same verdict.
    review_reject_share: float = 0.0
    missing_parent: str = "named"  # one of MISSING_PARENT_ANSWERS
    mkdir_name: str = "both"  # one of MKDIR_NAME_FORMS

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        """A copy with ``changes`` applied, or :class:`SettingsError` naming the first bad key."""
        if not isinstance(changes, Mapping):
            raise SettingsError("config must be a JSON object")
        known = {f.name for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise SettingsError(f"unknown config key {key!r}; known: {sorted(known)}")
            clean[key] = _validate(key, value)
        return dataclasses.replace(self, **clean)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Rebuild persisted settings, ignoring keys an older or newer emulator wrote."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls().updated({k: v for k, v in data.items() if k in known})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate(key: str, value: Any) -> Any:
    if key in ("latency_ms", "async_polls", "verify_20103", "offline_retries"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SettingsError(f"{key}: expected an integer >= 0, got {value!r}")
        return value
    if key == "slice_size":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SettingsError(f"{key}: expected an integer >= 1, got {value!r}")
        return value
    if key == "review_delay_s":
        if not _is_number(value) or value < 0:
            raise SettingsError(f"{key}: expected a number >= 0, got {value!r}")
        return float(value)
    if key == "review_reject_share":
        if not _is_number(value) or not 0 <= value <= 1:
            raise SettingsError(f"{key}: expected a number from 0 to 1, got {value!r}")
        return float(value)
    if key in ("missing_parent", "mkdir_name"):
        choices = MISSING_PARENT_ANSWERS if key == "missing_parent" else MKDIR_NAME_FORMS
        if value not in choices:
            raise SettingsError(f"{key}: expected one of {list(choices)}, got {value!r}")
        return value
    if key in ("token_ttl_s", "url_ttl_s", "offline_timeout_s"):
        if not _is_number(value) or value <= 0:
            raise SettingsError(f"{key}: expected a number > 0, got {value!r}")
        return float(value)
    if key == "self_domain":
        if value is not None and not isinstance(value, str):
            raise SettingsError(f"{key}: expected a string or null, got {value!r}")
        return value.rstrip("/") if value else value
    if key in ("hold_tasks", "refuse_platform_on_put"):
        if not isinstance(value, bool):
            raise SettingsError(f"{key}: expected true or false, got {value!r}")
        return value
    if key == "qps":
        return _validate_qps(value)
    raise SettingsError(f"unknown config key {key!r}")  # pragma: no cover - guarded by caller


def _validate_qps(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise SettingsError('qps: expected an object like {"/api/v1/oss/file/list": 2}')
    clean: dict[str, float] = {}
    for path, rate in value.items():
        if not (path == "*" or (isinstance(path, str) and path.startswith("/"))):
            raise SettingsError(
                f"qps: keys are endpoint paths starting with / or '*', got {path!r}"
            )
        if not _is_number(rate) or rate < 0:
            raise SettingsError(f"qps[{path!r}]: expected a number >= 0, got {rate!r}")
        clean[path] = float(rate)
    return clean
