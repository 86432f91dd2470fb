"""Remote names and folder paths: templates, the service's name rules, config-time validation."""

from __future__ import annotations

import unicodedata
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgsync.errors import EXIT_USAGE, ConfigError
from imgsync.naming import (
    FALLBACK_NAME,
    FORBIDDEN_CHARS,
    MAX_NAME_CHARS,
    render_filename,
    render_folder,
    sanitize_component,
    validate_template,
)

MD5 = "0123456789abcdef0123456789abcdef"
NOW = datetime(2024, 5, 7, 23, 59)


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def filename(template: str = "{md5}{ext}", *, name: str = "shot", ext: str = ".png") -> str:
    return render_filename(template, md5=MD5, name=name, ext=ext, now=NOW)


# -- file names ------------------------------------------------------------------------------------


def test_default_template_names_by_content() -> None:
    assert filename() == f"{MD5}.png"
    assert render_filename("{md5}{ext}", md5=MD5.upper(), name="x", ext=".png", now=NOW) == (
        f"{MD5}.png"
    )


def test_every_field() -> None:
    assert filename("{year}{month}{day}-{name}-{md5}{ext}") == f"20240507-shot-{MD5}.png"
    assert filename("{{{name}}}{ext}") == "{shot}.png"  # doubled braces are literal


def test_extension_is_appended_when_the_template_lacks_it() -> None:
    assert filename("{name}") == "shot.png"
    assert filename("{name}.png") == "shot.png"  # already there
    assert filename("{name}.PNG") == "shot.PNG"
    assert filename("{name}.jpg") == "shot.jpg.png"  # the content is a PNG
    assert filename("{name}", ext="") == "shot"
    assert filename("{name}{ext}", ext="webp") == "shot.webp"  # the dot is added


def test_local_name_is_cleaned() -> None:
    assert filename("{name}{ext}", name='a"b\\c/d:e*f?g|h>i<j') == "a_b_c_d_e_f_g_h_i_j.png"
    assert filename("{name}{ext}", name="tab\there\nnew\x7fline") == "tabherenewline.png"
    assert filename("{name}{ext}", name="  spaced  ") == "spaced  .png"
    assert filename("{name}{ext}", name="\u202egnp.exe") == "gnp.exe.png"  # no bidi tricks
    assert filename("{name}{ext}", name="截图 2024") == "截图 2024.png"


def test_decomposed_names_are_composed() -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    assert filename("{name}{ext}", name=decomposed) == "café.png"


def test_long_local_name_is_cut_not_the_md5_or_extension() -> None:
    name = "长" * 400
    result = filename("{name}-{md5}{ext}", name=name)
    assert units(result) == MAX_NAME_CHARS
    assert result.endswith(f"-{MD5}.png") and result.startswith("长")


def test_long_name_used_twice_is_cut_evenly() -> None:
    result = filename("{name}_{name}{ext}", name="n" * 300)
    assert units(result) <= MAX_NAME_CHARS and result.endswith(".png")
    left, right = result[: -len(".png")].split("_")
    assert left == right


def test_emoji_count_as_two_units() -> None:
    result = filename("{name}{ext}", name="😀" * 200)
    assert units(result) <= MAX_NAME_CHARS and result.endswith(".png")
    assert len(result) == (MAX_NAME_CHARS - 4) // 2 + 4  # never half an emoji


def test_name_that_cleans_to_nothing() -> None:
    assert filename("{name}", name="\x00\x01", ext="") == FALLBACK_NAME
    assert filename("{name}{ext}", name="   ") == "_.png"  # not a hidden-looking ".png"


# -- folders ---------------------------------------------------------------------------------------


def test_folder_components() -> None:
    assert render_folder("imgsync/{year}/{month}", now=NOW) == ("imgsync", "2024", "05")
    assert render_folder("{year}-{month}-{day}", now=NOW) == ("2024-05-07",)
    assert render_folder("/notes//images/ / {year}/", now=NOW) == ("notes", "images", "2024")
    assert render_folder("", now=NOW) == ()
    assert render_folder("图床/笔记", now=NOW) == ("图床", "笔记")


def test_folder_date_is_the_callers_now() -> None:
    assert render_folder("{year}/{month}/{day}", now=datetime(999, 1, 2)) == ("0999", "01", "02")


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "kind", "message"),
    [
        ("{foo}{ext}", "filename", "unknown placeholder {foo}"),
        ("{MD5}", "filename", "unknown placeholder {MD5}"),
        ("{md5:8}", "filename", "unknown placeholder"),
        ("{}", "filename", "empty placeholder"),
        ("{md5", "filename", "unmatched '{'"),
        ("md5}", "filename", "unmatched '}'"),
        ("{{md5}", "filename", "unmatched '}'"),
        ("", "filename", "empty"),
        ("   ", "filename", "empty"),
        ("img/{md5}{ext}", "filename", "folder template"),
        ("{md5}?{ext}", "filename", "'?'"),
        ('"{md5}"', "filename", "'\"'"),
        ("imgsync/{md5}", "folder", "{md5} cannot be used in a folder path"),
        ("imgsync/{name}", "folder", "cannot be used in a folder path"),
        ("imgsync/{week}", "folder", "unknown placeholder {week}"),
        ("imgsync\\{year}", "folder", "separate folders with /"),
        ("a:b/{year}", "folder", "':'"),
        ("imgsync/../{year}", "folder", "'..'"),
        ("./{year}", "folder", "'..'"),
    ],
)
def test_bad_templates(template: str, kind: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_template(template, kind=kind)
    assert message in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE
    # Rendering refuses the same way: a bad template never yields a name.
    with pytest.raises(ConfigError):
        if kind == "filename":
            filename(template)
        else:
            render_folder(template, now=NOW)


@pytest.mark.parametrize(
    ("template", "kind"),
    [
        ("{md5}{ext}", "filename"),
        ("{year}{month}{day}_{name}{ext}", "filename"),
        ("{{literal}}-{md5}", "filename"),
        ("imgsync/{year}/{month}", "folder"),
        ("", "folder"),
        ("/", "folder"),
        ("a.b/.hidden/{day}", "folder"),
    ],
)
def test_good_templates(template: str, kind: str) -> None:
    validate_template(template, kind=kind)


# -- the service's name rules, for any input


def assert_acceptable(name: str, max_len: int = MAX_NAME_CHARS) -> None:
    assert name and name.strip(), "never empty or all spaces"
    assert name not in (".", "..")
    assert not set(name) & set(FORBIDDEN_CHARS)
    assert not any(unicodedata.category(char) == "Cc" for char in name)
    assert units(name) <= max_len
    assert name == name.strip()


@given(st.text())
def test_sanitize_component_always_acceptable_and_idempotent(text: str) -> None:
    name = sanitize_component(text)
    assert_acceptable(name)
    assert sanitize_component(name) == name


@given(st.text(min_size=1), st.integers(min_value=1, max_value=300))
def test_sanitize_component_honours_max_len(text: str, max_len: int) -> None:
    assert_acceptable(sanitize_component(text, max_len=max_len), max_len)


@given(
    st.text(max_size=400),
    st.sampled_from(["", ".png", ".jpg", ".svg", ".webp", ".tiff"]),
    st.sampled_from(["{md5}{ext}", "{name}{ext}", "{year}-{name}", "{name}"]),
)
def test_rendered_filenames_always_acceptable(name: str, ext: str, template: str) -> None:
    result = filename(template, name=name, ext=ext)
    assert_acceptable(result)
    if ext and result != FALLBACK_NAME:
        assert result.endswith(ext)


def test_sanitize_component_examples() -> None:
    assert sanitize_component("a/b") == "a_b"
    assert sanitize_component(" ") == FALLBACK_NAME
    assert sanitize_component("..") == FALLBACK_NAME
    assert sanitize_component("") == FALLBACK_NAME
    assert sanitize_component("x" * 300 + ".png") == "x" * 250 + ".png"
    assert sanitize_component("x" * 300 + ".notanextension") == "x" * 254
    assert sanitize_component("abcdef.png", max_len=3) == "abc"
    with pytest.raises(ValueError):
        sanitize_component("x", max_len=0)
