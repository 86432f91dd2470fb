"""Local content to upload: a checked image, read and hashed once.

A small image (up to ``upload.memory_threshold``) is read whole in one go: its kind is sniffed from
those bytes, which are then hashed and uploaded, so no byte is read twice. Anything else goes
through :func:`imgsync.engine.imagefile.check_image` (a readable, non-empty regular file of at most
100 MB whose leading bytes are an image), is hashed by streaming and streamed again slice by slice;
a streamed file that changes before its upload completes is refused rather than uploaded under the
wrong md5.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from imgsync.engine import imagefile
from imgsync.engine.imagefile import ImageFile
from imgsync.errors import ItemError
from imgsync.service import MAX_IMAGE_BYTES

# Bytes per read when hashing a file too large to hold: a few hundred reads for 100 MB, flat memory.
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Content:
    """Bytes to upload: held in memory, or a file streamed slice by slice.

    ``stat`` is the stamp taken before hashing; a streamed file whose stamp changed before
    completion is refused rather than uploaded under the wrong md5.
    """

    md5: str
    size: int
    data: bytes | None = None
    path: Path | None = None
    stat: os.stat_result | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> Content:
        """Bytes held in memory (a downloaded image), hashed."""
        return cls(hashlib.md5(data).hexdigest(), len(data), data=data)

    def slice_body(self, offset: int, length: int) -> bytes | memoryview | Callable[[], IO[bytes]]:
        """The body of one slice: bytes for held content, else a factory of fresh readers (a
        retried PUT must start from the slice's first byte again)."""
        if self.data is not None:
            if offset == 0 and length == len(self.data):
                return self.data
            return memoryview(self.data)[offset : offset + length]
        path = self.path
        assert path is not None

        def open_at() -> IO[bytes]:
            handle = open(path, "rb")  # noqa: SIM115 - the transport reads it to the end
            handle.seek(offset)
            return handle

        return open_at

    def check_unchanged(self) -> None:
        """Refuse a streamed file that changed since it was hashed."""
        if self.path is None or self.stat is None:
            return
        try:
            now = os.stat(self.path)
        except OSError as exc:
            raise ItemError(f"file vanished while uploading: {exc.strerror or exc}") from None
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            raise ItemError("file changed while uploading; run again to upload the new content")


def read_content(path: Path, size: int, st: os.stat_result, memory_threshold: int) -> Content:
    """Hash a checked file: into memory when it fits (one read), else streaming."""
    try:
        with open(path, "rb", buffering=0) as handle:
            if size <= memory_threshold:
                data = handle.readall()
                if len(data) != size:
                    raise ItemError("file changed while it was being read; run again")
                return Content(hashlib.md5(data).hexdigest(), size, data=data, stat=st)
            digest = hashlib.md5()
            total = 0
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
                total += len(chunk)
    except OSError as exc:
        raise ItemError(f"cannot read: {exc.strerror or exc}") from None
    if total != size:
        raise ItemError("file changed while it was being read; run again")
    return Content(digest.hexdigest(), size, path=path, stat=st)


# Open flags of imagefile.check_image: a FIFO swapped in after the stat must not block the open.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def load_local(path: Path, memory_threshold: int) -> tuple[ImageFile, Content]:
    """Check and hash a local image, reading a small one exactly once.

    A small image (up to ``memory_threshold``) is read whole in one go; its kind is sniffed from
    those bytes, which are then hashed and uploaded: no byte is read twice. Anything unusual (a
    missing file, a folder, a loop, no permission, a large or non-image file) goes through
    :func:`imagefile.check_image`, which raises the error that names the problem.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError):
        fd = None
    data: bytes | None = None
    st: os.stat_result | None = None
    if fd is not None:
        try:
            st = os.fstat(fd)
            if stat_module.S_ISREG(st.st_mode) and 0 < st.st_size <= min(
                memory_threshold, MAX_IMAGE_BYTES
            ):
                with open(fd, "rb", buffering=0, closefd=False) as handle:
                    data = handle.readall()
        except OSError:
            data = None
        finally:
            os.close(fd)
    if data is None or st is None:
        image = imagefile.check_image(path)  # raises the precise error, if there is one
        return image, read_content(path, image.size, image.stat, memory_threshold)
    kind = imagefile.sniff(data[: imagefile.SNIFF_BYTES])
    if kind is None:
        imagefile.check_image(path)  # raises "not an image", with what it looks like
        raise ItemError("file changed while it was being read; run again")
    if len(data) != st.st_size:
        raise ItemError("file changed while it was being read; run again")
    image_type = imagefile.IMAGE_TYPES[kind]
    image = imagefile.ImageFile(path, st.st_size, kind, image_type.ext, image_type.mime, st)
    return image, Content(hashlib.md5(data).hexdigest(), st.st_size, data=data, stat=st)
