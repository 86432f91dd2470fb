"""What imgsync knows of the 123pan image-bed service that several layers need.

Facts of the service, not settings: each is stated once here, with where it comes from
(``../shared/docs/api-facts.md`` and the reference). The emulator keeps its own copies on purpose
(architecture rule 11: it and the client are written from the reference independently).
"""

from __future__ import annotations

# The largest image the service takes: "100M" in the copy and offline sections of the reference,
# applied to direct uploads too (api-facts.md, "Formats and size").
MAX_IMAGE_BYTES = 100 * 1024 * 1024

# detail/list ``status`` above this: rejected by content review, the link will not serve.
REVIEW_REJECTED_ABOVE = 100


def review_rejected(status: int) -> bool:
    """Whether a file with this review ``status`` was rejected (its link will not serve)."""
    return status > REVIEW_REJECTED_ABOVE
