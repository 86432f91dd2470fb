"""``imgsync sync``: upload the images a set of notes refers to and rewrite their links.

One run is four steps, each over every note before the next begins:

1. **collect** the notes (files given, ``.md``/``.markdown`` below folders given), skipping at
   once a note whose size, mtime and inode are those recorded after its last clean sync;
2. **scan** each remaining note (markdown.find_images) and **resolve** every reference to a local
   file, a remote URL, an already-hosted URL or a data URI (resolve.Resolver);
3. **upload** every distinct image once, all notes together, in parallel (upload.Uploader);
4. **rewrite** each note through notefile.update_note: the note is read again and rewritten from
   that fresh text (scanned again if it changed), so an edit made while its images uploaded is
   kept, not lost.

A failed image leaves its link alone and is reported; a note that cannot be read is reported and the
run goes on. Nothing here prints: the command line turns the :class:`SyncReport` into output.

A note is *clean* after a sync when every image reference in it now points at the image bed (or it
has none). Only a clean note is stamped in the cache and skipped next time without being parsed: a
note with a missing image, a data URI or a file outside the root is looked at again on every run,
since a new file, a flag or a change elsewhere can change its outcome.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgsync.engine.results import FAILED, MIGRATED, SKIPPED, UPLOADED
from imgsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, ImgsyncError
from imgsync.store.cache import RACY_WINDOW_NS

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.engine.results import UploadResult
    from imgsync.engine.uploader import Uploader
    from imgsync.notes.markdown import ImageRef
    from imgsync.notes.notefile import NoteText
    from imgsync.notes.resolve import Resolved, Resolver
    from imgsync.store.cache import Cache, NoteStamp

log = logging.getLogger(__name__)

NOTE_SUFFIXES = (".md", ".markdown")
# Folders that hold no notes of the user's own: version control, editor state, trash, packages.
SKIP_DIRS = frozenset({".git", ".obsidian", ".trash", ".hg", ".svn", "node_modules", ".venv"})

TOTAL_KEYS = ("notes", "changed", "uploaded", "reused", "cached", "skipped", "failed")


@dataclass
class ImageOutcome:
    """What happened to one image reference of one note.

    ``exit_code`` (not part of the JSON) is the status a failure maps to: 4 when the service could
    not be reached, else 1.
    """

    target: str
    kind: str
    status: str
    url: str | None = None
    error: str | None = None
    line: int = 0
    exit_code: int = field(default=EXIT_OK, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": printable(self.target),
            "kind": self.kind,
            "status": self.status,
            "url": self.url,
            "error": None if self.error is None else printable(self.error),
            "line": self.line,
        }


@dataclass
class NoteOutcome:
    """What happened to one note. ``error`` is set when the note itself could not be processed.

    ``key`` is the note's absolute path as a string; ``path`` makes the Path on first use only,
    because a no-op re-sync of a large vault touches every note and parses no path at all.
    """

    key: str
    changed: bool = False
    unchanged_since_last_sync: bool = False
    images: list[ImageOutcome] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    # The links a rewrite would change, as (old, new) pairs, for --dry-run.
    edits: list[tuple[str, str]] = field(default_factory=list)

    @functools.cached_property
    def path(self) -> Path:
        return Path(self.key)

    @property
    def failed(self) -> bool:
        return self.error is not None or any(i.status == FAILED for i in self.images)

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "path": printable(_display(self.path, base)),
            "changed": self.changed,
            "error": None if self.error is None else printable(self.error),
            "warnings": [printable(w) for w in self.warnings],
            "images": [i.to_json() for i in self.images],
        }


@dataclass
class SyncReport:
    """The result of a whole run."""

    notes: list[NoteOutcome]
    dry_run: bool = False

    def totals(self) -> dict[str, int]:
        """Counts of docs/contract.md: notes, changed notes, and image references by status
        (``migrated`` counts as ``uploaded``; ``failed`` also counts notes that failed as such)."""
        totals = dict.fromkeys(TOTAL_KEYS, 0)
        totals["notes"] = len(self.notes)
        for note in self.notes:
            totals["changed"] += note.changed
            totals["failed"] += note.error is not None
            for image in note.images:
                key = UPLOADED if image.status == MIGRATED else image.status
                totals[key] += 1
        return totals

    @property
    def exit_code(self) -> int:
        """0 when all was done; 4 when everything that failed failed because the service could not
        be reached; else 1 when anything failed (docs/contract.md)."""
        unreachable = False
        for note in self.notes:
            if note.error is not None:
                return EXIT_PARTIAL
            for image in note.images:
                if image.status != FAILED:
                    continue
                if image.exit_code != EXIT_UNREACHABLE:
                    return EXIT_PARTIAL
                unreachable = True
        return EXIT_UNREACHABLE if unreachable else EXIT_OK

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "notes": [n.to_json(base) for n in self.notes],
            "totals": self.totals(),
            "dry_run": self.dry_run,
        }


def printable(text: str) -> str:
    """``text`` with every lone surrogate spelled out, so it can be printed and put in JSON.

    File names and notes are decoded with ``surrogateescape``: a byte that is not UTF-8 (a name
    from an old system, a note with a stray Latin-1 byte) becomes a lone surrogate, which no
    output encoding accepts. It is shown as ``\\xNN``, as Python shows such bytes.
    """
    return text if text.isascii() else _SURROGATE_RE.sub(_spell_surrogate, text)


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _spell_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            pass
    return str(path)


def iter_notes(paths: Iterable[Path]) -> Iterator[tuple[Path, Path, str | None]]:
    """Yield (note, given, problem) for every note below ``paths``, in a stable order.

    Notes are yielded as absolute paths; ``given`` is the argument the note was found under. A
    path that does not exist, is neither a note nor a folder, or cannot be examined, and a folder
    that cannot be listed, are yielded with a problem so they are reported like any other failed
    note instead of aborting the run or passing unnoticed. A note reached twice (a file and its
    folder both given) is yielded once.
    """
    for key, given, problem in _walk_notes(paths):
        yield Path(key), given, problem


def _walk_notes(paths: Iterable[Path]) -> Iterator[tuple[str, Path, str | None]]:
    """:func:`iter_notes` with each note as its absolute path string.

    This runs once per note even when nothing changed (the no-op re-sync of a whole vault), so it
    works on strings: no Path is built per note.
    """
    seen: set[str] = set()
    for given in paths:
        given = Path(given)
        top = os.path.abspath(given)
        try:
            kind = _kind_of(top)
        except OSError as error:  # a name too long, a folder that may not be searched
            if top not in seen:
                seen.add(top)
                yield top, given, f"cannot be examined: {error.strerror or error}"
            continue
        if kind == "folder":
            unlisted: list[OSError] = []
            for dirpath, dirnames, filenames in os.walk(top, onerror=unlisted.append):
                yield from _unlisted(unlisted, given, seen)
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
                for name in sorted(filenames):
                    if not name.lower().endswith(NOTE_SUFFIXES) or name.startswith("."):
                        continue
                    key = os.path.join(dirpath, name)
                    if key in seen:
                        continue
                    seen.add(key)
                    yield key, given, None
            yield from _unlisted(unlisted, given, seen)
        elif top in seen:
            continue
        else:
            seen.add(top)
            if kind in ("file", "link") or top.lower().endswith(NOTE_SUFFIXES):
                yield top, given, None if kind is not None else "no such file"
            else:
                problem = "no such file or folder" if kind is None else "not a note or folder"
                yield top, given, problem


def _kind_of(path: str) -> str | None:
    """What ``path`` is: a "folder", a "file", a "link" (broken), "other" (a device, a FIFO...)
    or None (nothing). Raises OSError when the system cannot tell (a name too long...)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "link" if os.path.islink(path) else None
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(st.st_mode) else "other"


def _unlisted(
    errors: list[OSError], given: Path, seen: set[str]
) -> Iterator[tuple[str, Path, str | None]]:
    """A folder the walk could not list, reported like a failed note (its notes are not seen)."""
    while errors:
        error = errors.pop(0)
        key = os.path.abspath(error.filename or given)
        if key not in seen:
            seen.add(key)
            yield key, given, f"cannot list this folder: {error.strerror or error}"


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
        self._uploader_factory = uploader_factory
        self._resolvers: dict[Path, Resolver] = {}
        self._prefixes: tuple[str, ...] | None = None

    # -- helpers -----------------------------------------------------------------------------

    def _open_cache(self) -> Cache | None:
        """The cache; in a dry run only if it already exists (a dry run creates no file)."""
        if self._cache is None:
            from imgsync.store.cache import Cache, cache_path

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

    def _resolver(self, given: Path) -> Resolver:
        """The resolver of the notes root: ``--root``, else the nearest folder at or above the
        path given that holds ``.obsidian``, else that folder (a file given: its folder)."""
        from imgsync.notes.resolve import Resolver, find_root

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
        cache = self._open_cache()
        stamps = cache.note_stamps() if cache is not None else {}
        outcomes: list[NoteOutcome] = []
        pending: list[_Pending] = []
        for key, given, problem in _walk_notes(paths):
            outcome = NoteOutcome(key, error=problem)
            outcomes.append(outcome)
            stamp = stamps.get(key) if problem is None else None
            if stamp is not None and cache is not None and self._unchanged(cache, stamp, key):
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
                self._finish(item, results, cache)
            if on_note is not None:
                on_note(item.outcome)
        return SyncReport(notes=outcomes, dry_run=self.dry_run)

    def _unchanged(self, cache: Cache, stamp: NoteStamp, key: str) -> bool:
        """Whether the note (``key``: its absolute path) is as its last clean sync (``stamp``)
        left it, judged without parsing it."""
        try:
            st = os.stat(key)
        except OSError:
            return False
        if stamp.matches_stat(st):
            return True
        same_stat = (stamp.size, stamp.mtime_ns, stamp.inode) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
        )
        if not same_stat or not stamp.digest or not stat.S_ISREG(st.st_mode):
            return False
        # A stamp taken right after a write cannot vouch for the mtime; the content hash can.
        note = Path(key)
        raw = _read_if_stable(note, st)
        if raw is None or _digest(raw) != stamp.digest:
            return False
        if not self.dry_run and self._clock_ns() - st.st_mtime_ns >= RACY_WINDOW_NS:
            # Proved by content, and now old enough to be trusted by its stat next time.
            self._put_stamp(cache, note, st, stamp.digest)
        return True

    def _scan(self, outcome: NoteOutcome, given: Path) -> _Pending | None:
        from imgsync.notes.markdown import find_images
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
            _digest(note.raw),
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
        import tempfile

        factory = self._uploader_factory or self._default_uploader
        with tempfile.TemporaryDirectory(prefix="imgsync-data-uri-") as scratch:
            items = [_upload_item(res, Path(scratch)) for res in keys.values()]
            with factory() as uploader:
                callback = None if on_image is None else (lambda _i, r: on_image(r))
                results = uploader.upload_many(items, on_result=callback)
        return dict(zip(keys, results, strict=True))

    def _default_uploader(self) -> Uploader:
        from imgsync.engine.uploader import Uploader

        return Uploader.from_settings(self.settings, cache=self._open_cache())

    def _finish(
        self, item: _Pending, results: dict[str, UploadResult], cache: Cache | None
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
            if cache is not None and not self.dry_run:
                cache.forget_note(outcome.path)
            return
        if self.dry_run:
            outcome.edits = _planned_edits(item.resolved)
            return
        urls = {k: r.url for k, r in results.items() if r.ok and r.url}
        if any(_item_key(r) in urls for r in item.resolved):
            final = self._rewrite(item, urls)
        else:
            final = (item.raw, all(_is_done(r, urls) for r in item.resolved))
        if cache is None:
            return
        if final is not None and final[1] and not outcome.failed:
            self._stamp(cache, outcome.path, final[0])
        else:
            cache.forget_note(outcome.path)

    def _image_outcome(
        self, res: Resolved, results: dict[str, UploadResult], held: str | None, root: Path
    ) -> ImageOutcome:
        ref = res.ref
        image = ImageOutcome(target=ref.target, kind=res.kind, status=SKIPPED, line=ref.line)
        if res.kind == "hosted":
            image.url = res.url
            return image
        if res.skip_reason is not None:
            image.error = res.skip_reason
            if self._is_problem(res, root):
                image.status, image.exit_code = FAILED, EXIT_PARTIAL
            return image
        if held is not None:
            image.error = held
            return image
        if self.dry_run:
            image.error = "dry run: not uploaded"
            return image
        result = results.get(_item_key(res) or "")
        if result is None:  # pragma: no cover - every resolvable item was uploaded
            image.status, image.error, image.exit_code = FAILED, "not uploaded", EXIT_PARTIAL
            return image
        image.status, image.url, image.error = result.status, result.url, result.error
        if result.status == FAILED:
            image.exit_code = result.exit_code or EXIT_PARTIAL
        return image

    def _is_problem(self, res: Resolved, root: Path) -> bool:
        """Whether a reference the resolver declined is the user's to fix (reported as failed)
        rather than declined by policy (skipped), judged from its fields, not its message.

        Policy: a hosted link, a data URI, a URL scheme imgsync does not fetch, an empty
        destination, a file outside the root. Problems: a file that is not found, ambiguous or
        unresolvable (no path), or one inside the root that is not an image file.
        """
        if res.kind != "local":
            return False
        if not res.ref.target.strip():
            return False
        if res.path is None:
            return True
        return self.allow_outside_root or res.path.is_relative_to(root)

    def _rewrite(self, item: _Pending, urls: dict[str, str]) -> tuple[bytes, bool] | None:
        """Rewrite the note from a fresh read; return (the bytes it now holds, whether it is
        clean), or None when it could not be written (the error is on the outcome)."""
        from imgsync.notes.markdown import find_images, rewrite
        from imgsync.notes.notefile import update_note

        outcome = item.outcome
        result = _Pass()

        def transform(note: NoteText) -> str:
            result.clean = False
            if _digest(note.raw) == item.digest:
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

    def _stamp(self, cache: Cache, note: Path, expected: bytes) -> None:
        """Record the note as clean, if it still holds exactly the bytes this run left in it (an
        edit made since then is the next run's to look at)."""
        try:
            st = os.stat(note)
        except OSError:
            cache.forget_note(note)
            return
        raw = _read_if_stable(note, st) if stat.S_ISREG(st.st_mode) else None
        if raw != expected:
            cache.forget_note(note)
            return
        self._put_stamp(cache, note, st, _digest(raw))

    @staticmethod
    def _put_stamp(cache: Cache, note: Path, st: os.stat_result, digest: str) -> None:
        from imgsync.store.cache import NoteStamp

        cache.put_note(note, NoteStamp.from_stat(st, digest))


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


def _read_if_stable(note: Path, st: os.stat_result) -> bytes | None:
    """The note's bytes if they are what ``st`` describes (same size, mtime and inode throughout
    the read), else None."""
    try:
        with open(note, "rb") as handle:
            raw = handle.read(st.st_size + 1)
            after = os.fstat(handle.fileno())
    except OSError:
        return None
    if len(raw) != st.st_size or (after.st_size, after.st_mtime_ns, after.st_ino) != (
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
    ):
        return None
    return raw


def _digest(raw: bytes) -> str:
    import hashlib  # not at the top: a no-op re-sync never hashes

    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest()


def _is_done(res: Resolved, urls: dict[str, str]) -> bool:
    """Whether a reference needs nothing more: it is on the image bed, or now points there."""
    if res.kind == "hosted":
        return True
    key = _item_key(res)
    return key is not None and key in urls


def _item_key(res: Resolved) -> str | None:
    """The identity of what a reference needs uploaded, or None when it needs nothing."""
    if res.skip_reason is not None:
        return None
    if res.kind == "local" and res.path is not None:
        return "file:" + str(res.path)
    if res.kind == "remote" and res.url:
        return "url:" + res.url
    if res.kind == "data" and res.url:
        return "data:" + _md5(res.url)
    return None


def _upload_item(res: Resolved, scratch: Path) -> Path | str:
    """What to hand the uploader for a reference: a path, a URL, or a data URI's decoded file."""
    if res.kind == "local" and res.path is not None:
        return res.path
    if res.kind == "data" and res.url:
        return _materialize_data_uri(res.url, scratch)
    return res.url or ""


def _materialize_data_uri(url: str, scratch: Path) -> Path:
    """Decode a ``data:`` URI into a file, so it goes up like any local image.

    An undecodable URI becomes an empty file, which the uploader then reports as a clear failure.
    """
    import base64
    import binascii
    from urllib.parse import unquote_to_bytes

    header, _, payload = url.partition(",")
    try:
        if header.lower().endswith(";base64"):
            data = base64.b64decode(payload.strip(), validate=False)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        data = b""
    path = scratch / (_md5(url) + ".img")
    path.write_bytes(data)
    return path


def _planned_edits(resolved: list[Resolved]) -> list[tuple[str, str]]:
    return [
        (r.ref.raw, "<url of " + (str(r.path) if r.path else r.url or "") + ">")
        for r in resolved
        if _item_key(r) is not None
    ]
