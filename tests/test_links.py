"""Link formats (imgsync.links): the presets, PicGo's template placeholders, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgsync.config import load_settings
from imgsync.errors import ConfigError
from imgsync.links import display_name, render_link, split_name, validate_format

URL = "http://127.0.0.1:9/u/abc.png"


def test_presets() -> None:
    assert render_link("markdown", URL, "a.png") == f"![a]({URL})"
    assert render_link("html", URL, "a.png") == f'<img src="{URL}" alt="a">'
    assert render_link("url", URL, "a.png") == URL


def test_custom_template_renders_exactly() -> None:
    template = "[$fileName]($url) <!-- $extName $fileName$extName -->"
    assert render_link(template, URL, "截图 1.jpeg") == (
        f"[截图 1]({URL}) <!-- .jpeg 截图 1.jpeg -->"
    )
    # One pass: a value holding a placeholder is not filled in again.
    assert render_link("$fileName|$url", "http://h/$fileName", "$url.png") == (
        "$url|http://h/$fileName"
    )


def test_presets_always_parse() -> None:
    assert render_link("markdown", URL, "a]b[c\\.png") == f"![a\\]b\\[c\\\\]({URL})"
    assert render_link("markdown", "http://h/a (1).png", "x.png") == "![x](<http://h/a (1).png>)"
    assert render_link("html", 'http://h/a"b.png', "<x>.png") == (
        '<img src="http://h/a&quot;b.png" alt="&lt;x&gt;">'
    )


@pytest.mark.parametrize("bad", ["", "  ", "![$fileName]()", "markdwn"])
def test_formats_without_url_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        validate_format(bad)


def test_names() -> None:
    assert split_name("a.b.png") == ("a.b", ".png")
    assert split_name(".env") == (".env", "")
    assert display_name("/notes/img/a b.png") == "a b.png"
    assert display_name("https://x.org/p/c%20d.jpg?s=1#f") == "c d.jpg"
    assert display_name("file:///tmp/%E5%9B%BE.gif") == "图.gif"
    assert display_name(r"C:\Users\me\shot.png") == "shot.png"


def test_config_keys_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[upload]\nformat = "![]()"\n')
    with pytest.raises(ConfigError, match=r"c\.toml: upload\.format"):
        load_settings(path, environ={})
    path.write_text('[upload]\nformat = "html"\n\n[serve]\nport = 70000\n')
    with pytest.raises(ConfigError, match="serve.port must be 0 to 65535"):
        load_settings(path, environ={})
    path.write_text("[serve]\nsecret = 5\n")
    with pytest.raises(ConfigError, match="a secret value") as caught:
        load_settings(path, environ={})
    assert "5" not in str(caught.value).split("secret")[-1]
    path.write_text("")
    settings = load_settings(path, environ={"IMGSYNC_SERVE_SECRET": "from-env"})
    assert settings.serve.secret == "from-env"
    assert (settings.serve.host, settings.serve.port) == ("127.0.0.1", 36677)
    assert settings.upload.format == "markdown"
    assert settings.hotkey.keys == "<ctrl>+<alt>+u"
