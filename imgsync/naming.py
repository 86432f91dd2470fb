"""Remote file names and folder paths, from the user's templates, within the service's rules.

Templates (``upload.filename``, ``upload.folder``) use ``{placeholder}`` fields; ``{{`` and ``}}``
stand for literal braces. File names know ``{md5}``, ``{name}``, ``{ext}``, ``{year}``, ``{month}``,
``{day}``; folder paths only the date fields (a folder is shared by many files).

- ``{md5}`` is the lowercase hex md5 of the content. The default ``{md5}{ext}`` makes names unique
  by content, so two different images never compete for one name. A template without ``{md5}`` can
  collide (two ``shot.png`` in one month); the upload engine handles that, not this module.
- ``{name}`` is the local file's stem, cleaned like the rest of the name, and the part that is cut
  when the name would be too long (so ``{name}-{md5}{ext}`` keeps its md5 and extension).
- ``{ext}`` is the canonical extension, dot included, of the kind *sniffed from the content*
  (:data:`imgsync.engine.imagefile.IMAGE_TYPES`): a PNG saved as ``x.jpg`` goes up as
  ``….png``, so the image bed serves it with the right type. A template without ``{ext}`` gets
  the extension appended unless the name already ends with it: the image bed derives types from
  extensions.
- ``{year}``, ``{month}``, ``{day}`` (4, 2 and 2 digits) come from the caller's ``now``.

The service's rules for names of files and folders: fewer than 255 characters, none of
``" \\ / : * ? | > <``, not all spaces. Characters are counted in UTF-16 code units (an emoji counts
two), the stricter reading of "characters" and the one a Java backend applies.

A bottom-layer module (beside config, which validates the templates with it when settings load):
pure text rules, no filesystem, no network.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Literal

from imgsync.errors import ConfigError

FORBIDDEN_CHARS = '"\\/:*?|><'
REPLACEMENT_CHAR = "_"
# "fewer than 255 characters" (create's filename field).
MAX_NAME_CHARS = 254
# What an otherwise empty (or all-space, or "."/"..") name becomes: the service refuses empty names.
FALLBACK_NAME = "_"
# Suffixes up to this long count as an extension worth keeping when a name is shortened (".webp" is
# 5; anything longer is more likely part of the name).
MAX_KEPT_SUFFIX_CHARS = 10

FILENAME_FIELDS = ("md5", "name", "ext", "year", "month", "day")
FOLDER_FIELDS = ("year", "month", "day")
TemplateKind = Literal["filename", "folder"]

_FORBIDDEN_TABLE = str.maketrans({char: REPLACEMENT_CHAR for char in FORBIDDEN_CHARS})
# Bidirectional controls can make "gnp.exe" display as "exe.png": never part of a name.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_FOLDER_SEPARATOR = "/"
_DOT_NAMES = frozenset({".", ".."})
# A date with every digit of a date field's width, rendered to learn each field's shape.
_PROBE_DATE = datetime(1999, 12, 31)


def validate_template(template: str, *, kind: TemplateKind) -> None:
    """Raise :class:`~imgsync.errors.ConfigError` if ``template`` cannot render a name of ``kind``.

    Config loading calls this, so a typo is reported once, at start, naming the problem.
    """
    _parse(template, kind)


def render_filename(template: str, *, md5: str, name: str, ext: str, now: datetime) -> str:
    """The remote file name for an image: ``template`` filled in and made acceptable to the service.

    ``md5`` is the content's hex md5, ``name`` the local stem, ``ext`` the canonical extension of
    the sniffed kind (``".png"``; ``""`` for none), ``now`` the upload date.
    """
    parts = _parse(template, "filename")
    if ext and not ext.startswith("."):
        ext = "." + ext
    values = {**_date_values(now), "md5": md5.lower(), "name": _clean(name), "ext": ext}

    def fill() -> str:
        text = _fill(parts, values)
        return text if text.lower().endswith(ext.lower()) else text + ext

    text = fill()
    overflow = _units(text) - MAX_NAME_CHARS
    uses_of_name = sum(1 for is_field, value in parts if is_field and value == "name")
    if overflow > 0 and uses_of_name:
        cut = -(-overflow // uses_of_name)  # ceiling: every use of {name} gives up as much
        values["name"] = _cut_units(values["name"], max(0, _units(values["name"]) - cut))
        text = fill()
    text = sanitize_component(text)
    if ext and text.lower() == ext.lower():  # nothing before the extension: ".png" looks hidden
        text = FALLBACK_NAME + ext
    return text


def render_folder(template: str, *, now: datetime) -> tuple[str, ...]:
    """The folder path ``template`` names on ``now``, as components from the root (``()`` = root).

    Empty components (``a//b``, a leading or trailing ``/``) are dropped.
    """
    text = _fill(_parse(template, "folder"), _date_values(now))
    return tuple(
        sanitize_component(component)
        for component in text.split(_FOLDER_SEPARATOR)
        if component.strip()
    )


def folder_levels(template: str) -> list[str | re.Pattern[str]]:
    """Each level of the folder path ``template`` can render to, top first: its name when fixed,
    else the pattern of every name it renders to on some date (``{year}`` as four digits,
    ``{month}`` and ``{day}`` as two), so the folders a template made are found again by name
    and a folder of the user's own beside them is not taken for one.

    Empty levels (``a//b``, a leading or trailing ``/``) are dropped, as :func:`render_folder`
    drops them.
    """
    levels: list[str | re.Pattern[str]] = []
    probe = _date_values(_PROBE_DATE)
    for component in template.split(_FOLDER_SEPARATOR):
        parts = _parse(component, "folder")
        if not any(is_field for is_field, _ in parts):
            text = "".join(value for _, value in parts)
            if text.strip():
                levels.append(sanitize_component(text))
            continue
        regex = "".join(
            re.sub(r"\d", r"\\d", probe[value]) if is_field else re.escape(value)
            for is_field, value in parts
        )
        levels.append(re.compile(regex))
    return levels


def sanitize_component(text: str, *, max_len: int = MAX_NAME_CHARS) -> str:
    """``text`` made into an acceptable file or folder name.

    Forbidden characters become ``_``; control and bidirectional-control characters are dropped;
    the text is NFC-normalised (macOS hands out decomposed names) and stripped of surrounding
    whitespace; a name longer than ``max_len`` UTF-16 units is shortened, keeping a short extension;
    an empty, all-space, ``.`` or ``..`` result becomes :data:`FALLBACK_NAME`. Idempotent.
    """
    if max_len < len(FALLBACK_NAME):
        raise ValueError(f"max_len must be at least {len(FALLBACK_NAME)}, got {max_len}")
    text = _clean(text).strip()
    if _units(text) > max_len:
        stem, suffix = _split_suffix(text)
        if _units(suffix) >= max_len:
            stem, suffix = text, ""
        text = (_cut_units(stem, max_len - _units(suffix)).rstrip() + suffix).strip()
    if not text or text in _DOT_NAMES:
        return FALLBACK_NAME
    return text


# -- templates -------------------------------------------------------------------------------------


def _parse(template: str, kind: TemplateKind) -> list[tuple[bool, str]]:
    """``template`` as (is_field, text) parts, or a ConfigError saying what is wrong and why."""
    known = FILENAME_FIELDS if kind == "filename" else FOLDER_FIELDS
    known_text = ", ".join(f"{{{field}}}" for field in known)
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(template):
        literal.append(template[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        field = match.group(1)
        if field is None:
            raise ConfigError(
                f"unmatched {token!r} at position {match.start()} in {template!r} "
                f"(write {token * 2!r} for a literal brace)"
            )
        if not field.strip():
            raise ConfigError(f"empty placeholder {{{field}}} in {template!r}; use {known_text}")
        if field not in known:
            if kind == "folder" and field in FILENAME_FIELDS:
                raise ConfigError(
                    f"{{{field}}} cannot be used in a folder path ({template!r}): a folder holds "
                    f"many files; use {known_text}"
                )
            raise ConfigError(f"unknown placeholder {{{field}}} in {template!r}; use {known_text}")
        parts.append((False, "".join(literal)))
        literal = []
        parts.append((True, field))
    literal.append(template[pos:])
    parts.append((False, "".join(literal)))
    parts = [part for part in parts if part[0] or part[1]]
    _check_literals(template, kind, parts)
    return parts


def _check_literals(template: str, kind: TemplateKind, parts: list[tuple[bool, str]]) -> None:
    text = "".join(value if not is_field else "\0" for is_field, value in parts)
    allowed = _FOLDER_SEPARATOR if kind == "folder" else ""
    for char in FORBIDDEN_CHARS:
        if char in text and char not in allowed:
            hint = {
                "/": "; put folders in the folder template",
                "\\": "; separate folders with /" if kind == "folder" else "",
            }.get(char, "")
            raise ConfigError(
                f"{template!r} contains {char!r}, which the image bed does not allow in names{hint}"
            )
    if kind == "filename":
        if not text.strip():
            raise ConfigError("the file name template is empty")
        return
    for component in text.split(_FOLDER_SEPARATOR):
        if component.strip() in _DOT_NAMES:
            raise ConfigError(f"{template!r}: '.' and '..' are not folder names")


def _fill(parts: list[tuple[bool, str]], values: dict[str, str]) -> str:
    return "".join(values[value] if is_field else value for is_field, value in parts)


def _date_values(now: datetime) -> dict[str, str]:
    return {"year": f"{now.year:04d}", "month": f"{now.month:02d}", "day": f"{now.day:02d}"}


# -- characters ------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """NFC, no control characters, forbidden characters replaced; spaces are kept."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        char for char in text if char not in _BIDI_CONTROLS and unicodedata.category(char) != "Cc"
    )
    return text.translate(_FORBIDDEN_TABLE)


def _units(text: str) -> int:
    """Length in UTF-16 code units: characters outside the BMP (most emoji) count two."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _cut_units(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` UTF-16 units (never half a character)."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


def _split_suffix(text: str) -> tuple[str, str]:
    """(stem, ".ext") when ``text`` ends with a short extension after a non-empty stem."""
    dot = text.rfind(".")
    if dot <= 0:
        return text, ""
    suffix = text[dot:]
    if len(suffix) > MAX_KEPT_SUFFIX_CHARS or " " in suffix:
        return text, ""
    return text[:dot], suffix
