"""One note of a sync run: read and scanned, what it needs uploaded, what happened to each of its
image references, and its rewrite (or, in a dry run, the bytes a real run would write).

A note's data (its text, references and what they point at) lives in a :class:`ScannedNote` from
its scan until it is written; the run keeps only its :class:`~imgsync.jobs.sync_report.NoteOutcome`
after that. The markdown scanner, the resolver and the note writer are imported by the functions
that need them: a no-op re-sync never calls one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imgsync.engine.results import (
    CACHED,
    DATA,
    FAILED,
    HOSTED,
    LOCAL,
    REMOTE,
    SKIPPED,
    UploadResult,
)
from imgsync.engine.review import link_key, rejected_link_text
from imgsync.errors import ImgsyncError
from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome
from imgsync.notes.freshness import content_digest
from imgsync.service import MAX_IMAGE_BYTES

if TYPE_CHECKING:
    from imgsync.engine.cached import CacheAnswers
    from imgsync.engine.items import Item
    from imgsync.notes.markdown import ImageRef
    from imgsync.notes.notefile import NoteText
    from imgsync.notes.resolve import Resolved, Resolver
    from imgsync.store.cache import RemoteObject

__all__ = [
    "WOULD_UPLOAD",
    "ScannedNote",
    "answer_from_index",
    "image_outcome",
    "is_done",
    "item_key",
    "link_of",
    "note_error",
    "plan_rewrite",
    "rewrite_note",
    "scan_note",
    "upload_item",
]

# Bytes read at a time when a dry run hashes a local file to look it up by content.
READ_CHUNK = 1024 * 1024
# In a dry run, what is said of an image the local index does not know: a real run uploads it.
WOULD_UPLOAD = "dry run: would upload (not in the local index)"


@dataclass(slots=True, eq=False)
class ScannedNote:
    """A note read and scanned, waiting for its images (``waiting`` of them are on their way).

    ``place`` is its place in the report; ``area`` the folder being synced it was found under;
    ``held`` why it is left as it is whatever its images do (the scan did not match the parser,
    or the note may not be rewritten): its images are then not uploaded.
    """

    outcome: NoteOutcome
    place: int
    note: NoteText
    resolver: Resolver
    area: Path
    digest: str  # of the bytes scanned: an unchanged note is not scanned again for the rewrite
    refs: list[ImageRef]
    resolved: list[Resolved]
    held: str | None = None
    waiting: int = 0


def scan_note(
    outcome: NoteOutcome, place: int, resolver: Resolver, area: Path
) -> ScannedNote | None:
    """Read and scan the note of ``outcome`` and resolve its references; None (the reason in
    ``outcome.error``) when it cannot be read."""
    from imgsync.notes.markdown import find_images
    from imgsync.notes.notefile import read_note, unwritable_reason

    try:
        note = read_note(outcome.path)
    except ImgsyncError as exc:
        outcome.error = note_error(exc)
        return None
    scan = find_images(note.text)
    outcome.warnings.extend(scan.warnings)
    resolved = resolver.resolve_all(outcome.path, scan.refs, scan.front_matter, area=area)
    held = None
    if not scan.consistent:
        outcome.error = "left unchanged: the image scan did not match the parser (see warnings)"
        held = "note left unchanged: the image scan did not match the parser"
    elif any(item_key(res) is not None for res in resolved):
        # Uploading for a note that will not be rewritten would only fill the image bed.
        reason = unwritable_reason(outcome.path)
        if reason is not None:
            outcome.error = reason
            held = f"note not rewritten: {reason}"
    return ScannedNote(
        outcome, place, note, resolver, area, content_digest(note.raw), scan.refs, resolved, held
    )


# -- what a reference needs ----------------------------------------------------------------------


def item_key(res: Resolved) -> str | None:
    """The identity of what a reference needs uploaded, or None when it needs nothing."""
    if res.skip_reason is not None:
        return None
    if res.kind == LOCAL and res.path is not None:
        return "file:" + str(res.path)
    if res.kind == REMOTE and res.url:
        return "url:" + res.url
    if res.kind == DATA and res.url:
        return "data:" + _md5(res.url.encode("utf-8", "surrogateescape"))
    return None


def answer_from_index(
    res: Resolved, answers: CacheAnswers | None, *, read_files: bool = False
) -> UploadResult | None:
    """What the local index knows of a reference's image, with no request: a local file by its
    stat, a URL as given, a data URI by the md5 of its bytes; None when unknown.

    ``read_files`` (a dry run, which has no uploader to do it) also looks a local file the index
    does not know by its stat up by the md5 of its bytes: a copy of an image uploaded before is
    then shown with its link, as the real run will find it.
    """
    if answers is None:
        return None
    if res.kind == DATA and res.url:
        from imgsync.notes.datauri import decode_data_uri  # only a run with a data: URI

        data = decode_data_uri(res.url)
        found = answers.lookup_object(_md5(data), len(data)) if data else None
        return None if found is None else answers.result(res.ref.target, DATA, CACHED, found)
    item = res.path if res.kind == LOCAL else res.url
    if item is None:
        return None
    result = answers.answer(item)
    if result is None and read_files and res.path is not None:
        found = _lookup_by_content(res.path, answers)
        result = None if found is None else answers.result(str(res.path), LOCAL, CACHED, found)
    return result


def _lookup_by_content(path: Path, answers: CacheAnswers) -> RemoteObject | None:
    """The object holding the bytes of the file at ``path`` (read once), or None."""
    digest = hashlib.md5()
    try:
        size = path.stat().st_size
        if not 0 < size <= MAX_IMAGE_BYTES:
            return None
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_CHUNK):
                digest.update(chunk)
    except OSError:
        return None  # the real run says what is wrong with the file
    return answers.lookup_object(digest.hexdigest(), size)


def upload_item(res: Resolved, scratch: Callable[[], Path]) -> Item:
    """What to hand the uploader for a reference: a path, a URL, or a data URI's bytes written to
    a file in the run's ``scratch`` folder (so it goes up like any local image)."""
    if res.kind == LOCAL and res.path is not None:
        return res.path
    if res.kind == DATA and res.url:
        from imgsync.notes.datauri import decode_data_uri

        path = scratch() / (_md5(res.url.encode("utf-8", "surrogateescape")) + ".img")
        path.write_bytes(decode_data_uri(res.url))
        return path
    return res.url or ""


def link_of(res: Resolved, result: UploadResult | None) -> str | None:
    """The link a reference gets: its image's URL, with the ``#fragment`` written after the file
    name carried over (``![[icon.svg#icon]]`` -> ``![](https://.../<md5>.svg#icon)``)."""
    if result is None or result.status == FAILED or not result.url:
        return None
    return result.url + res.fragment


# -- what happened -------------------------------------------------------------------------------


def image_outcome(
    res: Resolved,
    result: UploadResult | None,
    *,
    held: str | None,
    root: Path,
    allow_outside_root: bool,
    dry_run: bool,
    rejected: Mapping[str, RemoteObject] | None = None,
) -> ImageOutcome:
    """What happened to one reference, given its image's result (None: none was needed, or in a
    dry run, the index does not know the image). ``rejected`` holds the links of images the
    content review rejected (by :func:`~imgsync.engine.review.link_key`): a link to one of them
    is a failure, since the image bed does not serve it."""
    ref = res.ref
    image = ImageOutcome(target=ref.target, kind=res.kind, status=SKIPPED, line=ref.line)
    if res.kind == HOSTED:
        image.url = res.url
        found = rejected.get(link_key(res.url or "")) if rejected else None
        if found is not None:
            image.status, image.error = FAILED, rejected_link_text(found)
        return image
    if res.skip_reason is not None:
        image.error = res.skip_reason
        if _is_problem(res, root, allow_outside_root):
            image.status = FAILED
        return image
    if held is not None:
        image.error = held
        return image
    if result is None:
        if dry_run:
            image.error, image.would_upload = WOULD_UPLOAD, True
        else:  # pragma: no cover - every reference that needs an image waits for its result
            image.status, image.error = FAILED, "not uploaded"
        return image
    image.status, image.url, image.error = result.status, result.url, result.error
    image.unreachable = result.status == FAILED and result.unreachable
    return image


def _is_problem(res: Resolved, root: Path, allow_outside_root: bool) -> bool:
    """Whether a reference the resolver declined is the user's to fix (reported as failed)
    rather than declined by policy (skipped), judged from its fields, not its message.

    Policy: a hosted link, a data URI, a URL scheme imgsync does not fetch, an empty
    destination, a file outside the root. Problems: a file that is not found, ambiguous or
    unresolvable (no path), or one inside the root that is not an image file.
    """
    if res.kind != LOCAL:
        return False
    if not res.ref.target.strip():
        return False
    if res.path is None:
        return True
    return allow_outside_root or res.path.is_relative_to(root)


def is_done(res: Resolved, link: str | None) -> bool:
    """Whether a reference needs nothing more: it is on the image bed, or now points there."""
    return res.kind == HOSTED or (item_key(res) is not None and link is not None)


def note_error(exc: ImgsyncError) -> str:
    """A note error without the path the report already shows next to it."""
    return getattr(exc, "reason", None) or str(exc)


# -- writing -------------------------------------------------------------------------------------


def rewrite_note(
    scanned: ScannedNote, links: Callable[[Resolved], str | None]
) -> tuple[bytes, list[Resolved] | None]:
    """Rewrite the note from a fresh read, each reference to ``links(res)`` where that is a link;
    return (the bytes it now holds, its unfinished references: those not on the image bed, none
    when it is clean; None when that is not known, the text read not matching the parser).

    An edit made since the scan is kept: a note whose bytes changed is scanned again and its new
    text rewritten. Raises :class:`~imgsync.errors.ImgsyncError` when it cannot be written.
    """
    from imgsync.notes.markdown import find_images, rewrite
    from imgsync.notes.notefile import update_note

    outcome = scanned.outcome
    unfinished: list[list[Resolved] | None] = [None]

    def transform(note: NoteText) -> str:
        unfinished[0] = None
        if content_digest(note.raw) == scanned.digest:
            refs, resolved = scanned.refs, scanned.resolved
        else:
            # Edited since the scan: scan the text as it is now, so the edit is kept.
            scan = find_images(note.text)
            if not scan.consistent:
                outcome.warnings.extend(scan.warnings)
                return note.text
            refs = scan.refs
            resolved = scanned.resolver.resolve_all(
                outcome.path, refs, scan.front_matter, area=scanned.area
            )
        mapping: dict[ImageRef, str] = {}
        left: list[Resolved] = []
        for ref, res in zip(refs, resolved, strict=True):
            link = links(res)
            if not is_done(res, link):
                left.append(res)
            if link is not None and link != ref.target:
                mapping[ref] = link
        unfinished[0] = left
        return rewrite(note.text, mapping, refs=refs) if mapping else note.text

    final, changed = update_note(outcome.path, transform)
    outcome.changed = changed
    return final.raw, unfinished[0]


def plan_rewrite(scanned: ScannedNote, links: Callable[[Resolved], str | None]) -> bytes:
    """The bytes a real run would write to the note, the references with a link rewritten to it
    (a dry run's: the links the local index knows). Raises ImgsyncError when it could not be
    rewritten (then a real run leaves the note alone too)."""
    from imgsync.notes.markdown import rewrite
    from imgsync.notes.notefile import note_bytes

    outcome = scanned.outcome
    mapping: dict[ImageRef, str] = {}
    for res in scanned.resolved:
        link = links(res)
        if link is not None and link != res.ref.target:
            mapping[res.ref] = link
            outcome.edits.append((res.ref.raw, link))
    if not mapping:
        return scanned.note.raw
    return note_bytes(scanned.note, rewrite(scanned.note.text, mapping, refs=scanned.refs))


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
