"""Checking local files before upload: real files of every kind, and every way a path can be bad."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgsync.engine import imagefile
from imgsync.engine.imagefile import (
    IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    SNIFF_BYTES,
    ImageFile,
    ImageFileError,
    Reason,
    check_image,
    describe,
    sniff,
)
from imgsync.errors import EXIT_PARTIAL, ItemError

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file types")


# -- minimal real images


def png_bytes(width: int = 1, height: int = 1) -> bytes:
    """A valid greyscale PNG, built chunk by chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))  # filter 0 per row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


# A 1x1 GIF89a: header, logical screen, 2-colour table, graphic control, image, LZW data, trailer.
GIF_1X1 = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

# JPEG: SOI, a JFIF APP0 segment, EOI (sniffing reads the markers, not the scan).
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"

# WebP: RIFF container, WEBP form, a VP8L (lossless) 1x1 chunk.
WEBP_1X1 = (
    b"RIFF\x1a\x00\x00\x00WEBP"
    b"VP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
)


def bmp_bytes() -> bytes:
    """A 1x1 24-bit BMP: file header, BITMAPINFOHEADER, one padded row."""
    row = b"\x00\x00\xff\x00"  # one red pixel + padding to 4 bytes
    info = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, len(row), 2835, 2835, 0, 0)
    offset = 14 + len(info)
    return struct.pack("<2sIHHI", b"BM", offset + len(row), 0, 0, offset) + info + row


def tiff_bytes(big_endian: bool = False) -> bytes:
    """A 1x1 8-bit greyscale TIFF with the baseline tags."""
    order = ">" if big_endian else "<"
    magic = b"MM\x00*" if big_endian else b"II*\x00"
    tags = [  # (tag, type SHORT=3/LONG=4, value)
        (256, 3, 1),  # ImageWidth
        (257, 3, 1),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # Photometric: black is zero
        (273, 4, 0),  # StripOffsets, patched below
        (278, 3, 1),  # RowsPerStrip
        (279, 4, 1),  # StripByteCounts
    ]
    ifd_size = 2 + 12 * len(tags) + 4
    pixel_offset = 8 + ifd_size
    entries = b""
    for tag, kind, value in tags:
        value = pixel_offset if tag == 273 else value
        # The value sits in the entry's 4-byte field, left-aligned: a SHORT is padded.
        packed = (
            struct.pack(order + "HH", value, 0) if kind == 3 else struct.pack(order + "I", value)
        )
        entries += struct.pack(order + "HHI", tag, kind, 1) + packed
    return (
        magic
        + struct.pack(order + "I", 8)
        + struct.pack(order + "H", len(tags))
        + entries
        + struct.pack(order + "I", 0)
        + b"\x7f"
    )


SVG_PLAIN = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
SVG_PROLOG = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    b"<!-- Created with Inkscape (http://www.inkscape.org/) -->\n"
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n'
    b'  <!ENTITY ns_extend "http://ns.adobe.com/Extensibility/1.0/">\n'
    b"]>\n"
    b'<?xml-stylesheet href="style.css"?>\n'
    b'\n<svg\n   xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"></svg>\n'
)

IMAGES = {
    "png": png_bytes(),
    "jpeg": JPEG_HEAD,
    "gif": GIF_1X1,
    "webp": WEBP_1X1,
    "bmp": bmp_bytes(),
    "tiff": tiff_bytes(),
    "svg": SVG_PROLOG,
}


# -- sniffing


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_each_kind_is_recognised_from_a_real_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"picture-{kind}.bin"  # the name says nothing
    path.write_bytes(IMAGES[kind])
    image = check_image(path)
    assert image == ImageFile(
        path=path,
        size=len(IMAGES[kind]),
        kind=kind,
        ext=IMAGE_TYPES[kind].ext,
        mime=IMAGE_TYPES[kind].mime,
        stat=image.stat,
    )
    assert image.stat.st_size == len(IMAGES[kind])


def test_image_types_cover_the_documented_formats() -> None:
    assert set(IMAGE_TYPES) == {"png", "jpeg", "gif", "webp", "svg", "bmp", "tiff"}
    assert IMAGE_TYPES["jpeg"].ext == ".jpg" and IMAGE_TYPES["svg"].mime == "image/svg+xml"
    assert all(t.ext.startswith(".") for t in IMAGE_TYPES.values())


def test_content_wins_over_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "screenshot.jpg"
    path.write_bytes(png_bytes())
    image = check_image(path)
    assert (image.kind, image.ext, image.mime) == ("png", ".png", "image/png")


@pytest.mark.parametrize(
    "head",
    [
        b"GIF87a\x01\x00\x01\x00",
        tiff_bytes(big_endian=True),
        b"II+\x00\x08\x00\x00\x00",  # BigTIFF
    ],
)
def test_other_variants(head: bytes) -> None:
    assert sniff(head) in {"gif", "tiff"}


@pytest.mark.parametrize(
    "text",
    [
        SVG_PLAIN,
        b"\xef\xbb\xbf" + SVG_PLAIN,  # UTF-8 BOM
        b"  \r\n\t" + SVG_PLAIN,
        b"<SVG XMLNS='http://www.w3.org/2000/svg'></SVG>",
        b"<svg>",
        b"<svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>",
        b"<!---->\n<!-- a > b -- c -->" + SVG_PLAIN,
        b"<!doctype svg>" + SVG_PLAIN,
        SVG_PROLOG,
        '<?xml version="1.0" encoding="UTF-16"?><svg/>'.encode("utf-16"),  # with its BOM
    ],
)
def test_svg_prologs(text: bytes) -> None:
    assert sniff(text) == "svg"


@pytest.mark.parametrize(
    "text",
    [
        b"<!DOCTYPE html><html><body><svg/></body></html>",
        b'<?xml version="1.0"?><rss version="2.0"></rss>',
        b"<svgfoo/>",
        b"<!-- a comment that never ends <svg/>",
        b"<?xml version='1.0'",
        b"svg",
        b"hello <svg/>",
        b"<!DOCTYPE svg [ <!ENTITY x '>'> ",  # internal subset cut off
    ],
)
def test_not_svg(text: bytes) -> None:
    assert sniff(text) is None


def test_weak_signatures_need_their_structure() -> None:
    assert sniff(b"BMW is a car brand, not a bitmap. " * 4) is None
    assert sniff(b"RIFF\x10\x00\x00\x00WAVEfmt ") is None
    assert sniff(b"\xff\xd8") is None  # too short for JPEG's SOI + marker
    assert sniff(b"") is None


def test_svg_prolog_longer_than_4_kb(tmp_path: Path) -> None:
    comment = b"<!-- " + b"licence text " * 400 + b"-->"
    assert 4096 < len(comment) < SNIFF_BYTES - 100
    path = tmp_path / "logo.svg"
    path.write_bytes(b'<?xml version="1.0"?>\n' + comment + SVG_PLAIN)
    assert check_image(path).kind == "svg"


@given(st.binary(max_size=64))
def test_sniff_and_describe_never_fail(head: bytes) -> None:
    kind = sniff(head)
    assert kind is None or kind in IMAGE_TYPES
    assert describe(head)


def test_sniff_reads_only_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    with path.open("wb") as out:
        out.write(png_bytes())
        out.truncate(5 * 1024 * 1024)
    asked: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(imagefile.os, "read", counting_read)
    assert check_image(path).size == 5 * 1024 * 1024
    assert sum(asked) <= SNIFF_BYTES


# -- refusals


def refusal(path: Path) -> ImageFileError:
    with pytest.raises(ImageFileError) as caught:
        check_image(path)
    error = caught.value
    assert isinstance(error, ItemError) and error.exit_code == EXIT_PARTIAL
    assert str(error).startswith(f"{path}: ")
    return error


def test_missing(tmp_path: Path) -> None:
    error = refusal(tmp_path / "nope.png")
    assert error.reason is Reason.MISSING and "no such file" in str(error)


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("x")
    error = refusal(tmp_path / "note.md" / "a.png")
    assert error.reason is Reason.MISSING


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "pics.png").mkdir()
    error = refusal(tmp_path / "pics.png")
    assert error.reason is Reason.IS_DIRECTORY and "folder" in str(error)


def test_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    error = refusal(tmp_path / "empty.png")
    assert error.reason is Reason.EMPTY and "0 bytes" in str(error)


def test_too_large_and_the_limit_itself(tmp_path: Path) -> None:
    at_limit = tmp_path / "at-limit.png"
    with at_limit.open("wb") as out:  # sparse: no 100 MB written
        out.write(png_bytes())
        out.truncate(MAX_IMAGE_BYTES)
    assert check_image(at_limit).size == MAX_IMAGE_BYTES

    over = tmp_path / "over.png"
    with over.open("wb") as out:
        out.write(png_bytes())
        out.truncate(MAX_IMAGE_BYTES + 1)
    error = refusal(over)
    assert error.reason is Reason.TOO_LARGE
    assert "100.0 MB" in str(error) and "at most 100 MB" in str(error)


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title>", "HTML page"),
        (b"# My note\n\nJust text.\n", "text"),
        (b'{"error": "not found"}', "JSON"),
        (b"PK\x03\x04\x14\x00\x00\x00", "ZIP"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "AVIF"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "MP4"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "svgz"),
        (b"\x00\x00\x01\x00\x01\x00\x10\x10", "ICO"),
        (b"\x01\x02\x03\x00\xfe\xfd\xfc\xfb\xfa", "01 02 03 00 fe fd fc fb"),
    ],
)
def test_not_an_image_says_what_it_looks_like(
    tmp_path: Path, content: bytes, looks_like: str
) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    error = refusal(path)
    assert error.reason is Reason.NOT_AN_IMAGE
    assert looks_like in str(error)
    assert "accepted: png, jpeg, gif, webp, svg, bmp, tiff" in str(error)


def test_name_too_long(tmp_path: Path) -> None:
    error = refusal(tmp_path / ("x" * 300 + ".png"))
    assert error.reason is Reason.NAME_TOO_LONG


def test_nul_in_path(tmp_path: Path) -> None:
    error = refusal(tmp_path / "a\x00b.png")
    assert error.reason is Reason.BAD_PATH


@posix_only
def test_symlink_to_an_image_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.png").write_bytes(png_bytes())
    (tmp_path / "link.png").symlink_to("real.png")
    image = check_image(tmp_path / "link.png")
    assert image.kind == "png" and image.stat.st_ino == (tmp_path / "real.png").stat().st_ino


@posix_only
def test_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "link.png").symlink_to("moved-away.png")
    error = refusal(tmp_path / "link.png")
    assert error.reason is Reason.DANGLING_SYMLINK and "moved-away.png" in str(error)


@posix_only
def test_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to("b.png")
    (tmp_path / "b.png").symlink_to("a.png")
    (tmp_path / "self.png").symlink_to("self.png")
    assert refusal(tmp_path / "a.png").reason is Reason.SYMLINK_LOOP
    assert refusal(tmp_path / "self.png").reason is Reason.SYMLINK_LOOP


def check_in_thread(path: Path) -> BaseException | ImageFile | None:
    """Run check_image with a deadline: a check that blocks (say, opening a FIFO) fails the test
    instead of hanging it."""
    outcome: list[BaseException | ImageFile] = []

    def run() -> None:
        try:
            outcome.append(check_image(path))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), f"check_image({path}) blocked"
    return outcome[0]


@posix_only
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    error = check_in_thread(fifo)
    assert isinstance(error, ImageFileError)
    assert error.reason is Reason.NOT_REGULAR and "named pipe" in str(error)


@posix_only
def test_character_device(tmp_path: Path) -> None:
    error = check_in_thread(Path("/dev/null"))
    assert isinstance(error, ImageFileError)
    assert error.reason is Reason.NOT_REGULAR and "character device" in str(error)


@posix_only
def test_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.png"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        error = refusal(path)
    finally:
        server.close()
    assert error.reason is Reason.NOT_REGULAR and "socket" in str(error)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode"
)
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(png_bytes())
    path.chmod(0)
    try:
        error = refusal(path)
    finally:
        path.chmod(0o600)
    assert error.reason is Reason.PERMISSION and "permission denied" in str(error)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root enters folders whatever their mode"
)
def test_folder_that_cannot_be_entered(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.png").write_bytes(png_bytes())
    locked.chmod(0o600)  # readable listing, but no search permission
    try:
        error = refusal(locked / "a.png")
    finally:
        locked.chmod(0o700)
    assert error.reason is Reason.PERMISSION and "cannot be entered" in str(error)


def test_permission_error_from_stat_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, forced, so it is checked even when the tests run as root."""
    path = tmp_path / "locked" / "a.png"

    def denied(*args: object, **kwargs: object) -> os.stat_result:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(imagefile.os, "stat", denied)
    error = refusal(path)
    assert error.reason is Reason.PERMISSION and "cannot be entered" in str(error)


def test_permission_error_from_open_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same refusal as above, forced, so it is checked even when the tests run as root."""
    path = tmp_path / "secret.png"
    path.write_bytes(png_bytes())

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(imagefile.os, "open", denied)
    error = refusal(path)
    assert error.reason is Reason.PERMISSION and "cannot read it" in str(error)


def test_io_error_while_reading_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "on-a-dying-disk.png"
    path.write_bytes(png_bytes())

    def failing_read(fd: int, n: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(imagefile.os, "read", failing_read)
    error = refusal(path)
    assert error.reason is Reason.UNREADABLE and "Input/output error" in str(error)
