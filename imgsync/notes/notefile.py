"""Read and write notes without losing a byte or a user's edit.

Notes are the user's data; imgsync only swaps link destinations in them. So:

* Notes are read as **bytes** and decoded as UTF-8 with ``surrogateescape``, never in text mode
  (which would change CRLF). A UTF-8 BOM is remembered and restored; line endings, a missing final
  newline and every other byte come back exactly as they were.
* **Invalid UTF-8 is processed, byte-preserving.** Each undecodable byte becomes a lone surrogate in
  the text and turns back into the same byte on write; the scanner never rewrites outside image
  destinations, so those bytes are untouched. Refusing such notes would leave users with a legacy
  byte here and there unable to use imgsync for nothing.
* What cannot be a note is refused with a :class:`NoteError` per note, which the caller reports and
  goes on: NUL bytes (binary files, and UTF-16/UTF-32 notes, which are full of NULs), files over
  ``max_bytes``, unreadable files, broken symlinks, anything that is not a regular file.
* Writes are atomic: a temporary file in the same folder (of the symlink's target, so the symlink
  stays), fsync, the original mode, ``os.replace``, fsync of the folder. A failure at any point
  leaves the note as it was and no temporary file behind.
* A note the user protected is never replaced, though a replace would only need the folder to be
  writable: one whose mode allows no writing, one this user may not write (or an immutable one),
  one in a read-only folder, and one with several hard links (a replace would split them) are
  refused with a :class:`NoteError` saying so.
* Just before the swap the file is checked again (inode, size, mtime and bytes). If the user
  saved it meanwhile, :class:`NoteChanged` is raised and :func:`update_note` redoes the pass on the
  new text: an edit is never overwritten. No change means no write (mtime untouched).
* **The last window is closed where the system allows it.** On Linux the rewrite is swapped in
  with ``renameat2(RENAME_EXCHANGE)`` (:mod:`imgsync.notes.swap`) instead of ``os.replace``: the
  file that held the note's name at that instant comes out under the temporary name, and is
  checked once more. If it is not what was read (the user saved in the microseconds after the last
  check), the two are swapped back, the rewrite is dropped and the pass redone on the user's text.
  Where the call is missing or the filesystem refuses it, ``os.replace`` is used as before, and a
  save landing in the 30-80 microseconds between the check and the replace is overwritten.
* Reads and writes hold the note's lock (:mod:`imgsync.notes.notelock`), so two imgsync processes
  never write one note at once; and a process that is stopping lets the writes in flight finish
  and starts no new one.

A replace (or swap) gives the note a new inode: extended attributes and ACLs are not carried over
(hence hard-linked notes are refused). An editor that keeps the note open and writes into it after
the swap writes into the old file, as it would after any atomic save.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from imgsync.errors import ItemError
from imgsync.notes import swap
from imgsync.notes.notelock import note_file, notes_locked, write_admitted

__all__ = [
    "DEFAULT_MAX_BYTES",
    "NoteChanged",
    "NoteError",
    "NoteText",
    "note_bytes",
    "notes_written",
    "read_note",
    "unwritable_reason",
    "update_note",
    "write_note",
]

log = logging.getLogger(__name__)

UTF8_BOM = b"\xef\xbb\xbf"
#: Byte-order marks of UTF-16/32 notes, named in the error instead of a bare "binary".
WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")

#: Notes larger than this are refused: real notes are kilobytes, and a 50 MB "note" is a log, a
#: dump or a mistake that would take seconds of parsing for nothing.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: Bytes in a MB as the limit is spelt to users ("20 MB").
MB = 1024 * 1024

#: How often a note that changes while being read is read again before giving up.
READ_ATTEMPTS = 3

#: How often :func:`update_note` redoes its pass on a note that keeps being edited.
DEFAULT_ATTEMPTS = 5

#: Permission bits that allow writing to someone; a note or folder with none of them is read-only.
WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH

#: Suffix of imgsync's temporary files (watchers ignore them; a leftover is recognisable).
TEMP_SUFFIX = ".imgsync-tmp"


class NoteError(ItemError):
    """This note cannot be processed; the message says why. Other notes go on."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class NoteChanged(NoteError):
    """The note changed on disk since it was read; read it again and redo the pass."""

    retryable = True


@dataclass(frozen=True)
class NoteText:
    """A note as read: its exact bytes, its text (BOM removed, surrogateescape) and its stat."""

    path: Path
    raw: bytes
    text: str
    bom: bool
    stat: os.stat_result


def read_note(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> NoteText:
    """Read a note. Raises :class:`NoteError` with a clear reason if it is not a usable note.

    Waits while another imgsync process holds the note (it is rewriting it, or uploading its
    images: the read then sees their links).
    """
    path = Path(path)
    with notes_locked([path]):
        return _read_note(path, max_bytes)


def _read_note(path: Path, max_bytes: int) -> NoteText:
    info = _stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NoteError(path, "not a regular file")
    if info.st_size > max_bytes:
        raise NoteError(path, _too_big(f"{info.st_size / MB:.1f} MB", max_bytes))
    for _ in range(READ_ATTEMPTS):
        raw, info, stable = _read_consistently(path, max_bytes)
        if stable:
            break
    else:
        raise NoteError(path, "kept changing while it was read; try again later")
    if len(raw) > max_bytes:
        raise NoteError(path, _too_big("grew while it was read", max_bytes))
    if raw.startswith(WIDE_BOMS):
        raise NoteError(path, "UTF-16/UTF-32 text; imgsync reads UTF-8 notes only")
    if b"\x00" in raw:
        raise NoteError(path, "binary file (contains NUL bytes), not a text note")
    bom = raw.startswith(UTF8_BOM)
    text = raw[len(UTF8_BOM) if bom else 0 :].decode("utf-8", "surrogateescape")
    return NoteText(path=path, raw=raw, text=text, bom=bom, stat=info)


def _too_big(size: str, max_bytes: int) -> str:
    """Why a note over the limit is not read, with the limit in the words the README uses."""
    limit = f"{max_bytes / MB:g} MB" if max_bytes >= MB else f"{max_bytes} bytes"
    return f"too big ({size}): imgsync reads notes of up to {limit}; left alone"


def note_bytes(note: NoteText, new_text: str) -> bytes:
    """The bytes :func:`write_note` writes for ``new_text``: its UTF-8 (the bytes that are not
    UTF-8 restored), after the note's BOM if it had one. Raises :class:`NoteError` if the text
    cannot be encoded."""
    try:
        body = new_text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as error:
        raise NoteError(note.path, f"the new text cannot be encoded: {error}") from error
    return (UTF8_BOM if note.bom else b"") + body


def write_note(note: NoteText, new_text: str) -> bool:
    """Atomically replace the note's content by ``new_text`` (BOM restored).

    Returns False, writing nothing, if the bytes would not change. Raises :class:`NoteChanged` if
    the file on disk is no longer what ``note`` holds (also when the user saves during the swap),
    and :class:`NoteError` if writing fails (the note is then intact).
    """
    new_raw = note_bytes(note, new_text)
    if new_raw == note.raw:
        return False
    target = Path(note_file(note.path))  # a symlinked note: its target; the link stays a link
    with notes_locked([note.path]), write_admitted():
        _write(note, target, new_raw)
    _tell_listeners(note.path, new_raw)
    return True


def _write(note: NoteText, target: Path, new_raw: bytes) -> None:
    folder = target.parent
    current = _stat_for_write(note, target)
    problem = _unwritable(target, current)
    if problem is not None:
        raise NoteError(note.path, problem)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as error:
        raise NoteError(note.path, f"cannot create a temporary file: {error}") from error
    # What the temporary name holds: "ours" (the rewrite), "old" (the note as read, swapped out),
    # "theirs" (a file the user saved during the swap) or "gone" (renamed over the note).
    holds = "ours"
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(new_raw)
            handle.flush()
            _copy_mode(handle.fileno(), current)
            os.fsync(handle.fileno())
        _ensure_unchanged(note, target)
        if _swap(note, temp_name, target):
            holds = "unchecked"
            holds = "old" if _same_as_read(note, temp_name) else "theirs"
            if holds == "theirs":
                _swap(note, temp_name, target)  # put the user's file back
                holds = "ours"
                raise NoteChanged(note.path, "was saved by someone else while being rewritten")
        else:
            os.replace(temp_name, target)
            holds = "gone"
        _fsync_folder(folder)
    except NoteError:
        raise
    except OSError as error:
        raise NoteError(note.path, _failure(error, holds, temp_name)) from error
    finally:
        if holds == "unchecked" and not _same_as_read(note, temp_name):
            # Stopped between the swap and its check: what came out may be a user's save.
            log.warning("%s: the version swapped out is kept as %s", note.path, temp_name)
        elif holds in ("ours", "old", "unchecked"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)


def _swap(note: NoteText, temp_name: str, target: Path) -> bool:
    """Exchange the temporary file and the note; False where names cannot be exchanged here."""
    try:
        return swap.exchange(temp_name, target)
    except FileNotFoundError:
        raise NoteChanged(note.path, "was deleted or moved while being processed") from None


def _failure(error: OSError, holds: str, temp_name: str) -> str:
    """The reason a write failed; where a user's save was set aside, where it is."""
    if holds == "theirs":
        return (
            f"was saved while being rewritten, and putting the saved version back failed "
            f"({error}); it is kept as {temp_name}"
        )
    return f"could not write: {error}"


def update_note(
    path: Path,
    transform: Callable[[NoteText], str],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[NoteText, bool]:
    """Read, transform and write a note, redoing the pass when the user edits it meanwhile.

    Returns the note as it now is on disk and whether it was changed.
    """
    path = Path(path)
    for attempt in range(1, attempts + 1):
        with notes_locked([path]):
            note = _read_note(path, max_bytes)
            new_text = transform(note)
            try:
                changed = write_note(note, new_text)
            except NoteChanged:
                log.info("%s changed while being processed (attempt %d); redoing", path, attempt)
                continue
        if not changed:
            return note, False
        new_raw = note_bytes(note, new_text)
        try:
            info = os.stat(path)
        except OSError:
            # Written, then moved or deleted at once: the write stands; the stat is only a hint
            # (callers that record the note look at it again).
            info = note.stat
        written = NoteText(path=path, raw=new_raw, text=new_text, bom=note.bom, stat=info)
        return written, True
    raise NoteChanged(path, f"kept changing during {attempts} attempts; left alone")


# --------------------------------------------------------------------------------------------------


def _stat(path: Path) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise NoteError(path, "broken symlink (its target does not exist)") from None
        raise NoteError(path, "no such file") from None
    except PermissionError:
        raise NoteError(path, "unreadable: permission denied") from None
    except OSError as error:
        raise NoteError(path, f"unreadable: {error.strerror or error}") from error


def _read_consistently(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result, bool]:
    """Read the file and tell whether it stayed the same while being read."""
    try:
        with open(path, "rb") as handle:
            before = os.fstat(handle.fileno())
            raw = handle.read(max_bytes + 1)
            after = os.fstat(handle.fileno())
    except PermissionError:
        raise NoteError(path, "unreadable: permission denied") from None
    except IsADirectoryError:
        raise NoteError(path, "not a regular file") from None
    except OSError as error:
        raise NoteError(path, f"unreadable: {error.strerror or error}") from error
    stable = (
        before.st_size == after.st_size
        and before.st_mtime_ns == after.st_mtime_ns
        and (len(raw) == after.st_size or len(raw) > max_bytes)
    )
    return raw, after, stable


def unwritable_reason(path: Path) -> str | None:
    """Why the note at ``path`` must not be rewritten, or None when it may be (or does not exist:
    reading it says so). What :func:`write_note` refuses, asked before any work is done."""
    target = Path(note_file(path))
    try:
        info = os.stat(target)
    except OSError:
        return None
    return _unwritable(target, info) if stat.S_ISREG(info.st_mode) else None


def _unwritable(target: Path, info: os.stat_result) -> str | None:
    """Why the file ``target`` (stat ``info``) must be left alone, or None.

    An atomic replace needs write permission on the folder only, so without these checks a note
    the user protected would be replaced all the same. Refused, each with its reason: a note whose
    mode allows nobody to write it (``chmod a-w``: root, who may write anything, honours it too),
    one this user may not write (an owner's note, an immutable file), one in a folder that is
    read-only in the same ways, and a note with several hard links (a replace gives it a new inode,
    and the other names would silently keep the old text from then on).
    """
    if not info.st_mode & WRITE_BITS:
        return "read-only (its permissions allow no writing); left alone"
    if not os.access(target, os.W_OK):
        return "not writable by this user (permission denied or immutable); left alone"
    if info.st_nlink > 1:
        return (
            f"has {info.st_nlink} hard links, which a rewrite would split (it replaces the "
            "file); left alone"
        )
    folder = target.parent
    try:
        folder_info = os.stat(folder)
    except OSError as error:
        return f"its folder cannot be examined: {error.strerror or error}; left alone"
    if not folder_info.st_mode & WRITE_BITS or not os.access(folder, os.W_OK | os.X_OK):
        return "its folder is read-only (a rewrite replaces the file there); left alone"
    return None


def _stat_for_write(note: NoteText, target: Path) -> os.stat_result:
    """The file's stat just before writing: its mode now, not when it was read."""
    try:
        return os.stat(target)
    except FileNotFoundError:
        raise NoteChanged(note.path, "was deleted or moved while being processed") from None
    except OSError as error:
        raise NoteError(note.path, f"cannot be examined: {error.strerror or error}") from error


def _ensure_unchanged(note: NoteText, target: Path) -> None:
    """Raise :class:`NoteChanged` unless the file still has the inode, size, mtime, bytes read."""
    if not os.path.lexists(target):
        raise NoteChanged(note.path, "was deleted or moved while being processed")
    if not _same_as_read(note, target):
        raise NoteChanged(note.path, "was changed by someone else while being processed")


def _same_as_read(note: NoteText, name: str | Path) -> bool:
    """Whether the file ``name`` has the inode, size, mtime and bytes ``note`` was read with."""
    try:
        info = os.stat(name)
        with open(name, "rb") as handle:
            current = handle.read(len(note.raw) + 1)
    except FileNotFoundError:
        return False
    return (
        info.st_ino == note.stat.st_ino
        and info.st_size == note.stat.st_size
        and info.st_mtime_ns == note.stat.st_mtime_ns
        and current == note.raw
    )


# ------------------------------------------------------------------- who is told of each write

#: Called with (the note's path as given, the bytes now in it) after each rewrite.
WriteListener = Callable[[Path, bytes], None]
_listeners: list[WriteListener] = []
_listeners_lock = threading.Lock()


@contextlib.contextmanager
def notes_written(listener: WriteListener) -> Iterator[None]:
    """Call ``listener(path, raw)`` after every note this process rewrites while the block runs.

    The watcher remembers what imgsync itself wrote this way, so the filesystem event its own
    write causes is not taken for the user's edit. Called from the writing thread; keep it quick.
    """
    with _listeners_lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(listener)


def _tell_listeners(path: Path, raw: bytes) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(path, raw)


def _copy_mode(fd: int, original: os.stat_result) -> None:
    os.fchmod(fd, stat.S_IMODE(original.st_mode))
    if hasattr(os, "fchown") and (original.st_uid, original.st_gid) != (os.getuid(), os.getgid()):
        # Keep the owner when allowed (e.g. running as root over someone's notes).
        with contextlib.suppress(PermissionError):
            os.fchown(fd, original.st_uid, original.st_gid)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable. Not every platform or filesystem can fsync a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
