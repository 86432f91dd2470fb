"""The system clipboard: what it holds (an image in the format it was offered, or text), and putting
text on it.

One adapter per kind of desktop, chosen by :func:`system_clipboard`:

- X11: ``xclip``. The owner's offered types (``TARGETS``) are read first and only an offered type
  is asked for: an owner asked for a type it does not have may answer with other bytes.
- Wayland: ``wl-paste --list-types`` / ``wl-paste --type`` and ``wl-copy``. Every call has a
  deadline: ``wl-paste`` without a clipboard owner is known to hang (docs/users.md, complaint 8).
- macOS: ``osascript`` reads the clipboard as PNG (``«class PNGf»``, the bytes as offered) or as a
  file (``«class furl»``); text comes through pyperclip (``pbpaste``/``pbcopy``).
- Windows: Pillow's ``ImageGrab.grabclipboard`` (a bitmap, a PNG, or copied files); text through
  pyperclip.

On X11 and Wayland, text goes on the clipboard through ``xclip``/``wl-copy`` started with its output
sent nowhere, not through pyperclip: both tools stay in the background to serve the clipboard, and
the one pyperclip starts keeps our stdout open, so an editor reading ``imgsync upload --copy``'s
output would wait until the clipboard changes.

A missing tool is a :class:`ClipboardToolMissing` (exit status 2) naming the package to install.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from imgsync.errors import ConfigError, ItemError

log = logging.getLogger(__name__)

# How long one clipboard command may take. Reading a screenshot from a live owner takes
# milliseconds; an owner that does not answer (a hung application, wl-paste with no compositor)
# must not hang a hotkey press or an editor's request forever.
CLIPBOARD_TIMEOUT_S = 5.0

PNG = "image/png"
JPEG = "image/jpeg"
# Image types kept byte for byte, most preferred first; any other image/* type is converted.
KEPT_IMAGE_TYPES = (PNG, JPEG)
# Text types, most preferred first: file managers offer copied files as a URI list.
URI_LIST = "text/uri-list"
TEXT_TYPES = (URI_LIST, "UTF8_STRING", "text/plain;charset=utf-8", "STRING", "TEXT", "text/plain")

Run = Callable[..., "subprocess.CompletedProcess[bytes]"]


class ClipboardToolMissing(ConfigError):
    """The clipboard cannot be used on this machine until something is installed (exit 2)."""


class ClipboardError(ItemError):
    """The clipboard did not answer, or its tool failed (exit 1: nothing was uploaded)."""


@dataclass(frozen=True)
class ClipImage:
    """An image on the clipboard, as offered: its bytes and their MIME type."""

    data: bytes
    mime: str


ClipContent = ClipImage | str | None


class Clipboard(Protocol):
    """What the clip flow needs of a clipboard."""

    def read(self) -> ClipContent:
        """The image on the clipboard, else its text, else None (empty, or neither)."""
        ...

    def write_text(self, text: str) -> None:
        """Put ``text`` on the clipboard."""
        ...


def pick_type(offered: Sequence[str]) -> str | None:
    """The type to read among those the clipboard offers: a kept image type, then any image,
    then text; None when nothing usable is offered."""
    for wanted in KEPT_IMAGE_TYPES:
        if wanted in offered:
            return wanted
    for kind in offered:
        if kind.startswith("image/"):
            return kind
    for wanted in TEXT_TYPES:
        if wanted in offered:
            return wanted
    return None


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class _CommandClipboard:
    """A clipboard read and written through command-line tools (X11, Wayland)."""

    tool = ""  # the command, for messages
    package = ""  # what to install when it is missing

    def __init__(self, *, run: Run = subprocess.run, timeout: float = CLIPBOARD_TIMEOUT_S) -> None:
        self._run = run
        self._timeout = timeout

    def _invoke(self, args: list[str], **options: Any) -> subprocess.CompletedProcess[bytes]:
        """Run a clipboard tool under the deadline; a missing tool or no answer raises."""
        try:
            return self._run(args, timeout=self._timeout, check=False, **options)
        except FileNotFoundError:
            raise ClipboardToolMissing(
                f"{args[0]} not found: install {self.package} to use the clipboard"
            ) from None
        except subprocess.TimeoutExpired:
            raise ClipboardError(
                f"the clipboard did not answer within {self._timeout:g} s ({args[0]})"
            ) from None

    def _call(self, args: list[str]) -> tuple[int, bytes, bytes]:
        proc = self._invoke(args, capture_output=True)
        return proc.returncode, proc.stdout or b"", proc.stderr or b""

    def _offered(self) -> list[str]:
        raise NotImplementedError

    def _read_type(self, kind: str) -> bytes | None:
        raise NotImplementedError

    def read(self) -> ClipContent:
        kind = pick_type(self._offered())
        if kind is None:
            return None
        data = self._read_type(kind)
        if not data:
            return None
        if kind.startswith("image/"):
            return ClipImage(data, kind)
        return _decode(data)

    def _write(self, args: list[str], text: str) -> None:
        # The tool stays in the background to serve the clipboard: it must hold none of our
        # pipes (see the module docstring), so its output goes nowhere.
        proc = self._invoke(
            args, input=text.encode("utf-8"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise ClipboardError(
                f"{args[0]} could not set the clipboard (status {proc.returncode})"
            )


class XclipClipboard(_CommandClipboard):
    """The X11 CLIPBOARD selection, through ``xclip``."""

    tool = "xclip"
    package = "xclip"

    def _offered(self) -> list[str]:
        code, out, err = self._call(["xclip", "-selection", "clipboard", "-t", "TARGETS", "-o"])
        if code != 0:
            if b"open display" in err:  # "Error: Can't open display: :5"
                raise ClipboardError(f"xclip cannot reach the X display: {_decode(err).strip()}")
            log.debug("xclip TARGETS: status %s: %s", code, _decode(err).strip())
            return []  # no owner: the clipboard is empty
        return [line.strip() for line in _decode(out).splitlines() if line.strip()]

    def _read_type(self, kind: str) -> bytes | None:
        code, out, err = self._call(["xclip", "-selection", "clipboard", "-t", kind, "-o"])
        if code != 0:
            log.debug("xclip %s: status %s: %s", kind, code, _decode(err).strip())
            return None  # the owner changed or went away meanwhile
        return out

    def write_text(self, text: str) -> None:
        self._write(["xclip", "-selection", "clipboard", "-i"], text)


class WaylandClipboard(_CommandClipboard):
    """The Wayland clipboard, through ``wl-paste`` and ``wl-copy`` (package wl-clipboard)."""

    tool = "wl-paste"
    package = "wl-clipboard"

    def _offered(self) -> list[str]:
        code, out, err = self._call(["wl-paste", "--list-types"])
        if code != 0:
            log.debug("wl-paste --list-types: status %s: %s", code, _decode(err).strip())
            return []  # "Nothing is copied" / "No selection"
        return [line.strip() for line in _decode(out).splitlines() if line.strip()]

    def _read_type(self, kind: str) -> bytes | None:
        code, out, err = self._call(["wl-paste", "--no-newline", "--type", kind])
        if code != 0:
            log.debug("wl-paste %s: status %s: %s", kind, code, _decode(err).strip())
            return None
        return out

    def write_text(self, text: str) -> None:
        self._write(["wl-copy", "--type", "text/plain;charset=utf-8"], text)


def _pyperclip_copy(text: str) -> None:
    import pyperclip

    try:
        pyperclip.copy(text)
    except pyperclip.PyperclipException as exc:
        raise ClipboardToolMissing(f"cannot set the clipboard: {exc}") from None


def _pyperclip_paste() -> str:
    import pyperclip

    try:
        return str(pyperclip.paste())
    except pyperclip.PyperclipException as exc:
        raise ClipboardToolMissing(f"cannot read the clipboard: {exc}") from None


class MacClipboard(_CommandClipboard):
    """The macOS pasteboard: PNG data or a copied file through ``osascript``; text through
    pyperclip."""

    tool = "osascript"
    package = "osascript (part of macOS)"
    # AppleScript prints raw data as «data PNGf89504E47…»: this many characters before the hex,
    # and one after it (plus the newline), as Pillow's ImageGrab reads it.
    _DATA_PREFIX = len("«data PNGf")

    def __init__(
        self,
        *,
        run: Run = subprocess.run,
        timeout: float = CLIPBOARD_TIMEOUT_S,
        paste: Callable[[], str] = _pyperclip_paste,
        copy: Callable[[str], None] = _pyperclip_copy,
    ) -> None:
        super().__init__(run=run, timeout=timeout)
        self._paste = paste
        self._copy = copy

    def read(self) -> ClipContent:
        code, out, _ = self._call(["osascript", "-e", "get the clipboard as «class PNGf»"])
        text = _decode(out).strip()
        if code == 0 and text.startswith("«data PNGf") and text.endswith("»"):
            try:
                return ClipImage(bytes.fromhex(text[self._DATA_PREFIX : -1]), PNG)
            except ValueError:
                log.debug("osascript returned PNG data that is not hex")
        code, out, _ = self._call(
            ["osascript", "-e", "POSIX path of (the clipboard as «class furl»)"]
        )
        if code == 0 and _decode(out).strip():
            return _decode(out).strip()
        return self._paste() or None

    def write_text(self, text: str) -> None:
        self._copy(text)


class WindowsClipboard:
    """The Windows clipboard: images and copied files through Pillow's ``ImageGrab``; text
    through pyperclip."""

    def __init__(
        self,
        *,
        grab: Callable[[], Any] | None = None,
        paste: Callable[[], str] = _pyperclip_paste,
        copy: Callable[[str], None] = _pyperclip_copy,
    ) -> None:
        self._grab = grab
        self._paste = paste
        self._copy = copy

    def read(self) -> ClipContent:
        grab = self._grab
        if grab is None:
            from PIL import ImageGrab

            grab = ImageGrab.grabclipboard
        found = grab()
        if isinstance(found, list):  # files copied in Explorer
            return "\n".join(str(name) for name in found) or None
        if found is not None:
            return _image_from_pillow(found)
        return self._paste() or None

    def write_text(self, text: str) -> None:
        self._copy(text)


def _image_from_pillow(image: Any) -> ClipImage:
    """A Pillow image as clipboard bytes: the PNG it was read from when there is one (kept
    byte for byte), else the bitmap encoded as PNG."""
    import io

    source = getattr(image, "fp", None)
    if image.format == "PNG" and hasattr(source, "getvalue"):
        return ClipImage(source.getvalue(), PNG)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return ClipImage(out.getvalue(), PNG)


def system_clipboard(
    *,
    environ: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
    run: Run = subprocess.run,
) -> Clipboard:
    """The clipboard of this desktop, or :class:`ClipboardToolMissing` saying what to install."""
    env = os.environ if environ is None else environ
    if platform == "darwin":
        return MacClipboard(run=run)
    if platform == "win32":
        return WindowsClipboard()
    if env.get("WAYLAND_DISPLAY"):
        if which("wl-paste") and which("wl-copy"):
            return WaylandClipboard(run=run)
        if not (env.get("DISPLAY") and which("xclip")):
            raise ClipboardToolMissing(
                "wl-paste not found: install wl-clipboard to use the clipboard on Wayland"
            )
    if env.get("DISPLAY"):
        if which("xclip"):
            return XclipClipboard(run=run)
        raise ClipboardToolMissing("xclip not found: install xclip to use the clipboard on X11")
    raise ClipboardToolMissing(
        "no desktop session to take the clipboard from (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    )
