"""``imgsync clip`` and ``imgsync upload --format/--copy`` under a real X server: what a person
copies goes on the CLIPBOARD selection with xclip, the link is read back the same way, and the
URL is fetched from the emulator."""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from imgsync.cli import main
from imgsync.config import Settings
from imgsync.jobs.clip import clip

from ..loopback import LoopbackServer
from ..support import PNG_SIGNATURE, Control, image_bytes, png_bytes, write_image
from .xserver import XDisplay


@pytest.fixture
def env(config_path: Path, data_dir: Path, x11: XDisplay) -> dict[str, str]:
    keep = {k: v for k, v in x11.env.items() if not k.startswith("IMGSYNC_")}
    return {**keep, "IMGSYNC_CONFIG": str(config_path), "IMGSYNC_DATA_DIR": str(data_dir)}


def imgsync(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local web server over a folder: (folder, base URL)."""
    folder = tmp_path / "web"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    with LoopbackServer(functools.partial(Quiet, directory=folder)) as server:
        yield folder, server.url


def test_png_on_the_clipboard_becomes_a_markdown_link(
    control: Control, env: dict[str, str], x11: XDisplay, tmp_path: Path
) -> None:
    png = png_bytes("clip-acceptance")
    (tmp_path / "shot.png").write_bytes(png)
    x11.put_file(tmp_path / "shot.png", "image/png")
    result = imgsync(env, "clip")
    assert result.exit_code == 0, result.stderr
    link = result.stdout.strip()
    assert link.startswith("![clipboard-") and link.endswith(")")
    assert x11.shows(link) == link
    url = link[link.index("](") + 2 : -1]
    assert control.fetch(url) == png

    # The same image again: answered by the local index, no request to the service.
    x11.put_file(tmp_path / "shot.png", "image/png")
    before = len(control.requests())
    again = imgsync(env, "clip", "--format", "url")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip() == url == x11.shows(url)
    assert len(control.requests()) == before


def test_jpeg_keeps_its_bytes_and_bmp_becomes_png(
    control: Control, settings: Settings, x11: XDisplay
) -> None:
    jpeg = image_bytes("jpeg", "clip-jpeg", 4000)
    x11.put(jpeg, "image/jpeg")
    done = clip(settings, fmt="url")
    assert done.ok and done.items[0].name.endswith(".jpg")
    assert control.fetch(done.links[0]) == jpeg

    bitmap = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 90)).save(bitmap, format="BMP")
    x11.put(bitmap.getvalue(), "image/bmp")
    done = clip(settings)
    assert done.ok and done.links[0].startswith("![clipboard-")
    served = control.fetch(done.results[0].url or "")
    assert served.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(served)) as picture:
        assert picture.format == "PNG" and picture.size == (4, 3)
        assert picture.convert("RGB").getpixel((3, 2)) == (200, 10, 90)
    assert x11.shows(done.links[0]) == done.links[0]


def test_copied_paths_and_urls_are_uploaded(
    control: Control, settings: Settings, x11: XDisplay, tmp_path: Path, web: tuple[Path, str]
) -> None:
    a = write_image(tmp_path / "my shots" / "a b.png", "png", "clip-path-a")
    x11.put_text(str(tmp_path / "my shots" / "a b.png"))
    done = clip(settings)
    assert done.links == [f"![a b]({done.results[0].url})"]
    assert control.fetch(done.results[0].url or "") == a

    # A file manager's copy: a URI list, percent-encoded, several files.
    c = write_image(tmp_path / "图" / "c.gif", "gif", "clip-path-c")
    uris = "file://" + str(tmp_path / "my%20shots" / "a%20b.png") + "\r\n"
    uris += "file://" + str(tmp_path / "%E5%9B%BE" / "c.gif") + "\r\n"
    x11.put(uris.encode(), "text/uri-list")
    done = clip(settings, fmt="$fileName$extName|$url")
    assert [r.status for r in done.results] == ["cached", "uploaded"]
    assert [link.split("|")[0] for link in done.links] == ["a b.png", "c.gif"]
    assert control.fetch(done.results[1].url or "") == c
    assert x11.shows("\n".join(done.links)) == "\n".join(done.links)

    # A copied image address.
    folder, base = web
    d = write_image(folder / "d.png", "png", "clip-url-d")
    x11.put_text(f"{base}/d.png")
    done = clip(settings, fmt="html")
    assert done.ok, done.results
    assert done.links == [f'<img src="{done.results[0].url}" alt="d">']
    assert control.fetch(done.results[0].url or "") == d


def test_no_image_on_the_clipboard_is_exit_1(env: dict[str, str], x11: XDisplay) -> None:
    empty = imgsync(env, "clip")
    assert empty.exit_code == 1
    assert empty.stdout == ""
    assert empty.stderr == "imgsync: no image on the clipboard\n"

    x11.put_text("just some words, not a path")
    words = imgsync(env, "clip")
    assert words.exit_code == 1
    assert "no image on the clipboard (it holds text that is not an image path or URL)" in (
        words.stderr
    )
    assert x11.text() == "just some words, not a path"


def test_a_copied_file_that_is_not_an_image_fails_that_item(
    env: dict[str, str], x11: XDisplay, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    x11.put_text(str(notes))
    result = imgsync(env, "clip", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["links"] == [] and document["copied"] is False
    assert document["items"][0]["ok"] is False
    assert "not an image" in document["items"][0]["error"]
    assert x11.text() == str(notes)  # the clipboard is left as it was


def test_no_copy_and_json(control: Control, env: dict[str, str], x11: XDisplay) -> None:
    png = png_bytes("clip-no-copy")
    x11.put(png, "image/png")
    result = imgsync(env, "clip", "--no-copy", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["copied"] is False and len(document["links"]) == 1
    (item,) = document["items"]
    assert item["source"] == "image" and item["status"] == "uploaded"
    assert control.fetch(item["url"]) == png
    assert "image/png" in x11.targets()  # still the image


def test_missing_xclip_is_exit_2_naming_the_package(env: dict[str, str], tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = imgsync({**env, "PATH": str(empty_bin)}, "clip")
    assert result.exit_code == 2
    assert result.stderr == "imgsync: xclip not found: install xclip to use the clipboard on X11\n"


def test_a_bad_format_is_a_usage_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["clip", "--format", "![]()"], env=env)
    assert result.exit_code == 2
    assert "neither markdown, html, url nor a template with $url" in result.output


def test_upload_format_and_copy(
    control: Control, env: dict[str, str], x11: XDisplay, tmp_path: Path
) -> None:
    a = write_image(tmp_path / "a.png", "png", "upload-format-a")
    result = imgsync(env, "upload", "--format", "markdown", str(tmp_path / "a.png"))
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("![a](http://") and line.endswith(")")
    url = line[len("![a](") : -1]
    assert control.fetch(url) == a
    assert x11.text() is None  # no --copy: the clipboard is not touched

    template = "<$fileName|$extName|$url>"
    missing = str(tmp_path / "missing.png")
    result = imgsync(
        env, "upload", "--format", template, "--copy", str(tmp_path / "a.png"), missing
    )
    assert result.exit_code == 1
    assert result.stdout == f"<a|.png|{url}>\n\n"
    assert x11.shows(f"<a|.png|{url}>") == f"<a|.png|{url}>"

    plain = imgsync(env, "upload", str(tmp_path / "a.png"))
    assert plain.stdout == f"{url}\n"  # the default stays the bare URL Typora reads


def test_upload_copy_without_a_clipboard_tool_uploads_nothing(
    control: Control, env: dict[str, str], tmp_path: Path
) -> None:
    write_image(tmp_path / "a.png", "png", "upload-copy-missing")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = imgsync({**env, "PATH": str(empty_bin)}, "upload", "--copy", str(tmp_path / "a.png"))
    assert result.exit_code == 2
    assert "install xclip" in result.stderr
    assert control.created_md5s() == []
    assert os.environ.get("DISPLAY") is not None


def test_upload_format_names_a_percent_encoded_path_by_its_file(
    control: Control, env: dict[str, str], tmp_path: Path
) -> None:
    from urllib.parse import quote

    write_image(tmp_path / "截图 (1).png", "png", "upload-format-encoded")
    result = imgsync(
        env, "upload", "--format", "$fileName$extName $url", quote(str(tmp_path / "截图 (1).png"))
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("截图 (1).png http://")


def test_a_copied_page_link_gets_no_link_and_exit_1(
    control: Control, env: dict[str, str], x11: XDisplay
) -> None:
    page = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    x11.put_text(page)
    result = imgsync(env, "clip")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"imgsync: {page}: not uploaded: not an image: youtube.com" in result.stderr
    assert x11.text() == page  # nothing was put on the clipboard
    assert control.requests("offline") == []
