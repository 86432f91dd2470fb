"""``imgsync sync``: upload the images a set of notes refers to and rewrite their links.

One run is four steps, each over every note before the next begins:

1. **collect** the notes (:mod:`imgsync.notes.walk`), skipping at once a note that is as its last
   clean sync left it (:mod:`imgsync.notes.freshness`);
2. **scan** each remaining note (markdown.find_images) and **resolve** every reference to a local
   file, a remote URL, an already-hosted URL or a data URI (resolve.Resolver);
3. **upload** every distinct image once, all notes together, in parallel (engine.Uploader);
4. **rewrite** each note through notefile.update_note: the note is read again and rewritten from
   that fresh text (scanned again if it changed), so an edit made while its images uploaded is
   kept, not lost.

A failed image leaves its link alone and is reported; a note that cannot be read is reported and the
run goes on. Nothing here prints: the command line turns the :class:`SyncReport` into output and an
exit status.

A note is *clean* after a sync when every image reference in it now points at the image bed (or it
has none). Only a clean note is stamped in the cache and skipped next time without being parsed: a
note with a missing image, a data URI or a file outside the root is looked at again on every run,
since a new file, a flag or a change elsewhere can change its outcome.

The markdown scanner, the resolver, the note writer and the upload engine are imported where they
are first needed: a no-op re-sync of a large vault needs none of them, and its cost is the walk.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imgsync.engine.results import DATA, FAILED, HOSTED, LOCAL, REMOTE, SKIPPED
from imgsync.engine.review import link_key, rejected_link_text, rejected_links
from imgsync.errors import ImgsyncError
from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome, SyncReport
from imgsync.notes.freshness import NoteFreshness, content_digest
from imgsync.notes.walk import walk_notes
from imgsync.store.cache import Cache, cache_path

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.engine.results import UploadResult
    from imgsync.engine.uploader import Uploader
    from imgsync.notes.markdown import ImageRef
    from imgsync.notes.notefile import NoteText
    from imgsync.notes.resolve import Resolved, Resolver
    from imgsync.store.cache import RemoteObject

__all__ = ["Syncer"]

log = logging.getLogger(__name__)

# In a dry run, why an image that a real run would upload is left as it is.
DRY_RUN_REASON = "dry run: not uploaded"
# Prefix of the scratch folder a run decodes its data: URIs into, for the uploader.
DATA_URI_SCRATCH_PREFIX = "imgsync-data-uri-"


@dataclass
class _Pending:
    """A note read and scanned, waiting for its images."""

    outcome: NoteOutcome
    resolver: Resolver
    digest: str  # of the bytes scanned: an unchanged note is not scanned again for the rewrite
    refs: list[ImageRef]
    resolved: list[Resolved]
    consistent: bool
    raw: bytes
    # Why the note is left as it is whatever its images do (the scan did not match the parser,
    # the note may not be rewritten); its images are then not uploaded.
    held: str | None = None


@dataclass
class _Pass:
    """What the last rewrite pass over a note found (update_note may redo it on a fresh read)."""

    clean: bool = False


class Syncer:
    """Runs ``sync`` over notes. Side effects (uploader, cache, clock) are injectable for tests.

    A cache passed in is the caller's to close; one opened here is closed when :meth:`run` ends.
    ``uploader_factory`` makes the Uploader of a run that has something to upload (by default one
    built from the settings over this run's cache); ``clock_ns`` is the wall clock the cache and the
    note stamps are judged by.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        root: Path | None = None,
        dry_run: bool = False,
        allow_outside_root: bool = False,
        allow_data: bool = False,
        cache: Cache | None = None,
        uploader_factory: Callable[[], Uploader] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self._clock_ns = clock_ns
        self.root = root
        self.dry_run = dry_run
        self.allow_outside_root = allow_outside_root
        self.allow_data = allow_data
        self._cache = cache
        self._owns_cache = cache is None
        self._uploader_factory = uploader_factory or self._default_uploader
        self._resolvers: dict[Path, Resolver] = {}
        self._prefixes: tuple[str, ...] | None = None
        self._rejected: dict[str, RemoteObject] = {}  # links of rejected images, by link_key

    # -- collaborators ----------------------------------------------------------------------------

    def _open_cache(self) -> Cache | None:
        """The cache; in a dry run only if it already exists (a dry run creates no file)."""
        if self._cache is None:
            if self.dry_run and not cache_path(self.settings.data_dir).exists():
                return None
            self._cache = Cache.open(
                self.settings.data_dir,
                namespace=self.settings.account.key,
                clock_ns=self._clock_ns,
            )
        return self._cache

    def _close_cache(self) -> None:
        if self._owns_cache and self._cache is not None:
            self._cache.close()
            self._cache = None

    def _default_uploader(self) -> Uploader:
        from imgsync.engine.uploader import Uploader  # only a run with something to upload

        return Uploader.from_settings(self.settings, cache=self._open_cache())

    def _resolver(self, given: Path) -> Resolver:
        """The resolver of the notes root: ``--root``, else the nearest folder at or above the
        path given that holds ``.obsidian``, else that folder (a file given: its folder)."""
        from imgsync.notes.resolve import Resolver, find_root  # only a run that scans a note

        root = (self.root or find_root(given)).resolve()
        resolver = self._resolvers.get(root)
        if resolver is None:
            resolver = Resolver(
                root,
                hosted_prefixes=self._hosted_prefixes(),
                allow_outside_root=self.allow_outside_root,
                allow_data=self.allow_data,
            )
            self._resolvers[root] = resolver
        return resolver

    def _hosted_prefixes(self) -> tuple[str, ...]:
        """Configured prefixes plus the download folders of every URL this account was given."""
        if self._prefixes is None:
            prefixes = {p for p in self.settings.upload.hosted_prefixes if p}
            cache = self._open_cache()
            if cache is not None:
                prefixes |= cache.link_folders()
            self._prefixes = tuple(sorted(prefixes))
        return self._prefixes

    # -- the four steps ---------------------------------------------------------------------------

    def run(
        self,
        paths: Sequence[Path],
        *,
        on_note: Callable[[NoteOutcome], None] | None = None,
        on_upload_start: Callable[[int], None] | None = None,
        on_image: Callable[[UploadResult], None] | None = None,
    ) -> SyncReport:
        """Sync every note below ``paths``; never raises for a per-note or per-image problem.

        Raises only for whole-run failures (authentication, configuration, an unusable cache):
        then no note has been written.
        """
        # Each run looks afresh: files may have appeared, and earlier runs made new links.
        self._resolvers, self._prefixes = {}, None
        try:
            return self._run(paths, on_note, on_upload_start, on_image)
        finally:
            self._close_cache()

    def _run(
        self,
        paths: Sequence[Path],
        on_note: Callable[[NoteOutcome], None] | None,
        on_upload_start: Callable[[int], None] | None,
        on_image: Callable[[UploadResult], None] | None,
    ) -> SyncReport:
        # Before the stamps are read: a rejection found now forgets them (review.py).
        self._rejected = self._review_rejections()
        freshness = NoteFreshness(
            self._open_cache(), clock_ns=self._clock_ns, record=not self.dry_run
        )
        outcomes: list[NoteOutcome] = []
        pending: list[_Pending] = []
        for key, given, problem in walk_notes(paths):
            outcome = NoteOutcome(key, error=problem)
            outcomes.append(outcome)
            fresh = problem is None and not self.settings.skip_index  # --no-cache reads them all
            if fresh and freshness.unchanged(key):
                outcome.unchanged_since_last_sync = True
            elif problem is None:
                with _note_safety_net(outcome):
                    scanned = self._scan(outcome, given)
                    if scanned is not None:
                        pending.append(scanned)
            if on_note is not None and (outcome.error or outcome.unchanged_since_last_sync):
                on_note(outcome)

        results = self._upload(pending, on_upload_start, on_image)
        for item in pending:
            with _note_safety_net(item.outcome):
                self._finish(item, results, freshness)
            if on_note is not None:
                on_note(item.outcome)
        return SyncReport(notes=outcomes, dry_run=self.dry_run)

    def _review_rejections(self) -> dict[str, RemoteObject]:
        """The links of images the content review rejected, by link key; first (in a real run)
        the images whose review had not ended are checked again (engine/review.py)."""
        cache = self._open_cache()
        if cache is None:
            return {}
        if not self.dry_run and cache.pending_review():
            with self._uploader_factory() as uploader:
                uploader.recheck_reviews()
        return rejected_links(cache)

    def _scan(self, outcome: NoteOutcome, given: Path) -> _Pending | None:
        from imgsync.notes.markdown import find_images  # only a run that scans a note
        from imgsync.notes.notefile import read_note, unwritable_reason

        try:
            note = read_note(outcome.path)
        except ImgsyncError as exc:
            outcome.error = _note_error(exc)
            return None
        scan = find_images(note.text)
        outcome.warnings.extend(scan.warnings)
        resolver = self._resolver(given)
        resolved = [resolver.resolve(outcome.path, ref, scan.front_matter) for ref in scan.refs]
        held = None
        if not scan.consistent:
            outcome.error = "left unchanged: the image scan did not match the parser (see warnings)"
            held = "note left unchanged: the image scan did not match the parser"
        elif any(_item_key(res) is not None for res in resolved):
            # Uploading for a note that will not be rewritten would only fill the image bed.
            reason = unwritable_reason(outcome.path)
            if reason is not None:
                outcome.error = reason
                held = f"note not rewritten: {reason}"
        return _Pending(
            outcome,
            resolver,
            content_digest(note.raw),
            scan.refs,
            resolved,
            scan.consistent,
            note.raw,
            held,
        )

    def _upload(
        self,
        pending: list[_Pending],
        on_start: Callable[[int], None] | None,
        on_image: Callable[[UploadResult], None] | None,
    ) -> dict[str, UploadResult]:
        """Upload each distinct local file and remote URL once; results keyed by item key."""
        keys: dict[str, Resolved] = {}
        for item in pending:
            if item.held is None:
                for res in item.resolved:
                    key = _item_key(res)
                    if key is not None:
                        keys.setdefault(key, res)
        if self.dry_run or not keys:
            return {}
        if on_start is not None:
            on_start(len(keys))
        import tempfile  # only a run that uploads (it costs ~7 ms to load)

        with tempfile.TemporaryDirectory(prefix=DATA_URI_SCRATCH_PREFIX) as scratch:
            items = [_upload_item(res, Path(scratch)) for res in keys.values()]
            with self._uploader_factory() as uploader:
                callback = None if on_image is None else (lambda _i, r: on_image(r))
                results = uploader.upload_many(items, on_result=callback)
        return dict(zip(keys, results, strict=True))

    def _finish(
        self, item: _Pending, results: dict[str, UploadResult], freshness: NoteFreshness
    ) -> None:
        outcome = item.outcome
        root = item.resolver.root
        for res in item.resolved:
            image = self._image_outcome(res, results, item.held, root)
            outcome.images.append(image)
            if res.skip_reason is not None and image.status == SKIPPED and res.path is not None:
                # A file outside the root: say so, since the link stays local.
                outcome.warnings.append(f"line {image.line}: {image.target}: {image.error}")
        if item.held is not None:
            freshness.forget(outcome.path)
            return
        if self.dry_run:
            outcome.edits = _planned_edits(item.resolved)
            return
        urls = {k: r.url for k, r in results.items() if r.ok and r.url}
        if any(_item_key(r) in urls for r in item.resolved):
            final = self._rewrite(item, urls)
        else:
            final = (item.raw, all(_is_done(r, urls) for r in item.resolved))
        if final is not None and final[1] and not outcome.failed:
            freshness.mark_clean(outcome.path, final[0])
        else:
            freshness.forget(outcome.path)

    def _image_outcome(
        self, res: Resolved, results: dict[str, UploadResult], held: str | None, root: Path
    ) -> ImageOutcome:
        ref = res.ref
        image = ImageOutcome(target=ref.target, kind=res.kind, status=SKIPPED, line=ref.line)
        if res.kind == HOSTED:
            image.url = res.url
            rejected = self._rejected.get(link_key(res.url or ""))
            if rejected is not None:  # a link the image bed does not serve
                image.status, image.error = FAILED, rejected_link_text(rejected)
            return image
        if res.skip_reason is not None:
            image.error = res.skip_reason
            if self._is_problem(res, root):
                image.status = FAILED
            return image
        if held is not None:
            image.error = held
            return image
        if self.dry_run:
            image.error, image.would_upload = DRY_RUN_REASON, True
            return image
        result = results.get(_item_key(res) or "")
        if result is None:  # pragma: no cover - every resolvable item was uploaded
            image.status, image.error = FAILED, "not uploaded"
            return image
        image.status, image.url, image.error = result.status, result.url, result.error
        image.unreachable = result.status == FAILED and result.unreachable
        return image

    def _is_problem(self, res: Resolved, root: Path) -> bool:
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
        return self.allow_outside_root or res.path.is_relative_to(root)

    def _rewrite(self, item: _Pending, urls: dict[str, str]) -> tuple[bytes, bool] | None:
        """Rewrite the note from a fresh read; return (the bytes it now holds, whether it is
        clean), or None when it could not be written (the error is on the outcome)."""
        from imgsync.notes.markdown import find_images, rewrite  # only a run that rewrites
        from imgsync.notes.notefile import update_note

        outcome = item.outcome
        result = _Pass()

        def transform(note: NoteText) -> str:
            result.clean = False
            if content_digest(note.raw) == item.digest:
                refs, resolved = item.refs, item.resolved
            else:
                # Edited since the scan: scan the text as it is now, so the edit is kept.
                scan = find_images(note.text)
                if not scan.consistent:
                    outcome.warnings.extend(scan.warnings)
                    return note.text
                refs = scan.refs
                resolved = [
                    item.resolver.resolve(outcome.path, ref, scan.front_matter) for ref in refs
                ]
            mapping: dict[ImageRef, str] = {}
            for ref, res in zip(refs, resolved, strict=True):
                url = urls.get(_item_key(res) or "")
                if url is not None and url != ref.target:
                    mapping[ref] = url
            result.clean = all(_is_done(res, urls) for res in resolved)
            return rewrite(note.text, mapping) if mapping else note.text

        try:
            final, changed = update_note(outcome.path, transform)
        except ImgsyncError as exc:
            outcome.error = _note_error(exc)
            return None
        outcome.changed = changed
        return final.raw, result.clean


@contextlib.contextmanager
def _note_safety_net(outcome: NoteOutcome) -> Iterator[None]:
    """Report an unexpected failure on one note as that note's error, and go on with the others.

    Every expected problem of a note is already its error; this is the last net, so one odd note
    (a name the system refuses in a way not foreseen) cannot stop the run. Whole-run failures
    (ImgsyncError: the cache, the configuration) still stop it.
    """
    try:
        yield
    except ImgsyncError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported on the note, with the traceback at -vv
        log.debug("%s: internal error", outcome.key, exc_info=True)
        outcome.error = f"internal error: {type(exc).__name__}: {exc} (run with -vv for details)"


def _note_error(exc: ImgsyncError) -> str:
    """A note error without the path the report already shows next to it."""
    return getattr(exc, "reason", None) or str(exc)


def _md5(text: str) -> str:
    import hashlib  # not at the top: only a run with a data: URI to upload needs it

    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()


def _is_done(res: Resolved, urls: dict[str, str]) -> bool:
    """Whether a reference needs nothing more: it is on the image bed, or now points there."""
    if res.kind == HOSTED:
        return True
    key = _item_key(res)
    return key is not None and key in urls


def _item_key(res: Resolved) -> str | None:
    """The identity of what a reference needs uploaded, or None when it needs nothing."""
    if res.skip_reason is not None:
        return None
    if res.kind == LOCAL and res.path is not None:
        return "file:" + str(res.path)
    if res.kind == REMOTE and res.url:
        return "url:" + res.url
    if res.kind == DATA and res.url:
        return "data:" + _md5(res.url)
    return None


def _upload_item(res: Resolved, scratch: Path) -> Path | str:
    """What to hand the uploader for a reference: a path, a URL, or a data URI's decoded file
    (written to ``scratch``, so it goes up like any local image)."""
    if res.kind == LOCAL and res.path is not None:
        return res.path
    if res.kind == DATA and res.url:
        from imgsync.notes.datauri import decode_data_uri  # only a run with a data: URI

        path = scratch / (_md5(res.url) + ".img")
        path.write_bytes(decode_data_uri(res.url))
        return path
    return res.url or ""


def _planned_edits(resolved: list[Resolved]) -> list[tuple[str, str]]:
    """The (old, new) links a real run would write, for a dry run to show."""
    return [
        (r.ref.raw, "<url of " + (str(r.path) if r.path else r.url or "") + ">")
        for r in resolved
        if _item_key(r) is not None
    ]
