"""The words of docs/contract.md for what an item is (its kind) and what became of it (its
status), defined here once for every job and front end that reports them.

They are apart from :class:`~imgsync.engine.results.UploadResult` (which re-exports them) so that
what only needs the words, such as a sync with nothing to upload and the command line's report of
it, does not build the result record's class: every dataclass costs about a millisecond at start.
"""

from __future__ import annotations

from typing import Final, Literal

# What an image reference or upload item is (docs/contract.md): a local file, a remote URL, a link
# already on the image bed, or a data: URI.
Kind = Literal["local", "remote", "hosted", "data"]
LOCAL: Final = "local"
REMOTE: Final = "remote"
HOSTED: Final = "hosted"
DATA: Final = "data"

# What putting content on the image bed came to: bytes sent, or the service already had them.
Sent = Literal["uploaded", "reused"]
# What storing content can come to: one of those, or the local index (or another thread,
# meanwhile) already had them.
Stored = Literal[Sent, "cached"]
# What happened to an item (docs/contract.md): one of the above, or one of these.
Status = Literal[Stored, "migrated", "skipped", "failed"]
UPLOADED: Final = "uploaded"  # bytes sent
REUSED: Final = "reused"  # the service already had them (instant upload)
CACHED: Final = "cached"  # answered from the local index, no request
MIGRATED: Final = "migrated"  # a remote URL fetched by the service's offline download
SKIPPED: Final = "skipped"  # left alone on purpose (already hosted, policy)
FAILED: Final = "failed"  # ``error`` says why
