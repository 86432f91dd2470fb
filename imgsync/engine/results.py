"""What the engine answers for each item: its kind, what happened to it, and its link.

The words are docs/contract.md's, defined here once for every job that reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from imgsync.errors import EXIT_OK

# What an image reference or upload item is (docs/contract.md): a local file, a remote URL, a link
# already on the image bed, or a data: URI.
Kind = Literal["local", "remote", "hosted", "data"]
LOCAL: Kind = "local"
REMOTE: Kind = "remote"
HOSTED: Kind = "hosted"
DATA: Kind = "data"

# What happened to it (docs/contract.md).
Status = Literal["uploaded", "reused", "cached", "migrated", "skipped", "failed"]
UPLOADED: Status = "uploaded"  # bytes sent
REUSED: Status = "reused"  # the service already had them (instant upload)
CACHED: Status = "cached"  # answered from the local index, no request
MIGRATED: Status = "migrated"  # a remote URL fetched by the service's offline download
SKIPPED: Status = "skipped"  # left alone on purpose (already hosted, policy)
FAILED: Status = "failed"  # ``error`` says why


@dataclass(frozen=True)
class UploadResult:
    """What happened to one item given to the uploader.

    ``status``: ``uploaded`` (bytes sent), ``reused`` (the service already had them: instant upload,
    or an earlier run's file found by name), ``cached`` (answered from the local index, no request),
    ``migrated`` (a remote URL fetched by the service's offline download), ``skipped`` (already on
    the image bed), ``failed`` (``error`` says why). ``exit_code`` is the status the command line
    maps a failure to: 4 when the service could not be reached or kept failing, else 1.
    """

    input: str
    kind: Kind
    status: Status
    url: str | None = None
    md5: str | None = None
    file_id: str | None = None
    error: str | None = None
    exit_code: int = EXIT_OK

    @property
    def ok(self) -> bool:
        """Whether the item has a link that serves (or was left alone on purpose)."""
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        """The object ``imgsync upload --json`` prints for this item (docs/contract.md)."""
        return {
            "input": self.input,
            "ok": self.ok,
            "url": self.url,
            "md5": self.md5,
            "fileID": self.file_id,
            "error": self.error,
            "kind": self.kind,
            "status": self.status,
        }
