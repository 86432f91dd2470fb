"""What the engine answers for each item: its kind, what happened to it, and its link.

The words are docs/contract.md's, defined once in :mod:`imgsync.engine.words` for every job that
reports them (sync, upload, and the front ends built on them) and re-exported here. How a result
is shown (a line, JSON) and what exit status a run of them maps to is the front end's business,
not the engine's: a result says what happened in words and flags, never in exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgsync.engine.words import (  # re-exported: the words are defined there
    CACHED,
    DATA,
    FAILED,
    HOSTED,
    LOCAL,
    MIGRATED,
    REMOTE,
    REUSED,
    SKIPPED,
    UPLOADED,
    Kind,
    Sent,
    Status,
    Stored,
)
from imgsync.errors import EXIT_UNREACHABLE, ImgsyncError

__all__ = [
    "CACHED",
    "DATA",
    "FAILED",
    "HOSTED",
    "LOCAL",
    "MIGRATED",
    "REMOTE",
    "REUSED",
    "SKIPPED",
    "UPLOADED",
    "Kind",
    "Sent",
    "Status",
    "Stored",
    "UploadResult",
    "failed_result",
]


@dataclass(frozen=True)
class UploadResult:
    """What happened to one item given to the uploader.

    ``status``: ``uploaded`` (bytes sent), ``reused`` (the service already had them: instant upload,
    or an earlier run's file found by name), ``cached`` (answered from the local index, no request),
    ``migrated`` (a remote URL fetched by the service's offline download), ``skipped`` (already on
    the image bed), ``failed`` (``error`` says why). ``unreachable`` marks a failure because the
    service could not be reached or kept failing (after the transport's retries): a front end
    tells that apart from a failure of the item itself.
    """

    input: str
    kind: Kind
    status: Status
    url: str | None = None
    md5: str | None = None
    file_id: str | None = None
    error: str | None = None
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        """Whether the item has a link that serves (or was left alone on purpose)."""
        return self.status != FAILED

    @property
    def linked(self) -> bool:
        """Whether the item got a link: what a paste asks for. A result can be :attr:`ok` without
        one: a remote link the remote-image policy leaves alone (``sync.remote = "keep"``, a page
        or a video that is no image) is fine in a note, but no answer to a paste."""
        return self.status != FAILED and bool(self.url)

    @property
    def why_no_link(self) -> str:
        """Why the item got no link, in words (for a result that is not :attr:`linked`)."""
        if self.status == FAILED:
            return self.error or "failed"
        return f"not uploaded: {self.error or f'no link came back ({self.status})'}"


def failed_result(item: str, kind: Kind, exc: BaseException) -> UploadResult:
    """The failed result of one item, worded from the exception that ended it.

    The service counts as unreachable exactly for the errors the exception tree marks so
    (:mod:`imgsync.errors`: a network failure, 5xx or rate limiting that outlasted the retries).
    """
    if isinstance(exc, ImgsyncError):
        # A file check names the path in its message; the result already carries the input.
        text = getattr(exc, "detail", None) or str(exc)
        unreachable = exc.exit_code == EXIT_UNREACHABLE
        return UploadResult(item, kind, FAILED, error=text, unreachable=unreachable)
    return UploadResult(item, kind, FAILED, error=f"internal error: {type(exc).__name__}: {exc}")
