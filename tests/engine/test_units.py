"""The engine's small pure parts: item spelling, in-order reporting, exit status, namespaces."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from imgsync.engine.folders import _with_hash
from imgsync.engine.items import is_url, resolve_item
from imgsync.engine.uploader import InOrder, UploadResult, exit_status

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


def result(index: int, ok: bool = True, exit_code: int = 1) -> UploadResult:
    if ok:
        return UploadResult(f"i{index}", "local", "uploaded", url=f"http://u/{index}")
    return UploadResult(f"i{index}", "local", "failed", error="no", exit_code=exit_code)


def test_in_order_emits_each_result_once_in_input_order() -> None:
    seen: list[str] = []
    in_order = InOrder(4, lambda r: seen.append(r.input))
    in_order(2, result(2))
    assert seen == []
    in_order(0, result(0))
    assert seen == ["i0"]
    in_order(1, result(1))
    assert seen == ["i0", "i1", "i2"]
    in_order(3, result(3))
    assert seen == ["i0", "i1", "i2", "i3"]


def test_in_order_fail_rest_keeps_known_results() -> None:
    seen: list[UploadResult] = []
    in_order = InOrder(3, seen.append)
    in_order(1, result(1))
    in_order.fail_rest(["a.png", "b.png", "https://c/x.png"], "auth failed", 3)
    assert [r.status for r in seen] == ["failed", "uploaded", "failed"]
    assert (seen[2].kind, seen[2].error, seen[2].exit_code) == ("remote", "auth failed", 3)


def test_exit_status() -> None:
    assert exit_status([result(0), result(1)]) == 0
    assert exit_status([result(0), result(1, ok=False)]) == 1
    assert exit_status([result(0, ok=False, exit_code=4), result(1, ok=False, exit_code=4)]) == 4
    assert exit_status([result(0, ok=False, exit_code=4), result(1, ok=False)]) == 1
    assert exit_status([result(0), result(1, ok=False, exit_code=4)]) == 1


def test_result_json_shape() -> None:
    doc = UploadResult("x.png", "local", "reused", "http://u", MD5, "f1").to_json()
    assert doc == {
        "input": "x.png",
        "ok": True,
        "url": "http://u",
        "md5": MD5,
        "fileID": "f1",
        "error": None,
        "kind": "local",
        "status": "reused",
    }


def test_with_hash_keeps_md5_and_extension_within_the_length_limit() -> None:
    now = datetime(2024, 1, 2)
    assert _with_hash("shot.png", MD5, ".png", now) == f"shot-{MD5}.png"
    assert _with_hash(f"{MD5}.png", MD5, ".png", now) == f"{MD5}.png"
    long = _with_hash("x" * 250 + ".png", MD5, ".png", now)
    assert long.endswith(f"-{MD5}.png") and len(long) < 255
