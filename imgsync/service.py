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

# GUESS: what the statuses 0..100 mean is undocumented (api-facts "Still unconfirmed" 3). The
# reference's example image shows 2 and its folders 0; a status below 2 is taken for "not reviewed
# yet", whose verdict may still be a rejection: such an image is checked again when next used.
REVIEW_PASSED = 2


def review_rejected(status: int) -> bool:
    """Whether a file with this review ``status`` was rejected (its link will not serve)."""
    return status > REVIEW_REJECTED_ABOVE


def review_pending(status: int) -> bool:
    """Whether the content review of a file with this ``status`` has not ended yet (a later
    rejection is possible)."""
    return status < REVIEW_PASSED
