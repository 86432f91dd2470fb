"""``imgsync sync``: upload the images a set of notes refers to and rewrite their links.

One run is four steps, each over every note before the next begins:

1. **collect** the notes (files given, ``.md``/``.markdown`` below folders given), skipping at
   once a note whose size, mtime and inode are those recorded after its last clean sync;
2. **scan** each remaining note (markdown.find_images) and **resolve** every reference to a local
   file, a remote URL, an already-hosted URL or a data URI (resolve.Resolver);
3. **upload** every distinct image once, all notes together, in parallel (upload.Uploader);
4. **rewrite** each note through notefile.update_note: the note is read again, scanned again and
   rewritten from that fresh text, so an edit made while its images uploaded is kept, not lost.

A failed image leaves its link alone and is reported; a note that cannot be read is reported and the
run goes on. Nothing here prints: the command line turns the :class:`SyncReport` into output.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgsync.errors import EXIT_OK, EXIT_PARTIAL, ImgsyncError

if TYPE_CHECKING:
    from imgsync.cache import Cache
    from imgsync.config import Settings
    from imgsync.markdown import ImageRef
    from imgsync.resolve import Resolved, Resolver
    from imgsync.upload import Uploader, UploadResult

log = logging.getLogger(__name__)

NOTE_SUFFIXES = (".md", ".markdown")
# Folders that hold no notes of the user's own: version control, editor state, trash, packages.
SKIP_DIRS = frozenset({".git", ".obsidian", ".trash", ".hg", ".svn", "node_modules", ".venv"})

# Status words of docs/contract.md.
UPLOADED, REUSED, CACHED, MIGRATED, SKIPPED, FAILED = (
    "uploaded",
    "reused",
    "cached",
    "migrated",
    "skipped",
    "failed",
)
TOTAL_KEYS = ("notes", "changed", "uploaded", "reused", "cached", "skipped", "failed")


@dataclass
class ImageOutcome:
    """What happened to one image reference of one note."""

    target: str
    kind: str
    status: str
    url: str | None = None
    error: str | None = None
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "status": self.status,
            "url": self.url,
            "error": self.error,
            "line": self.line,
        }


@dataclass
class NoteOutcome:
    """What happened to one note. ``error`` is set when the note itself could not be processed."""

    path: Path
    changed: bool = False
    unchanged_since_last_sync: bool = False
    images: list[ImageOutcome] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    # The lines a rewrite changed, as (old, new) pairs, for --dry-run and the demo.
    edits: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None or any(i.status == FAILED for i in self.images)

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "path": _display(self.path, base),
            "changed": self.changed,
            "error": self.error,
            "warnings": list(self.warnings),
            "images": [i.to_json() for i in self.images],
        }


@dataclass
class SyncReport:
    """The result of a whole run."""

    notes: list[NoteOutcome]
    dry_run: bool = False

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(TOTAL_KEYS, 0)
        totals["notes"] = len(self.notes)
        for note in self.notes:
            totals["changed"] += note.changed
            totals["failed"] += note.error is not None
            for image in note.images:
                key = UPLOADED if image.status == MIGRATED else image.status
                if key in totals:
                    totals[key] += 1
        return totals

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if any(n.failed for n in self.notes) else EXIT_OK

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "notes": [n.to_json(base) for n in self.notes],
            "totals": self.totals(),
            "dry_run": self.dry_run,
        }


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            pass
    return str(path)


def iter_notes(paths: Iterable[Path]) -> Iterator[tuple[Path, str | None]]:
    """Yield (note, problem): every note file below ``paths``, in a stable order.

    A path that does not exist, or is neither a note nor a folder, is yielded with a problem so it
    is reported like any other failed note instead of aborting the run.
    """
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
                for name in sorted(filenames):
                    if name.lower().endswith(NOTE_SUFFIXES) and not name.startswith("."):
                        note = Path(dirpath, name)
                        if note not in seen:
                            seen.add(note)
                            yield note, None
        elif path in seen:
            continue
        elif path.is_file() or path.is_symlink() or path.suffix.lower() in NOTE_SUFFIXES:
            seen.add(path)
            yield path, None if (path.exists() or path.is_symlink()) else "no such file"
        else:
            yield path, "no such file or folder" if not path.exists() else "not a note or folder"


@dataclass
class _Pending:
    """A note read and scanned, waiting for its images."""

    outcome: NoteOutcome
    resolved: list[Resolved]
    consistent: bool


class Syncer:
    """Runs ``sync`` over notes. Side effects (uploader, cache) are injectable for tests."""

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
    ) -> None:
        self.settings = settings
        self.root = root
        self.dry_run = dry_run
        self.allow_outside_root = allow_outside_root
        self.allow_data = allow_data
        self._cache = cache
        self._uploader_factory = uploader_factory
        self._resolvers: dict[Path, Resolver] = {}

    # -- helpers -----------------------------------------------------------------------------

    def _open_cache(self) -> Cache:
        if self._cache is None:
            from imgsync.cache import Cache
            from imgsync.upload import cache_namespace

            self._cache = Cache.open(
                self.settings.data_dir, namespace=cache_namespace(self.settings)
            )
        return self._cache

    def _resolver(self, note: Path) -> Resolver:
        from imgsync.resolve import Resolver, find_root

        root = (self.root or find_root(note)).resolve()
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
        prefixes = set(self.settings.upload.hosted_prefixes)
        for obj in self._open_cache().iter_objects():
            for url in (obj.download_url, obj.user_self_url):
                prefix = _url_folder(url)
                if prefix:
                    prefixes.add(prefix)
        return tuple(sorted(prefixes))

    # -- the four steps ---------------------------------------------------------------------------

    def run(
        self,
        paths: Sequence[Path],
        *,
        on_note: Callable[[NoteOutcome], None] | None = None,
        on_upload_start: Callable[[int], None] | None = None,
        on_image: Callable[[UploadResult], None] | None = None,
    ) -> SyncReport:
        """Sync every note below ``paths``; never raises for a per-note or per-image problem."""
        cache = self._open_cache()
        outcomes: list[NoteOutcome] = []
        pending: list[_Pending] = []
        for note, problem in iter_notes(paths):
            outcome = NoteOutcome(path=note, error=problem)
            outcomes.append(outcome)
            if problem is None and not self.dry_run and self._unchanged(cache, note):
                outcome.unchanged_since_last_sync = True
            elif problem is None:
                scanned = self._scan(outcome)
                if scanned is not None:
                    pending.append(scanned)
            if on_note is not None and (outcome.error or outcome.unchanged_since_last_sync):
                on_note(outcome)

        results = self._upload(pending, on_upload_start, on_image)
        for item in pending:
            self._finish(item, results, cache)
            if on_note is not None:
                on_note(item.outcome)
        return SyncReport(notes=outcomes, dry_run=self.dry_run)

    def _unchanged(self, cache: Cache, note: Path) -> bool:
        """Whether the note is as its last clean sync left it, judged without parsing it."""
        stamp = cache.get_note(note.absolute())
        if stamp is None:
            return False
        try:
            st = note.stat()
        except OSError:
            return False
        if stamp.matches_stat(st):
            return True
        # A stamp taken right after a write cannot vouch for the mtime; the content hash can.
        same_stat = (stamp.size, stamp.mtime_ns, stamp.inode) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
        )
        return same_stat and bool(stamp.digest) and _digest(note) == stamp.digest

    def _scan(self, outcome: NoteOutcome) -> _Pending | None:
        from imgsync.markdown import find_images
        from imgsync.notefile import read_note

        try:
            note = read_note(outcome.path)
        except ImgsyncError as exc:
            outcome.error = str(exc)
            return None
        scan = find_images(note.text)
        outcome.warnings.extend(scan.warnings)
        resolver = self._resolver(outcome.path)
        resolved = [resolver.resolve(outcome.path, ref, scan.front_matter) for ref in scan.refs]
        if not scan.consistent:
            outcome.warnings.append("image scan did not match the parser; note left unchanged")
        return _Pending(outcome, resolved, scan.consistent)

    def _upload(
        self,
        pending: list[_Pending],
        on_start: Callable[[int], None] | None,
        on_image: Callable[[UploadResult], None] | None,
    ) -> dict[str, UploadResult]:
        """Upload each distinct local file and remote URL once; results keyed by item key."""
        keys: dict[str, Resolved] = {}
        for item in pending:
            if item.consistent:
                for res in item.resolved:
                    key = _item_key(res)
                    if key is not None:
                        keys.setdefault(key, res)
        if self.dry_run or not keys:
            return {}
        if on_start is not None:
            on_start(len(keys))
        factory = self._uploader_factory or self._default_uploader
        with tempfile.TemporaryDirectory(prefix="imgsync-data-uri-") as scratch:
            items = [_upload_item(res, Path(scratch)) for res in keys.values()]
            with factory() as uploader:
                callback = None if on_image is None else (lambda _i, r: on_image(r))
                results = uploader.upload_many(items, on_result=callback)
        return dict(zip(keys, results, strict=True))

    def _default_uploader(self) -> Uploader:
        from imgsync.upload import Uploader

        return Uploader.from_settings(self.settings, cache=self._open_cache())

    def _finish(self, item: _Pending, results: dict[str, UploadResult], cache: Cache) -> None:
        outcome = item.outcome
        for res in item.resolved:
            outcome.images.append(self._image_outcome(res, results, item.consistent))
        if not item.consistent or self.dry_run:
            if self.dry_run:
                outcome.edits = _planned_edits(item.resolved)
            return
        urls = {k: r.url for k, r in results.items() if r.ok and r.url}
        if not any(_item_key(r) in urls for r in item.resolved):
            if not outcome.failed:
                self._stamp(cache, outcome.path)
            return
        self._rewrite(outcome, urls)
        if not outcome.failed:
            self._stamp(cache, outcome.path)

    def _image_outcome(
        self, res: Resolved, results: dict[str, UploadResult], consistent: bool
    ) -> ImageOutcome:
        ref = res.ref
        image = ImageOutcome(target=ref.target, kind=res.kind, status=SKIPPED, line=ref.line)
        if res.kind == "hosted":
            image.url = res.url
            return image
        if res.skip_reason is not None:
            image.error = res.skip_reason
            # A reference that points at nothing usable is the user's to fix: report it as failed.
            image.status = FAILED if _is_failure(res.skip_reason) else SKIPPED
            return image
        if not consistent:
            image.error = "note not rewritten: image scan did not match the parser"
            return image
        if self.dry_run:
            image.error = "dry run: would upload"
            return image
        result = results.get(_item_key(res) or "")
        if result is None:  # pragma: no cover - every resolvable item was uploaded
            image.status, image.error = FAILED, "not uploaded"
            return image
        image.status, image.url, image.error = result.status, result.url, result.error
        return image

    def _rewrite(self, outcome: NoteOutcome, urls: dict[str, str]) -> None:
        from imgsync.markdown import find_images, rewrite
        from imgsync.notefile import update_note

        resolver = self._resolver(outcome.path)

        def transform(note: Any) -> str:
            # Scan the text as it is now: an edit made while the images uploaded is kept.
            scan = find_images(note.text)
            if not scan.consistent:
                return note.text
            mapping: dict[ImageRef, str] = {}
            for ref in scan.refs:
                key = _item_key(resolver.resolve(outcome.path, ref, scan.front_matter))
                if key in urls:
                    mapping[ref] = urls[key]
            return rewrite(note.text, mapping) if mapping else note.text

        try:
            _final, changed = update_note(outcome.path, transform)
        except ImgsyncError as exc:
            outcome.error = str(exc)
            return
        outcome.changed = changed

    def _stamp(self, cache: Cache, note: Path) -> None:
        from imgsync.cache import NoteStamp

        try:
            st = note.stat()
            digest = _digest(note)
        except OSError:
            return
        cache.put_note(note.absolute(), NoteStamp.from_stat(st, digest))


def _digest(note: Path) -> str:
    import hashlib

    return hashlib.blake2b(note.read_bytes(), digest_size=16).hexdigest()


def _item_key(res: Resolved) -> str | None:
    """The identity of what a reference needs uploaded, or None when it needs nothing."""
    if res.skip_reason is not None:
        return None
    if res.kind == "local" and res.path is not None:
        return "file:" + str(res.path)
    if res.kind == "remote" and res.url:
        return "url:" + res.url
    if res.kind == "data" and res.url:
        return "data:" + hashlib.md5(res.url.encode("utf-8", "surrogateescape")).hexdigest()
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
    path = scratch / (hashlib.md5(url.encode("utf-8", "surrogateescape")).hexdigest() + ".img")
    path.write_bytes(data)
    return path


# Skip reasons that are the user's problem (reported as failed) rather than policy (skipped).
_FAILURE_WORDS = ("not found", "ambiguous", "no such", "not an image", "unreadable")


def _is_failure(reason: str) -> bool:
    lowered = reason.lower()
    return any(word in lowered for word in _FAILURE_WORDS)


def _planned_edits(resolved: list[Resolved]) -> list[tuple[str, str]]:
    return [
        (r.ref.raw, "<url of " + (str(r.path) if r.path else r.url or "") + ">")
        for r in resolved
        if _item_key(r) is not None
    ]


def _url_folder(url: str) -> str | None:
    """``https://host/uid/x.png`` → ``https://host/uid/``: what every link of the account shares."""
    if not url or "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    parts = rest.split("/")
    if len(parts) < 3:
        return None
    return f"{scheme}://{'/'.join(parts[:-1])}/"
