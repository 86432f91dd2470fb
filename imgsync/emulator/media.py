"""What counts as an image, what a file is called, and what Content-Type it is served with.

The reference lists the image formats copy and offline tasks accept (png, gif, jpeg, tiff, webp,
jpg, tif, svg, bmp) and the filename rules of ``create``. The emulator recognises images by their
first bytes, as a server must: a ``.png`` name on an HTML error page is not an image.
"""

from __future__ import annotations

import mimetypes

# Reference, copy and offline sections: "png, gif, jpeg, tiff, webp, jpg, tif, svg, bmp".
IMAGE_EXTENSIONS = frozenset({"png", "gif", "jpeg", "jpg", "tiff", "tif", "webp", "svg", "bmp"})
# api-facts: images of at most 100 MB; 0-byte files are not accepted. GUESS: 100 MiB exactly.
# Uploads (create) and both kinds of task (offline fetch, drive copy) enforce it.
MAX_FILE_SIZE = 100 * 1024 * 1024
# Reference, create: "文件名要小于255个字符且不能包含以下任何字符:"\/:*?|><".
MAX_FILENAME_CHARS = 254
FORBIDDEN_FILENAME_CHARS = frozenset('"\\/:*?|><')
# An SVG may open with an XML declaration, comments or a doctype; look this far for "<svg".
SVG_SNIFF_BYTES = 4096
# How many leading bytes :func:`sniff_image` needs for every binary format it knows.
SNIFF_BYTES = SVG_SNIFF_BYTES

CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "tif": "image/tiff",
    "svg": "image/svg+xml",
}
FALLBACK_CONTENT_TYPE = "application/octet-stream"


def sniff_image(head: bytes) -> str | None:
    """The image format of bytes starting with ``head`` ("png", "jpeg", ...), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if _looks_like_svg(head[:SVG_SNIFF_BYTES]):
        return "svg"
    return None


def _looks_like_svg(head: bytes) -> bool:
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n").lower()
    if text.startswith("<svg"):
        return True
    return text.startswith(("<?xml", "<!--", "<!doctype svg")) and "<svg" in text


def extension_of(filename: str) -> str:
    """The ``extension`` field: text after the last dot, as written; "" when there is none."""
    stem, dot, ext = filename.rpartition(".")
    return ext if dot and stem else ""


def has_image_extension(filename: str) -> bool:
    return extension_of(filename).lower() in IMAGE_EXTENSIONS


def filename_problem(name: str) -> str | None:
    """Why ``name`` is not a valid image-bed file or folder name, or None when it is."""
    if not name:
        return "must not be empty"
    if not name.strip(" "):
        return "must not be all spaces"
    if len(name) > MAX_FILENAME_CHARS:
        return f"must be shorter than 255 characters, got {len(name)}"
    bad = sorted(set(name) & FORBIDDEN_FILENAME_CHARS)
    if bad:
        return f'must not contain any of "\\/:*?|>< (found {"".join(bad)})'
    return None


def content_type_for(filename: str, head: bytes) -> str:
    """Content-Type of a download: by extension first, then by the bytes, else octet-stream."""
    ext = extension_of(filename).lower()
    if ext in CONTENT_TYPES:
        return CONTENT_TYPES[ext]
    guessed, _ = mimetypes.guess_type(f"x.{ext}") if ext else (None, None)
    if guessed:
        return guessed
    sniffed = sniff_image(head)
    return CONTENT_TYPES[sniffed] if sniffed else FALLBACK_CONTENT_TYPE
