"""Content reviews that end after the upload: images checked again, and links that do not serve.

Whether the service's content review can reject an image after its link was handed out is
undocumented (api-facts "Still unconfirmed" 3), so imgsync never trusts one look: an image whose
review had not ended when it was uploaded is checked again on its next use
(:meth:`imgsync.engine.transfer.Transfer.vouched`), and :func:`recheck_reviews` checks every such
image of the index at once, which ``sync`` does before it reads the notes. A rejection found is
remembered in the index (never handed out again) and the account's note stamps are forgotten, so
the next sync reads every note and reports each one that links to the image
(:func:`rejected_links` says which links those are).

Only the standard library and the index are imported at the top: a sync with nothing to check
must not load the HTTP stack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imgsync.errors import AuthError, ConfigError, ImgsyncError, NetworkError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from imgsync.engine.transfer import Transfer
    from imgsync.store.cache import Cache, RemoteObject

__all__ = ["ReviewCheck", "link_key", "recheck_reviews", "rejected_link_text", "rejected_links"]

log = logging.getLogger(__name__)

# Errors that stop a run (every other check would fail the same way).
_WHOLE_RUN = (AuthError, ConfigError, UsageError)


@dataclass
class ReviewCheck:
    """What checking the images whose review had not ended found: those rejected meanwhile, how
    many are still under review, how many are gone, and why any could not be checked."""

    rejected: list[RemoteObject] = field(default_factory=list)
    pending: int = 0
    gone: int = 0
    unchecked: list[str] = field(default_factory=list)


def recheck_reviews(cache: Cache, transfer: Transfer) -> ReviewCheck:
    """Check with ``detail`` every image of the index whose content review had not ended.

    Rejected ones are remembered as rejected by ``transfer`` (which forgets the note stamps);
    gone ones are forgotten. Once the service cannot be reached the rest are left for next time;
    authentication and configuration failures raise.
    """
    from imgsync.engine.transfer import ReviewRejected  # the HTTP stack only when there is work

    report = ReviewCheck()
    outage: ImgsyncError | None = None
    for obj in cache.pending_review():
        if outage is not None:
            report.unchecked.append(f"{obj.file_id}: not checked: {outage}")
            continue
        try:
            checked = transfer.recheck(obj)
        except ReviewRejected:
            report.rejected.append(obj)
            continue
        except ImgsyncError as exc:
            if isinstance(exc, _WHOLE_RUN):
                raise
            log.info("review of %s not checked: %s", obj.file_id, exc)
            report.unchecked.append(f"{obj.file_id}: {exc}")
            if isinstance(exc, NetworkError) or exc.retryable:
                outage = exc
            continue
        if checked is None:
            report.gone += 1
        elif checked.review_pending:
            report.pending += 1
    return report


def rejected_links(rejected: Iterable[RemoteObject]) -> dict[str, RemoteObject]:
    """Every link of the ``rejected`` images (the index's
    :meth:`~imgsync.store.cache.Cache.rejected_objects`: ``downloadURL`` and ``userSelfURL``),
    by :func:`link_key`: a note linking to one shows a broken image."""
    links: dict[str, RemoteObject] = {}
    for obj in rejected:
        for url in (obj.download_url, obj.user_self_url):
            if url:
                links[link_key(url)] = obj
    return links


def link_key(url: str) -> str:
    """A link without its fragment and query: a signed or tagged link is the same image."""
    return url.strip().split("#", 1)[0].split("?", 1)[0]


def rejected_link_text(obj: RemoteObject) -> str:
    """Why a link to the rejected image ``obj`` is reported."""
    return (
        f"rejected by content review (status {obj.status}): the image bed does not serve this"
        f" link ({obj.filename}, fileID {obj.file_id}); replace the image in the note"
    )
