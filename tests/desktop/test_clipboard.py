"""The clipboard adapters: X11 for real under Xvfb with xclip; Wayland, macOS and Windows, which
cannot exist here, through fake tools and fake grabbers that check the commands built and the
error paths."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgsync.desktop.clipboard import (
    JPEG,
    PNG,
    ClipboardError,
    ClipboardToolMissing,
    ClipImage,
    MacClipboard,
    WaylandClipboard,
    WindowsClipboard,
    XclipClipboard,
    pick_type,
    system_clipboard,
)

from ..support import image_bytes, png_bytes
from .xserver import XDisplay


def bmp_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), (10, 200, 30)).save(out, format="BMP")
    return out.getvalue()


# ------------------------------------------------------------------------------- X11, for real


def test_empty_clipboard_reads_none(x11: XDisplay) -> None:
    assert XclipClipboard().read() is None


def test_png_and_jpeg_come_back_byte_for_byte(x11: XDisplay) -> None:
    png = png_bytes("x11-png")
    x11.put(png, PNG)
    assert XclipClipboard().read() == ClipImage(png, PNG)
    jpeg = image_bytes("jpeg", "x11-jpeg", 3000)
    x11.put(jpeg, JPEG)
    assert XclipClipboard().read() == ClipImage(jpeg, JPEG)


def test_other_images_are_read_as_offered(x11: XDisplay) -> None:
    bmp = bmp_bytes()
    x11.put(bmp, "image/bmp")
    assert XclipClipboard().read() == ClipImage(bmp, "image/bmp")


def test_text_is_read_as_text(x11: XDisplay) -> None:
    x11.put_text("/tmp/截图 1.png")
    assert XclipClipboard().read() == "/tmp/截图 1.png"


def test_a_uri_list_wins_over_plain_text(x11: XDisplay) -> None:
    # A file manager offers copied files as text/uri-list; xclip offers one type at a time, so
    # this checks the type chosen, then that the text is read through it.
    x11.put(b"file:///tmp/a.png\r\n", "text/uri-list")
    assert x11.targets() == ["TARGETS", "text/uri-list"]
    assert XclipClipboard().read() == "file:///tmp/a.png\r\n"


def test_write_text_is_read_back_by_other_applications(x11: XDisplay) -> None:
    XclipClipboard().write_text("![a](http://x/a.png)")
    assert x11.shows("![a](http://x/a.png)") == "![a](http://x/a.png)"
    XclipClipboard().write_text("second")
    assert x11.shows("second") == "second"


def test_writing_does_not_hold_the_callers_output_open(x11: XDisplay, tmp_path: Path) -> None:
    """An editor reads `imgsync upload --copy` until its output closes: the xclip left serving
    the clipboard must not keep it open (pyperclip's does)."""
    script = (
        "from imgsync.desktop.clipboard import XclipClipboard; XclipClipboard().write_text('hi')"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script], env=x11.env, capture_output=True, timeout=20
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 10
    assert x11.shows("hi") == "hi"


def test_a_clipboard_that_does_not_answer_times_out(x11: XDisplay, tmp_path: Path) -> None:
    def hung(*args: Any, **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    with pytest.raises(ClipboardError, match="did not answer within 0.5 s"):
        XclipClipboard(run=hung, timeout=0.5).read()


def test_a_display_that_is_gone_is_an_error_not_an_empty_clipboard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPLAY", ":4999")
    with pytest.raises(ClipboardError, match="cannot reach the X display"):
        XclipClipboard().read()


def test_pick_type_prefers_kept_images_then_any_image_then_text() -> None:
    assert pick_type(["UTF8_STRING", "image/bmp", "image/png"]) == PNG
    assert pick_type(["UTF8_STRING", "image/jpeg", "image/bmp"]) == JPEG
    assert pick_type(["UTF8_STRING", "image/bmp"]) == "image/bmp"
    assert pick_type(["STRING", "UTF8_STRING", "text/uri-list"]) == "text/uri-list"
    assert pick_type(["TARGETS", "TIMESTAMP"]) is None


# ---------------------------------------------------------- choosing the adapter (fake machines)


def which_of(*present: str) -> Any:
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_x11_needs_xclip_and_says_so() -> None:
    board = system_clipboard(environ={"DISPLAY": ":0"}, platform="linux", which=which_of("xclip"))
    assert isinstance(board, XclipClipboard)
    with pytest.raises(ClipboardToolMissing, match="install xclip") as caught:
        system_clipboard(environ={"DISPLAY": ":0"}, platform="linux", which=which_of())
    assert caught.value.exit_code == 2


def test_wayland_needs_wl_clipboard_unless_xwayland_has_xclip() -> None:
    wayland = {"WAYLAND_DISPLAY": "wayland-0"}
    board = system_clipboard(
        environ=wayland, platform="linux", which=which_of("wl-paste", "wl-copy")
    )
    assert isinstance(board, WaylandClipboard)
    with pytest.raises(ClipboardToolMissing, match="install wl-clipboard"):
        system_clipboard(environ=wayland, platform="linux", which=which_of("xclip"))
    xwayland = {**wayland, "DISPLAY": ":0"}
    board = system_clipboard(environ=xwayland, platform="linux", which=which_of("xclip"))
    assert isinstance(board, XclipClipboard)


def test_no_session_at_all() -> None:
    with pytest.raises(ClipboardToolMissing, match="neither DISPLAY nor WAYLAND_DISPLAY"):
        system_clipboard(environ={}, platform="linux", which=which_of("xclip"))


def test_macos_and_windows_adapters() -> None:
    assert isinstance(system_clipboard(platform="darwin"), MacClipboard)
    assert isinstance(system_clipboard(platform="win32"), WindowsClipboard)


# ------------------------------------------------------------- Wayland (fake wl-paste, wl-copy)


def fake_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


WL_PASTE = """
import os, sys
log = os.environ["FAKE_LOG"]
with open(log, "a") as f:
    f.write(" ".join(["wl-paste", *sys.argv[1:]]) + "\\n")
offered = os.environ.get("FAKE_TYPES", "")
if not offered:
    sys.stderr.write("Nothing is copied\\n")
    sys.exit(1)
if sys.argv[1:] == ["--list-types"]:
    print(offered.replace(",", "\\n"))
else:
    sys.stdout.buffer.write(open(os.environ["FAKE_DATA"], "rb").read())
"""
WL_COPY = """
import os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(" ".join(["wl-copy", *sys.argv[1:]]) + "\\n")
open(os.environ["FAKE_DATA"], "wb").write(sys.stdin.buffer.read())
"""


@pytest.fixture
def wayland(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "wl-paste", WL_PASTE)
    fake_tool(bin_dir, "wl-copy", WL_COPY)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("FAKE_DATA", str(tmp_path / "data"))
    (tmp_path / "log").write_text("")
    return tmp_path


def test_wayland_reads_the_offered_image_with_its_type(
    wayland: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = png_bytes("wayland")
    (wayland / "data").write_bytes(png)
    monkeypatch.setenv("FAKE_TYPES", "text/plain,image/png,image/bmp")
    assert WaylandClipboard().read() == ClipImage(png, PNG)
    assert (wayland / "log").read_text().splitlines() == [
        "wl-paste --list-types",
        "wl-paste --no-newline --type image/png",
    ]


def test_wayland_empty_clipboard_and_write(wayland: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TYPES", "")
    assert WaylandClipboard().read() is None
    WaylandClipboard().write_text("![x](http://h/x.png)")
    assert (wayland / "data").read_text() == "![x](http://h/x.png)"
    assert (wayland / "log").read_text().splitlines()[-1] == (
        "wl-copy --type text/plain;charset=utf-8"
    )


def test_wayland_hang_is_cut_by_the_deadline(wayland: Path) -> None:
    fake_tool(wayland / "bin", "wl-paste", "import time\ntime.sleep(30)\n")
    started = time.monotonic()
    with pytest.raises(ClipboardError, match="did not answer"):
        WaylandClipboard(timeout=0.5).read()
    assert time.monotonic() - started < 10


def test_a_tool_that_vanished_names_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClipboardToolMissing, match="install wl-clipboard"):
        WaylandClipboard().read()


# -------------------------------------------------------------------- macOS (fake osascript)


class FakeRun:
    """Answers osascript commands from a table, recording them."""

    def __init__(self, answers: dict[str, tuple[int, bytes]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(args)
        code, out = self.answers.get(args[-1], (1, b""))
        return subprocess.CompletedProcess(args, code, out, b"")


PNGF = "get the clipboard as «class PNGf»"
FURL = "POSIX path of (the clipboard as «class furl»)"


def test_macos_png_bytes_come_back_exactly() -> None:
    png = png_bytes("mac")
    run = FakeRun({PNGF: (0, f"«data PNGf{png.hex().upper()}»\n".encode())})
    board = MacClipboard(run=run, paste=lambda: "", copy=lambda text: None)
    assert board.read() == ClipImage(png, PNG)
    assert run.calls == [["osascript", "-e", PNGF]]


def test_macos_copied_file_then_text_then_nothing() -> None:
    run = FakeRun({FURL: (0, b"/Users/me/shot.png\n")})
    board = MacClipboard(run=run, paste=lambda: "", copy=lambda text: None)
    assert board.read() == "/Users/me/shot.png"
    copied: list[str] = []
    board = MacClipboard(run=FakeRun({}), paste=lambda: "https://x/y.png", copy=copied.append)
    assert board.read() == "https://x/y.png"
    board.write_text("link")
    assert copied == ["link"]
    assert MacClipboard(run=FakeRun({}), paste=lambda: "", copy=copied.append).read() is None


# ------------------------------------------------------------------ Windows (fake ImageGrab)


def test_windows_png_is_kept_and_a_bitmap_becomes_png() -> None:
    png = png_bytes("windows")
    board = WindowsClipboard(grab=lambda: Image.open(io.BytesIO(png)), paste=lambda: "")
    assert board.read() == ClipImage(png, PNG)
    bitmap = Image.new("RGB", (2, 2), (1, 2, 3))
    found = WindowsClipboard(grab=lambda: bitmap, paste=lambda: "").read()
    assert isinstance(found, ClipImage) and found.mime == PNG
    assert Image.open(io.BytesIO(found.data)).getpixel((0, 0)) == (1, 2, 3)


def test_windows_copied_files_and_text() -> None:
    files = [r"C:\Users\me\a.png", r"C:\Users\me\b.jpg"]
    assert WindowsClipboard(grab=lambda: files, paste=lambda: "").read() == "\n".join(files)
    assert WindowsClipboard(grab=lambda: None, paste=lambda: "x").read() == "x"
    assert WindowsClipboard(grab=lambda: None, paste=lambda: "").read() is None
