"""Where the bytes live: uploaded slices and finished blobs, in memory or in a data folder.

Blobs are named by their MD5, the way the service deduplicates (instant upload by etag and size), so
many image-bed objects may share one blob. Slices are kept per upload until completion assembles
them. Bodies arrive in chunks and are never read whole from the socket: tests PUT 100 MB.

Both stores are safe to call from many threads; the metadata (which slices an upload has) lives
in :mod:`imgsync.emulator.state`, not here.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

# Read sockets and files in pieces of this size: large enough to be fast, small enough that eight
# concurrent 100 MB uploads do not each hold a second copy while hashing.
CHUNK_SIZE = 1024 * 1024

Reader = Callable[[int], bytes]


class ShortBody(Exception):
    """The request body ended before its declared Content-Length."""


def _read_exactly(read: Reader, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        chunk = read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise ShortBody(f"body ended {remaining} bytes early")
        remaining -= len(chunk)
        yield chunk


class BlobStore(ABC):
    """Bytes of slices (by upload key and number) and of blobs (by MD5)."""

    @abstractmethod
    def receive_slice(self, key: str, slice_no: int, read: Reader, length: int) -> str:
        """Store ``length`` bytes read from ``read`` as slice ``slice_no``; return their MD5.

        Replaces an earlier slice of that number only once the whole body has arrived.
        Raises :class:`ShortBody` when the body ends early (nothing is stored then).
        """

    @abstractmethod
    def iter_slices(self, key: str, count: int) -> Iterator[bytes]:
        """The bytes of slices 1..count in order, in chunks."""

    @abstractmethod
    def promote_slices(self, key: str, count: int, md5: str) -> None:
        """Make slices 1..count the blob ``md5`` (already verified) and forget them."""

    @abstractmethod
    def drop_upload(self, key: str) -> None:
        """Forget every slice of one upload."""

    @abstractmethod
    def put_blob(self, data: bytes) -> str:
        """Store whole bytes as a blob; return their MD5."""

    @abstractmethod
    def open_blob(self, md5: str) -> BinaryIO:
        """A readable binary file of the blob; raises KeyError when absent."""

    @abstractmethod
    def has_blob(self, md5: str) -> bool: ...

    @abstractmethod
    def delete_blob(self, md5: str) -> None: ...

    @abstractmethod
    def clear(self) -> None:
        """Forget every blob and slice."""

    def md5_of_slices(self, key: str, count: int) -> tuple[str, int]:
        """MD5 and total size of slices 1..count as one assembled file."""
        digest = hashlib.md5()
        total = 0
        for chunk in self.iter_slices(key, count):
            digest.update(chunk)
            total += len(chunk)
        return digest.hexdigest(), total


class MemoryBlobStore(BlobStore):
    """Everything in dictionaries: state that ends with the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slices: dict[tuple[str, int], bytes] = {}
        self._blobs: dict[str, bytes] = {}

    def receive_slice(self, key: str, slice_no: int, read: Reader, length: int) -> str:
        buffer = bytearray()
        digest = hashlib.md5()
        for chunk in _read_exactly(read, length):
            buffer += chunk
            digest.update(chunk)
        with self._lock:
            self._slices[(key, slice_no)] = bytes(buffer)
        return digest.hexdigest()

    def iter_slices(self, key: str, count: int) -> Iterator[bytes]:
        for number in range(1, count + 1):
            with self._lock:
                data = self._slices[(key, number)]
            for offset in range(0, len(data), CHUNK_SIZE):
                yield data[offset : offset + CHUNK_SIZE]

    def promote_slices(self, key: str, count: int, md5: str) -> None:
        with self._lock:
            if md5 not in self._blobs:
                parts = [self._slices[(key, n)] for n in range(1, count + 1)]
                self._blobs[md5] = b"".join(parts)
        self.drop_upload(key)

    def drop_upload(self, key: str) -> None:
        with self._lock:
            for slice_key in [k for k in self._slices if k[0] == key]:
                del self._slices[slice_key]

    def put_blob(self, data: bytes) -> str:
        md5 = hashlib.md5(data).hexdigest()
        with self._lock:
            self._blobs.setdefault(md5, bytes(data))
        return md5

    def open_blob(self, md5: str) -> BinaryIO:
        with self._lock:
            return io.BytesIO(self._blobs[md5])

    def has_blob(self, md5: str) -> bool:
        with self._lock:
            return md5 in self._blobs

    def delete_blob(self, md5: str) -> None:
        with self._lock:
            self._blobs.pop(md5, None)

    def clear(self) -> None:
        with self._lock:
            self._slices.clear()
            self._blobs.clear()


class DiskBlobStore(BlobStore):
    """Blobs as ``blobs/<md5>`` and slices as ``uploads/<key>/<n>`` under a data folder.

    Every file is written under a temporary name and renamed into place, so a crash never
    leaves a half-written blob under a real name.
    """

    def __init__(self, root: Path) -> None:
        self._blob_dir = root / "blobs"
        self._upload_dir = root / "uploads"
        self._blob_dir.mkdir(parents=True, exist_ok=True)
        self._upload_dir.mkdir(parents=True, exist_ok=True)

    def _slice_path(self, key: str, slice_no: int) -> Path:
        return self._upload_dir / key / str(slice_no)

    def _blob_path(self, md5: str) -> Path:
        return self._blob_dir / md5

    @staticmethod
    def _temp_beside(path: Path) -> Path:
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")

    def receive_slice(self, key: str, slice_no: int, read: Reader, length: int) -> str:
        final = self._slice_path(key, slice_no)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = self._temp_beside(final)
        digest = hashlib.md5()
        try:
            with open(temp, "wb") as out:
                for chunk in _read_exactly(read, length):
                    out.write(chunk)
                    digest.update(chunk)
            try:
                os.replace(temp, final)
            except FileNotFoundError:
                # The upload was completed or dropped while this body arrived: nothing to keep,
                # and the caller refuses the slice when it goes to record it.
                logger.debug("slice %s of %s arrived after its upload was dropped", slice_no, key)
        finally:
            temp.unlink(missing_ok=True)
        return digest.hexdigest()

    def iter_slices(self, key: str, count: int) -> Iterator[bytes]:
        for number in range(1, count + 1):
            with open(self._slice_path(key, number), "rb") as source:
                while chunk := source.read(CHUNK_SIZE):
                    yield chunk

    def promote_slices(self, key: str, count: int, md5: str) -> None:
        final = self._blob_path(md5)
        if not final.exists():
            temp = self._temp_beside(final)
            try:
                with open(temp, "wb") as out:
                    for chunk in self.iter_slices(key, count):
                        out.write(chunk)
                os.replace(temp, final)
            finally:
                temp.unlink(missing_ok=True)
        self.drop_upload(key)

    def drop_upload(self, key: str) -> None:
        shutil.rmtree(self._upload_dir / key, ignore_errors=True)

    def put_blob(self, data: bytes) -> str:
        md5 = hashlib.md5(data).hexdigest()
        final = self._blob_path(md5)
        if not final.exists():
            temp = self._temp_beside(final)
            try:
                temp.write_bytes(data)
                os.replace(temp, final)
            finally:
                temp.unlink(missing_ok=True)
        return md5

    def open_blob(self, md5: str) -> BinaryIO:
        try:
            return open(self._blob_path(md5), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError as exc:
            raise KeyError(md5) from exc

    def has_blob(self, md5: str) -> bool:
        return self._blob_path(md5).exists()

    def delete_blob(self, md5: str) -> None:
        self._blob_path(md5).unlink(missing_ok=True)

    def clear(self) -> None:
        for folder in (self._blob_dir, self._upload_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
