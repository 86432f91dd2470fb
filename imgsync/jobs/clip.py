"""``imgsync clip``: the image on the clipboard, or the image paths or URL it holds, becomes a link
in the note.

The flow: read the clipboard (:mod:`imgsync.desktop.clipboard`); an image is written to a private
temporary folder, its bytes kept when it is PNG or JPEG and converted to PNG otherwise; text is
taken when every line of it is an image path, a ``file://`` URI or an http(s) URL (a file
manager's copied files, a browser's copied image address). The items go through the upload engine,
so an image uploaded before costs no request; the links, in the configured format
(:mod:`imgsync.links`), go back on the clipboard.

The clipboard and the uploader are collaborators: the command line passes the real ones, the PicGo
server and the hotkey daemon share them, tests pass fakes where no display exists.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from imgsync.desktop.clipboard import (
    JPEG,
    PNG,
    ClipboardError,
    ClipContent,
    ClipImage,
    system_clipboard,
)
from imgsync.errors import ItemError
from imgsync.links import display_name, is_url, render_link, validate_format

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.desktop.clipboard import Clipboard
    from imgsync.engine.results import UploadResult

log = logging.getLogger(__name__)

# Uploads a batch of items (paths, file:// URIs, URLs): one result per item, in order. By default
# imgsync.jobs.upload.upload_items over the settings; a long-lived server passes its own.
Upload = Callable[[Sequence[str]], "list[UploadResult]"]
Source = Literal["image", "path", "url"]

NO_IMAGE = "no image on the clipboard"
# Extensions of the image types kept byte for byte; every other image type becomes PNG.
KEPT_EXTENSIONS = {PNG: ".png", JPEG: ".jpg"}
# How a clipboard image is named (the uploader's {name}, the link's $fileName): there is no file
# name on the clipboard, so the time it was taken, as PicGo names it.
IMAGE_NAME = "clipboard-%Y%m%d-%H%M%S"
# Text with more lines than this is prose, not a list of copied files: not worth a look.
MAX_TEXT_ITEMS = 100


class _ReadNow:
    """``clip``'s default ``content``: read the clipboard when the clip runs."""


READ_NOW = _ReadNow()


class NoImageOnClipboard(ItemError):
    """The clipboard holds no image, and no text naming one (exit 1)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{NO_IMAGE} ({detail})" if detail else NO_IMAGE)


@dataclass(frozen=True)
class ClipItem:
    """One thing the clipboard gave to upload: ``item`` for the uploader, ``name`` for the link."""

    item: str
    name: str
    source: Source


@dataclass(frozen=True)
class ClipResult:
    """What one clip did: the items found, their upload results (in order) and the links made of
    those that succeeded; ``copied`` when the links were put on the clipboard."""

    items: list[ClipItem]
    results: list[UploadResult]
    links: list[str] = field(default_factory=list)
    copied: bool = False

    @property
    def ok(self) -> bool:
        """Whether every item got a link."""
        return all(result.linked for result in self.results)


def default_upload(settings: Settings) -> Upload:
    """The engine's upload of a batch over ``settings`` (a cached image costs no request)."""
    from imgsync.jobs.upload import upload_items

    return functools.partial(upload_items, settings)


def item_name(item: str) -> str:
    """The file name an upload item shows in its link, read as the engine reads the item: a
    percent-encoded path (as Typora hands them over) by its decoded name when that is the file."""
    from imgsync.engine.uploader import resolve_item

    return display_name(str(resolve_item(item)))


def clip(
    settings: Settings,
    *,
    clipboard: Clipboard | None = None,
    upload: Upload | None = None,
    fmt: str | None = None,
    copy: bool = True,
    content: ClipContent | _ReadNow = READ_NOW,
    now: Callable[[], datetime] = datetime.now,
) -> ClipResult:
    """Upload what the clipboard holds and put the links on it (unless ``copy`` is False).

    ``fmt`` overrides ``upload.format``. ``content`` is what was read from the clipboard earlier
    (the hotkey reads it at the press), else the clipboard is read now. Raises
    :class:`NoImageOnClipboard` when there is nothing to upload,
    :class:`~imgsync.desktop.clipboard.ClipboardToolMissing` when the clipboard cannot be used
    here; a failed upload is a failed result, as in ``imgsync upload``.
    """
    fmt = fmt or settings.upload.format
    validate_format(fmt)
    board = clipboard if clipboard is not None else system_clipboard()
    send = upload if upload is not None else default_upload(settings)
    held = board.read() if isinstance(content, _ReadNow) else content
    with tempfile.TemporaryDirectory(prefix="imgsync-clip-") as folder:
        items = clipboard_items(held, Path(folder), now=now)
        results = send([item.item for item in items])
    links = [
        render_link(fmt, result.url, item.name)
        for item, result in zip(items, results, strict=True)
        if result.linked
    ]
    copied = False
    if links and copy:
        board.write_text("\n".join(links))
        copied = True
    return ClipResult(items, results, links, copied)


def clipboard_items(
    content: ClipContent, folder: Path, *, now: Callable[[], datetime] = datetime.now
) -> list[ClipItem]:
    """The items to upload for what the clipboard holds; an image is written into ``folder``.

    Raises :class:`NoImageOnClipboard` when it holds nothing usable.
    """
    if content is None:
        raise NoImageOnClipboard()
    if isinstance(content, ClipImage):
        data, ext = image_for_upload(content)
        name = now().strftime(IMAGE_NAME) + ext
        path = folder / name
        # The folder is private (mkdtemp: 0700); the file is too, for what a screenshot shows.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return [ClipItem(str(path), name, "image")]
    items = items_from_text(content)
    if not items:
        raise NoImageOnClipboard("it holds text that is not an image path or URL")
    return items


def image_for_upload(image: ClipImage) -> tuple[bytes, str]:
    """The bytes to upload and their extension: PNG and JPEG as offered, anything else as PNG."""
    if image.mime in KEPT_EXTENSIONS:
        return image.data, KEPT_EXTENSIONS[image.mime]
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image.data)) as picture:
            out = io.BytesIO()
            picture.save(out, format="PNG")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ClipboardError(f"the clipboard's {image.mime} image cannot be read: {exc}") from None
    log.debug("converted the clipboard's %s image to PNG", image.mime)
    return out.getvalue(), KEPT_EXTENSIONS[PNG]


def items_from_text(text: str) -> list[ClipItem]:
    """The items named by clipboard text, or ``[]`` unless every line names one.

    A line is an http(s) URL, a ``file://`` URI, or the absolute path (``~`` allowed) of an
    existing file; blank lines and ``#`` comments (``text/uri-list``) are skipped. Whether the file
    or URL is really an image is the engine's check, reported per item.
    """
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines or len(lines) > MAX_TEXT_ITEMS:
        return []
    items = [_item_from_line(line) for line in lines]
    if any(item is None for item in items):
        return []
    return [item for item in items if item is not None]


def _item_from_line(line: str) -> ClipItem | None:
    if is_url(line):
        return ClipItem(line, display_name(line), "url")
    if line[:7].lower() == "file://":
        parts = urlsplit(line)
        if parts.netloc.lower() not in ("", "localhost"):
            return None  # a file on another machine
        path = unquote(parts.path)
    else:
        path = os.path.expanduser(line)
    if not os.path.isabs(path) or not os.path.isfile(path):
        return None
    return ClipItem(path, display_name(path), "path")
