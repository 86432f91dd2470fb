"""Decide what an image reference points at: a local file, a remote URL, the image bed, a data URI.

Safety comes first. Notes are often shared or synced from elsewhere, and a note that says
``![x](/etc/passwd)`` or ``![x](~/.ssh/id_rsa)`` must never make imgsync publish that file on a
public image bed. So a local file is only a candidate when

* it exists and is a regular file, after **all symlinks are resolved** (a link inside the root that
  points at ``/etc/passwd`` is outside the root);
* its real path is **inside the root** (``--root``, default the nearest folder with ``.obsidian``),
  unless the caller allows files outside it;
* both the name in the note and the real file carry an **image extension**.

Lookup follows what editors do (``docs/markdown-rules.md``): decode the reference for lookup
(backslash escapes and entities were decoded by the scanner; here percent-encoding and ``file://``),
try the raw name too, then look relative to the note, then to the root, then for a **unique** file
of that name (or path suffix) anywhere in the root. Two candidates are reported as ambiguous, never
guessed: guessing by basename is how other uploaders published the wrong file. A symlinked note is
read both next to the link and next to the file it points at; a name that means two different
files that way is reported too.

A ``#fragment`` after the file name (Obsidian's ``![[icon.svg#icon]]``, ``![a](x.png#outline)``,
which a vault's CSS selects images by) is not part of the file looked up: it is returned in
:attr:`Resolved.fragment`, for the new link to carry; so is a remote URL's (``https://host/a.png#icon``),
which is never sent to the service or the host. A file that is not found, but whose name is
found exactly once elsewhere in the folder being synced, gets a hint naming the ``--root`` that
would find it (a vault copied without its ``.obsidian`` folder, synced a subfolder at a time).

Only reads the filesystem; no network.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote

from imgsync.notes.markdown import ImageRef, has_image_extension
from imgsync.notes.walk import SKIP_DIRS

__all__ = ["Resolved", "Resolver", "find_root", "remote_url"]

log = logging.getLogger(__name__)

#: A folder holding this is an Obsidian vault: the default root.
VAULT_MARKER = ".obsidian"

#: Front matter key with which Typora makes ``/``-paths relative to a folder of the user's choice.
TYPORA_ROOT_KEY = "typora-root-url"

#: Ambiguous names list at most this many of the files they could mean.
AMBIGUOUS_SHOWN = 3

_REMOTE_RE = re.compile(r"(?:https?:)?//[^/]", re.IGNORECASE)
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_WINDOWS_ABSOLUTE_RE = re.compile(r"[A-Za-z]:[\\/]|\\\\")
_HOST_URL_RE = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//([^/?#]*)(.*)", re.DOTALL)


@dataclass(frozen=True)
class Resolved:
    """What one :class:`~imgsync.notes.markdown.ImageRef` points at.

    ``skip_reason`` is set when the image must not be uploaded (outside the root, not found,
    ambiguous, a data URI not allowed, an empty destination, not an image, already hosted...).
    ``fragment`` is the ``#fragment`` written after a local file's name or a remote URL (with its
    ``#``), or "": the new link carries it; a remote ``url`` never holds it (fragments are not
    sent over HTTP, and the URL is what the service migrates and the index remembers).
    ``missing`` is True when the reason is that no file of that name was found.
    """

    ref: ImageRef
    kind: Literal["local", "remote", "hosted", "data"]
    path: Path | None = None
    url: str | None = None
    skip_reason: str | None = None
    fragment: str = ""
    missing: bool = False


def remote_url(target: str) -> tuple[str, str] | None:
    """The URL an ``http(s)://`` or ``//`` link target names, without its ``#fragment``, and the
    fragment (with its ``#``; "" when there is none or it is empty); None for any other target."""
    if not _REMOTE_RE.match(target):
        return None
    url = "https:" + target if target.startswith("//") else target
    url, _hash, fragment = url.partition("#")
    return url, "#" + fragment if fragment else ""


def find_root(path: Path) -> Path:
    """The nearest folder at or above ``path`` holding ``.obsidian``, else the folder given.

    ``path`` may be a note (its folder is used) or a folder.
    """
    path = Path(path).absolute()
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / VAULT_MARKER).is_dir():
            return folder
    return start


class Resolver:
    """Resolves references of many notes below one root; the file-name index is shared."""

    def __init__(
        self,
        root: Path,
        *,
        hosted_prefixes: Sequence[str] = (),
        allow_outside_root: bool = False,
        allow_data: bool = False,
    ) -> None:
        self.root = Path(root).resolve()
        self.allow_outside_root = allow_outside_root
        self.allow_data = allow_data
        self._hosted = [_split_url(prefix) for prefix in hosted_prefixes if prefix]
        self._index: dict[str, list[Path]] | None = None
        self._index_lock = threading.Lock()
        # The image files by name below each folder a hint looked in (see _root_hint).
        self._area_indexes: dict[Path, dict[str, list[Path]]] = {}

    # ---------------------------------------------------------------------------------------------

    def resolve(
        self,
        note: Path,
        ref: ImageRef,
        front_matter: Mapping[str, str] | None = None,
        *,
        area: Path | None = None,
    ) -> Resolved:
        """Resolve ``ref`` found in ``note`` (front matter as :func:`find_images` returned it).

        ``area`` is the folder being synced (the path given, or a given note's folder): a file not
        found, whose name is found exactly once below ``area``, gets a hint naming the ``--root``
        that would find it.
        """
        return self.resolve_all(note, [ref], front_matter, area=area)[0]

    def resolve_all(
        self,
        note: Path,
        refs: Sequence[ImageRef],
        front_matter: Mapping[str, str] | None = None,
        *,
        area: Path | None = None,
    ) -> list[Resolved]:
        """:meth:`resolve` for each of ``refs``, all found in ``note`` at once: where the note is
        (and whether it is a symlink) is looked up once, not once per reference, and so is the
        real path of each folder its images are in (:func:`_real_path`)."""
        where: list[tuple[Path, Path | None]] = []
        real_folders: dict[str, str] = {}

        def note_folders() -> tuple[Path, Path | None]:
            if not where:
                absolute = Path(note).absolute()
                where.append((absolute.parent, _real_folder_if_linked(absolute)))
            return where[0]

        return [
            self._resolve_one(note_folders, ref, front_matter or {}, area, real_folders)
            for ref in refs
        ]

    def _resolve_one(
        self,
        note_folders: Callable[[], tuple[Path, Path | None]],
        ref: ImageRef,
        front_matter: Mapping[str, str],
        area: Path | None,
        real_folders: dict[str, str],
    ) -> Resolved:
        target = ref.target.strip()
        if not target:
            return Resolved(ref, "local", skip_reason="empty destination: nothing to upload")
        if target[:5].lower() == "data:":
            reason = None if self.allow_data else "data URI (not uploaded unless asked)"
            return Resolved(ref, "data", url=target, skip_reason=reason)
        if self._is_hosted(target):
            return Resolved(ref, "hosted", url=target, skip_reason="already on the image bed")
        remote = remote_url(target)
        if remote is not None:
            url, fragment = remote
            return Resolved(ref, "remote", url=url, fragment=fragment)
        scheme = _SCHEME_RE.match(target)
        if scheme and scheme.group(1).lower() != "file" and not _WINDOWS_ABSOLUTE_RE.match(target):
            return Resolved(
                ref,
                "remote",
                url=target,
                skip_reason=f"unsupported URL scheme {scheme.group(1)!r}",
            )
        folder, real_folder = note_folders()
        resolved = self._resolve_local(folder, ref, front_matter, real_folders)
        if real_folder is not None:
            by_target = self._resolve_local(real_folder, ref, front_matter, real_folders)
            resolved = _agree(ref, resolved, by_target)
        if resolved.missing and area is not None:
            hint = self._root_hint(ref, Path(area))
            if hint:
                resolved = replace(resolved, skip_reason=f"{resolved.skip_reason}; {hint}")
        return resolved

    # ---------------------------------------------------------------------------------------------

    def _is_hosted(self, target: str) -> bool:
        if not self._hosted:
            return False
        host, rest = _split_url(target)
        if host is None:
            return False
        return any(
            host == prefix_host and rest.startswith(prefix_rest)
            for prefix_host, prefix_rest in self._hosted
        )

    def _resolve_local(
        self,
        note_dir: Path,
        ref: ImageRef,
        front_matter: Mapping[str, str],
        real_folders: dict[str, str],
    ) -> Resolved:
        """Resolve ``ref`` as written in a note in the folder ``note_dir`` (``real_folders``: see
        :func:`_real_path`)."""
        names = _lookup_names(ref)
        windows_only = False
        typora_root = _typora_root(front_matter, note_dir)
        for name, fragment in names:
            for candidate in self._candidates(name, note_dir, typora_root):
                if candidate is None:
                    windows_only = True
                    continue
                try:
                    found = candidate.is_file()
                except OSError as error:  # a name too long, a folder that may not be searched
                    return Resolved(
                        ref,
                        "local",
                        skip_reason=f"cannot look up {ref.target!r}: {error.strerror or error}",
                    )
                if found:
                    return self._check(ref, candidate, fragment, real_folders)
        for name, fragment in names:
            matches = self._lookup_by_name(name)
            if len(matches) == 1:
                return self._check(ref, matches[0], fragment, real_folders)
            if len(matches) > 1:
                shown = ", ".join(str(match) for match in matches[:AMBIGUOUS_SHOWN])
                more = "" if len(matches) <= AMBIGUOUS_SHOWN else ", ..."
                return Resolved(
                    ref,
                    "local",
                    skip_reason=(
                        f"ambiguous: {len(matches)} files named {name!r} in the root "
                        f"({shown}{more}); not guessing"
                    ),
                )
        if windows_only and os.name != "nt":
            reason = f"Windows path {ref.target!r}: not found on this system"
            return Resolved(ref, "local", skip_reason=reason)
        return Resolved(ref, "local", skip_reason=f"file not found: {ref.target!r}", missing=True)

    def _candidates(self, name: str, note_dir: Path, typora_root: Path | None) -> list[Path | None]:
        """Paths ``name`` may mean, in order; None stands for a Windows path on another system."""
        if name[:5].lower() == "file:":
            name = _file_url_path(name)
            if not name:
                return []
        if _WINDOWS_ABSOLUTE_RE.match(name):
            return [Path(name)] if os.name == "nt" else [None]
        spellings = [name]
        if os.sep == "/" and "\\" in name:
            spellings.append(name.replace("\\", "/"))  # a Windows-style relative path
        paths: list[Path | None] = []
        for spelling in spellings:
            if spelling.startswith("/"):
                inner = spelling.lstrip("/")
                if typora_root is not None:
                    paths.append(typora_root / inner)
                paths.append(Path(spelling))
                paths.append(self.root / inner)
            else:
                paths.append(note_dir / spelling)
                paths.append(self.root / spelling)
        return paths

    def _check(
        self, ref: ImageRef, candidate: Path, fragment: str, real_folders: dict[str, str]
    ) -> Resolved:
        try:
            real = _real_path(candidate, real_folders)
        except (OSError, RuntimeError) as error:  # vanished, loop, permission
            return Resolved(ref, "local", skip_reason=f"cannot resolve {candidate}: {error}")
        if not self.allow_outside_root and not real.is_relative_to(self.root):
            log.info("not uploading %s: outside the root %s", real, self.root)
            return Resolved(
                ref,
                "local",
                path=real,
                skip_reason=(
                    f"outside the root {self.root} (use --allow-outside-root to upload it)"
                ),
            )
        if not (has_image_extension(candidate.name) and has_image_extension(real.name)):
            return Resolved(
                ref, "local", path=real, skip_reason=f"not an image file by its name: {real}"
            )
        if not real.is_file():
            return Resolved(ref, "local", path=real, skip_reason=f"not a regular file: {real}")
        return Resolved(ref, "local", path=real, fragment=fragment)

    # ---------------------------------------------------------------------------------------------

    def _lookup_by_name(self, name: str) -> list[Path]:
        """Files in the root whose path ends with ``name`` (relative, no ``.``/``..`` parts)."""
        name = name.replace("\\", "/") if os.sep == "/" else name
        if name.startswith("/") or _SCHEME_RE.match(name):
            return []
        parts = PurePosixPath(name).parts
        if not parts or any(part in (".", "..") for part in name.split("/")):
            return []
        index = self._name_index()
        return [path for path in index.get(parts[-1], ()) if path.parts[-len(parts) :] == parts]

    def _name_index(self) -> dict[str, list[Path]]:
        with self._index_lock:
            if self._index is None:
                self._index = _build_index(self.root)
            return self._index

    # ---------------------------------------------------------------------------------------------

    def _root_hint(self, ref: ImageRef, area: Path) -> str:
        """``run with --root DIR`` when that root would find the file ``ref`` names, else "".

        Given only when the name is found exactly once below ``area`` (the folder being synced),
        and with ``DIR`` as the root the lookup would reach that file: ``DIR/name`` for a name
        written from the root (``/Attachments/x.png``), else by its unique name in ``DIR`` (the
        smallest folder holding the present root and the file). A name found several times, or a
        ``../`` path (which no root changes), gets no hint: a guess is what the lookup refuses.
        """
        area = area.resolve()
        for name, _fragment in _lookup_names(ref):
            name = name.replace("\\", "/") if os.sep == "/" else name
            if _SCHEME_RE.match(name):
                continue
            parts = [part for part in PurePosixPath(name).parts if part != "/"]
            if not parts or ".." in parts:
                continue
            matches = self._area_index(area).get(parts[-1], [])
            if len(matches) > 1:
                return ""
            if not matches or matches[0].parts[-len(parts) :] != tuple(parts):
                continue
            found = matches[0]
            if name.startswith("/"):
                folder = Path(*found.parts[: -len(parts)])
            else:
                folder = Path(os.path.commonpath([self.root, found.parent]))
            if folder == self.root or not folder.is_relative_to(area):
                continue
            return (
                f"there is one at {_shown(found)}: run with --root {shlex.quote(_shown(folder))} "
                "to find it"
            )
        return ""

    def _area_index(self, area: Path) -> dict[str, list[Path]]:
        """The image files by name below ``area``: the root's own index (or its part below
        ``area``) when ``area`` is inside the root, else a walk of ``area``, once per run."""
        index = self._area_indexes.get(area)
        if index is None:
            if area.is_relative_to(self.root):
                index = {
                    name: [path for path in paths if path.is_relative_to(area)]
                    for name, paths in self._name_index().items()
                }
            else:
                index = _build_index(area)
            with self._index_lock:
                self._area_indexes[area] = index
        return index


def _shown(path: Path) -> str:
    """``path`` for a message: relative to the current folder where it is below it."""
    try:
        return path.relative_to(Path.cwd()).as_posix() or "."
    except (ValueError, OSError):
        return str(path)


def _real_path(path: Path, real_folders: dict[str, str]) -> Path:
    """``path.resolve(strict=True)``: every symlink resolved, an error if anything is missing.

    ``real_folders`` holds the real path of each folder already resolved, by its path as
    written: a note's images are mostly in one folder, and resolving a path takes a system call
    per component of it. So the folder is resolved once, and then only the file's own name is
    looked at; a file that is itself a symlink is resolved all the way as before. The memo is
    kept for one note's references (:meth:`Resolver.resolve_all`), never longer, so a folder
    moved or relinked between notes is seen as it is.
    """
    folder, name = os.path.split(path)
    if name in ("", ".", ".."):
        return path.resolve(strict=True)
    real_folder = real_folders.get(folder)
    if real_folder is None:
        real_folder = real_folders[folder] = os.path.realpath(folder, strict=True)
    real = os.path.join(real_folder, name)
    if stat.S_ISLNK(os.lstat(real).st_mode):
        return path.resolve(strict=True)
    return Path(real)


def _real_folder_if_linked(note: Path) -> Path | None:
    """The real folder of a symlinked note when it is not the folder of the link, else None."""
    if not os.path.islink(note):
        return None
    real = Path(os.path.realpath(note)).parent
    return None if real == Path(os.path.realpath(note.parent)) else real


def _agree(ref: ImageRef, by_link: Resolved, by_target: Resolved) -> Resolved:
    """One answer for a reference in a symlinked note, read next to the link (as a vault app shows
    the note) and next to the file it points at (as an editor opening that file shows it).

    When only one reading finds a file, that is the one meant. When both find files and they
    differ, a rewrite would change what one of the two views shows: reported, not guessed.
    """
    if by_target.path is None:
        return by_link
    if by_link.path is None:
        return by_target
    if by_link.path == by_target.path:
        return by_link
    return Resolved(
        ref,
        "local",
        skip_reason=(
            f"the note is a symlink: {ref.target!r} means {by_link.path} next to the link but "
            f"{by_target.path} next to the note it points at; not guessing"
        ),
    )


def _build_index(root: Path) -> dict[str, list[Path]]:
    """Every image file below ``root`` by name, walked once (symlinked folders not followed; the
    folders the note walk skips, :data:`~imgsync.notes.walk.SKIP_DIRS`, are skipped here too)."""
    index: dict[str, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for file_name in sorted(files):
            if has_image_extension(file_name):
                index.setdefault(file_name, []).append(Path(folder, file_name))
    return index


def _lookup_names(ref: ImageRef) -> list[tuple[str, str]]:
    """Spellings to try, best first, each with the fragment the link keeps when it is the one
    found: percent-decoded, as decoded by the scanner, as written, and each without a ``?query``
    or ``#fragment`` (only that cut spelling leaves a fragment: a file really named ``a#b.png``,
    found by its whole name, has none)."""
    target = ref.target.strip()
    if ref.kind == "embed":  # its raw is ![[...]], and the scanner already cut the file name
        fragment, written = _embed_fragment(ref.raw), ()
    else:
        hash_at = target.find("#")
        fragment = target[hash_at:] if 0 < hash_at < len(target) - 1 else ""
        written = (ref.raw.strip(),)
    names: list[str] = []
    for base in (target, *written):
        if "%" in base and base[:5].lower() != "file:":
            names.append(unquote(base, errors="surrogateescape"))
        names.append(base)
    spellings = [(name, fragment if ref.kind == "embed" else "") for name in names]
    for name in names:
        cut = min((i for i in (name.find("?"), name.find("#")) if i > 0), default=-1)
        if cut > 0:
            spellings.append((name[:cut], fragment))
    first: dict[str, str] = {}
    for name, kept in spellings:
        if name and name not in first:
            first[name] = kept
    return list(first.items())


def _embed_fragment(raw: str) -> str:
    """The ``#fragment`` of an embed ``![[file#fragment|alias]]`` (``\\|`` in a table), or ""."""
    if not (raw.startswith("![[") and raw.endswith("]]")):
        return ""
    head = raw[3:-2].split("|", 1)[0]
    if head.endswith("\\"):
        head = head[:-1]
    _, hash_mark, fragment = head.partition("#")
    fragment = fragment.strip()
    return "#" + fragment if hash_mark and fragment else ""


def _file_url_path(url: str) -> str:
    """The local path of a ``file:`` URL, or '' for a file on another host."""
    rest = url[5:]
    if rest.startswith("//"):
        authority, _, path = rest[2:].partition("/")
        if authority.lower() not in ("", "localhost"):
            return ""
        rest = "/" + path
    path = unquote(rest, errors="surrogateescape")
    if re.match(r"/[A-Za-z]:[\\/]", path):
        path = path[1:]  # file:///C:/x.png
    return path


def _typora_root(front_matter: Mapping[str, str], note_dir: Path) -> Path | None:
    value = front_matter.get(TYPORA_ROOT_KEY, "").strip()
    if not value:
        return None
    if value[:5].lower() == "file:":
        value = _file_url_path(value)
    path = Path(value)
    return path if path.is_absolute() else note_dir / path


def _split_url(url: str) -> tuple[str | None, str]:
    """(lower-cased host, rest) of an absolute or scheme-relative URL; (None, url) otherwise.

    The scheme is ignored: http and https addresses of one image bed are the same files.
    """
    match = _HOST_URL_RE.fullmatch(url.strip())
    if match is None:
        return None, url
    return match.group(1).lower(), match.group(2)
