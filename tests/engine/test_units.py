"""The engine's small pure parts: item spelling, item identity, names, result wording."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from imgsync.engine.folders import _with_hash
from imgsync.engine.items import is_url, item_key, local_path, resolve_item, shown_url
from imgsync.engine.results import failed_result
from imgsync.errors import ItemError, NetworkError, ServerError

MD5 = "0123456789abcdef0123456789abcdef"


def test_resolve_item_spellings(tmp_path: Path) -> None:
    real = tmp_path / "a b" / "图 1.png"
    real.parent.mkdir()
    real.touch()
    literal = tmp_path / "100%25.png"  # a file really named with a percent sign
    literal.touch()
    assert resolve_item("https://x.org/a.png") == "https://x.org/a.png"
    assert resolve_item("HTTP://x.org/a.png") == "HTTP://x.org/a.png"
    assert resolve_item(str(real)) == real
    assert resolve_item(quote(str(real))) == real
    assert resolve_item("file://" + quote(str(real))) == real
    assert resolve_item("file://localhost" + quote(str(real))) == real
    assert resolve_item(str(literal)) == literal
    assert resolve_item("missing%20file.png") == Path("missing%20file.png")


def test_is_url() -> None:
    assert is_url("http://a") and is_url("HTTPS://a")
    assert not is_url("file:///a.png") and not is_url("/http/a.png") and not is_url("data:x")


def test_local_path_and_item_key(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    assert local_path(path) is path
    assert local_path(str(path)) == path
    assert local_path("file://" + quote(str(path))) == path
    assert local_path("https://x.org/a.png") is None
    assert item_key(path) == item_key(str(path)) == "path:" + str(path)
    assert item_key("https://x.org/a.png") == "url:https://x.org/a.png"


def test_shown_url_drops_the_query() -> None:
    assert shown_url("https://x.org/a.png?sig=secret#f") == "https://x.org/a.png"


def test_failed_result_says_whether_the_service_was_unreachable() -> None:
    down = failed_result("a.png", "local", NetworkError("connection refused"))
    assert (down.status, down.error, down.unreachable, down.ok) == (
        "failed",
        "connection refused",
        True,
        False,
    )
    assert failed_result("a", "local", ServerError(500, "boom", http_status=502)).unreachable
    bad = failed_result("a.png", "local", ItemError("is not an image"))
    assert (bad.error, bad.unreachable) == ("is not an image", False)
    odd = failed_result("u", "remote", KeyError("x"))
    assert odd.error == "internal error: KeyError: 'x'" and not odd.unreachable


def test_with_hash_keeps_md5_and_extension_within_the_length_limit() -> None:
    now = datetime(2024, 1, 2)
    assert _with_hash("shot.png", MD5, ".png", now) == f"shot-{MD5}.png"
    assert _with_hash(f"{MD5}.png", MD5, ".png", now) == f"{MD5}.png"
    long = _with_hash("x" * 250 + ".png", MD5, ".png", now)
    assert long.endswith(f"-{MD5}.png") and len(long) < 255
