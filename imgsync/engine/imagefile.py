"""Checking a local file before it is uploaded: is it there, readable, of a size and a kind the
image bed accepts?

The kind comes from the file's leading bytes, never from its name: a PNG saved as ``x.jpg`` is a PNG
(and goes up with ``.png``), and an HTML error page saved as ``x.png`` is refused here instead of
after an upload. Every refusal is an :class:`ImageFileError` (an :class:`~imgsync.errors.ItemError`:
the other items go on) whose ``reason`` callers can switch on and whose message tells the user what
is wrong in words.

The file is stat'ed before it is opened, so a FIFO or a device is refused without blocking, and it
is opened once, non-blocking, to read only :data:`SNIFF_BYTES`.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from imgsync.errors import ItemError
from imgsync.service import MAX_IMAGE_BYTES

# Bytes read to recognise a file. Binary formats need 12; an SVG may open with an XML declaration,
# comments and a DOCTYPE (Illustrator's carries a block of entity declarations) before its <svg>.
SNIFF_BYTES = 8192

MEGABYTE = 1024 * 1024


class ImageType(NamedTuple):
    """How the image bed should see one kind of image."""

    ext: str  # canonical extension, with the dot: what a remote name ends with
    mime: str


# The formats the image bed documents (png, gif, jpeg/jpg, tiff/tif, webp, svg, bmp).
IMAGE_TYPES: Mapping[str, ImageType] = MappingProxyType(
    {
        "png": ImageType(".png", "image/png"),
        "jpeg": ImageType(".jpg", "image/jpeg"),
        "gif": ImageType(".gif", "image/gif"),
        "webp": ImageType(".webp", "image/webp"),
        "svg": ImageType(".svg", "image/svg+xml"),
        "bmp": ImageType(".bmp", "image/bmp"),
        "tiff": ImageType(".tiff", "image/tiff"),
    }
)

ACCEPTED_KINDS_TEXT = ", ".join(IMAGE_TYPES)


class Reason(StrEnum):
    """Why a file cannot be uploaded."""

    MISSING = "missing"
    DANGLING_SYMLINK = "dangling-symlink"
    SYMLINK_LOOP = "symlink-loop"
    IS_DIRECTORY = "is-directory"
    NOT_REGULAR = "not-regular"
    PERMISSION = "permission"
    UNREADABLE = "unreadable"
    NAME_TOO_LONG = "name-too-long"
    BAD_PATH = "bad-path"
    EMPTY = "empty"
    TOO_LARGE = "too-large"
    NOT_AN_IMAGE = "not-an-image"


class ImageFileError(ItemError):
    """A local file that cannot be uploaded. ``reason`` says why; the message says it in words."""

    def __init__(self, path: Path, reason: Reason, detail: str) -> None:
        self.path = path
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {detail}")


@dataclass(frozen=True)
class ImageFile:
    """A checked image file. ``stat`` is taken from the open file (``fstat``), the stamp the cache
    keys the file's md5 by."""

    path: Path
    size: int
    kind: str
    ext: str
    mime: str
    stat: os.stat_result


def check_image(path: Path) -> ImageFile:
    """Check that ``path`` is an image the image bed takes; raise :class:`ImageFileError` if not.

    The file may still change after this returns: whoever reads it for upload must check that the
    size it reads is the size returned here.
    """
    path = Path(path)
    _require_regular(path, _stat(path))
    fd = _open(path)
    try:
        st = os.fstat(fd)
        _require_regular(path, st)  # it may have been swapped since the stat
        if st.st_size == 0:
            raise ImageFileError(path, Reason.EMPTY, "is empty (0 bytes)")
        if st.st_size > MAX_IMAGE_BYTES:
            raise ImageFileError(
                path,
                Reason.TOO_LARGE,
                f"is {st.st_size / MEGABYTE:.1f} MB; the image bed takes at most "
                f"{MAX_IMAGE_BYTES // MEGABYTE} MB",
            )
        head = _read_head(path, fd)
    finally:
        os.close(fd)
    if not head:
        raise ImageFileError(path, Reason.EMPTY, "is empty (0 bytes)")
    kind = sniff(head)
    if kind is None:
        raise ImageFileError(
            path,
            Reason.NOT_AN_IMAGE,
            f"is not an image the image bed takes (it looks like {describe(head)}); "
            f"accepted: {ACCEPTED_KINDS_TEXT}",
        )
    image_type = IMAGE_TYPES[kind]
    return ImageFile(path, st.st_size, kind, image_type.ext, image_type.mime, st)


# -- recognising images ----------------------------------------------------------------------------

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_GIFS = (b"GIF87a", b"GIF89a")
_TIFFS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # little/big endian, classic/BigTIFF
# A BMP starts with "BM" - too short to trust on its own ("BMW..." in a text file) - so the size of
# the DIB header that follows must be one of the known versions (core, info, v2-v5).
_BMP_DIB_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_BMP_DIB_OFFSET = 14

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def sniff(head: bytes) -> str | None:
    """The kind (a key of :data:`IMAGE_TYPES`) of a file whose first bytes are ``head``, or None."""
    if head.startswith(_PNG):
        return "png"
    if head.startswith(_JPEG):
        return "jpeg"
    if head.startswith(_GIFS):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(_TIFFS):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= _BMP_DIB_OFFSET + 4:
        dib_size = int.from_bytes(head[_BMP_DIB_OFFSET : _BMP_DIB_OFFSET + 4], "little")
        if dib_size in _BMP_DIB_HEADER_SIZES:
            return "bmp"
    text = _as_text(head)
    if text is not None and _svg_root_follows_prolog(text):
        return "svg"
    return None


def _as_text(head: bytes) -> str | None:
    """``head`` as text if it can be the start of an XML document, else None."""
    if head.startswith(_UTF8_BOM):
        return head[len(_UTF8_BOM) :].decode("utf-8", "replace")
    if head.startswith(_UTF16_BOMS):
        return head.decode("utf-16", "replace")
    if b"\x00" in head:
        return None
    return head.decode("utf-8", "replace")


def _svg_root_follows_prolog(text: str) -> bool:
    """Whether the first element after the XML prolog (declaration, processing instructions,
    comments, DOCTYPE, whitespace) is ``<svg`` (or ``<prefix:svg``), case-insensitively."""
    lower = text.lower()
    pos = 0
    while True:
        while pos < len(lower) and lower[pos].isspace():
            pos += 1
        if lower.startswith("<?", pos):
            pos = _after(lower, "?>", pos + 2)
        elif lower.startswith("<!--", pos):
            pos = _after(lower, "-->", pos + 4)
        elif lower.startswith("<!doctype", pos):
            close = lower.find(">", pos)
            subset = lower.find("[", pos)
            if subset != -1 and (close == -1 or subset < close):  # internal subset may hold '>'
                close = lower.find(">", _after(lower, "]", subset))
            pos = close + 1 if close != -1 else -1
        else:
            break
        if pos < 0:
            return False  # the prolog runs past what was read
    if not lower.startswith("<", pos):
        return False
    end = pos + 1
    while end < len(lower) and not lower[end].isspace() and lower[end] not in ">/":
        end += 1
    name = lower[pos + 1 : end]
    return name == "svg" or name.endswith(":svg")


def _after(text: str, marker: str, start: int) -> int:
    found = text.find(marker, start)
    return -1 if found == -1 else found + len(marker)


# What a refused file looks like, so the message can say "a PDF document", not just "not an image".
# Formats the image bed does not take but users meet daily name the fix.
_LOOKALIKES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip-compressed data (a compressed .svgz? upload the plain .svg)"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "an ICO icon (not taken by the image bed; convert it to PNG)"),
    (b"\xff\x0a", "a JPEG XL image (not taken by the image bed; convert it to JPEG or PNG)"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image (not taken by the image bed; convert it to JPEG)"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio or video file"),
    (b"\x1aE\xdf\xa3", "a WebM or Matroska video"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_FTYP_BRANDS: tuple[tuple[tuple[bytes, ...], str], ...] = (
    (
        (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"),
        "a HEIC/HEIF photo (not taken by the image bed; convert it to JPEG)",
    ),
    ((b"avif", b"avis"), "an AVIF image (not taken by the image bed; convert it to PNG or JPEG)"),
)
_PREVIEW_BYTES = 8


def describe(head: bytes) -> str:
    """A short human description of what the bytes ``head`` look like (for refusal messages)."""
    for magic, what in _LOOKALIKES:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        for brands, what in _FTYP_BRANDS:
            if brand in brands:
                return what
        return "an MP4 or QuickTime video"
    if head[:4] == b"RIFF":
        return f"a RIFF {head[8:12].decode('latin-1').strip() or 'file'} file (not WebP)"
    text = _as_text(head)
    if text is None or "\ufffd" in text[: len(text) - 3]:  # a cut-off last character is fine
        preview = " ".join(f"{byte:02x}" for byte in head[:_PREVIEW_BYTES])
        return f"binary data of an unknown kind (starting {preview})"
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "an HTML page (a web page saved in place of the image?)"
    if start.startswith("<"):
        return "an XML or markup document without an <svg> root"
    if start.startswith(("{", "[")):
        return "JSON or other text"
    return "text"


# -- file system checks ----------------------------------------------------------------------------


def _stat(path: Path) -> os.stat_result:
    """``os.stat`` (following symlinks), each failure turned into a reason and words."""
    try:
        return os.stat(path)
    except ValueError as exc:  # a NUL character in the path
        raise ImageFileError(path, Reason.BAD_PATH, f"is not a usable path ({exc})") from None
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as exc:
        # stat needs no permission on the file itself, only to enter the folders on its path.
        raise _os_error(
            path, exc, "reach", denied="a folder on its path cannot be entered"
        ) from None


def _missing(path: Path) -> ImageFileError:
    try:
        if stat_module.S_ISLNK(os.lstat(path).st_mode):
            return ImageFileError(
                path,
                Reason.DANGLING_SYMLINK,
                f"is a broken symbolic link (its target {os.readlink(path)} does not exist)",
            )
    except OSError:
        pass
    return ImageFileError(path, Reason.MISSING, "no such file")


def _os_error(path: Path, exc: OSError, doing: str, *, denied: str = "") -> ImageFileError:
    code = exc.errno
    if code == errno.ELOOP:
        return ImageFileError(
            path, Reason.SYMLINK_LOOP, "is a symbolic link loop (it leads back to itself)"
        )
    if code in (errno.EACCES, errno.EPERM):
        why = f" ({denied})" if denied else ""
        return ImageFileError(path, Reason.PERMISSION, f"permission denied: cannot {doing} it{why}")
    if code == errno.ENAMETOOLONG:
        return ImageFileError(path, Reason.NAME_TOO_LONG, "the name is too long for this system")
    if code == errno.ENOTDIR:
        return ImageFileError(path, Reason.MISSING, "no such file (a part of the path is a file)")
    if code == errno.ENOENT:
        return _missing(path)
    return ImageFileError(
        path, Reason.UNREADABLE, f"cannot {doing} it: {exc.strerror or exc} (errno {code})"
    )


_FILE_TYPE_NAMES = (
    (stat_module.S_ISFIFO, "a named pipe (FIFO)"),
    (stat_module.S_ISSOCK, "a socket"),
    (stat_module.S_ISCHR, "a character device"),
    (stat_module.S_ISBLK, "a block device"),
)


def _require_regular(path: Path, st: os.stat_result) -> None:
    if stat_module.S_ISREG(st.st_mode):
        return
    if stat_module.S_ISDIR(st.st_mode):
        raise ImageFileError(path, Reason.IS_DIRECTORY, "is a folder, not an image file")
    what = next((name for test, name in _FILE_TYPE_NAMES if test(st.st_mode)), "a special file")
    raise ImageFileError(path, Reason.NOT_REGULAR, f"is {what}, not a regular file")


# O_NONBLOCK: should the path have become a FIFO since the stat, open() must not wait for a writer.
# O_NOCTTY: nor should a terminal swapped in become ours. O_BINARY: Windows, no newline translation.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)


def _open(path: Path) -> int:
    try:
        return os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:  # removed since the stat
        raise _missing(path) from None
    except OSError as exc:
        raise _os_error(path, exc, "read") from None


def _read_head(path: Path, fd: int) -> bytes:
    chunks = []
    wanted = SNIFF_BYTES
    try:
        while wanted > 0:
            chunk = os.read(fd, wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
    except OSError as exc:
        raise _os_error(path, exc, "read") from None
    return b"".join(chunks)
