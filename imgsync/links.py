"""Link formats: how an uploaded image's URL is written into a note.

A format is a preset name or a custom template. Templates use PicGo's placeholders, so a template a
user already has keeps working (docs/users.md): ``$url``, ``$fileName`` (the image's name without
its extension) and ``$extName`` (the extension with its dot, ``.png``, as PicGo's ``extname``).

- ``markdown`` (the default of ``imgsync clip``): ``![$fileName]($url)``
- ``html``: ``<img src="$url" alt="$fileName">``
- ``url``: ``$url`` (the default of ``imgsync upload``: Typora reads bare URLs)

The presets are written so the link always parses: a ``[``, ``]`` or ``\\`` in a Markdown alt text
is escaped, a URL holding spaces or parentheses goes inside ``<...>``, and HTML attributes are
escaped. A custom template is filled in as written: the user chose its syntax.

A bottom-layer module beside :mod:`imgsync.naming`: the command line, the clip and serve jobs and
the config validation all use it. Pure text rules.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import unquote, urlsplit

from imgsync.errors import ConfigError

MARKDOWN = "markdown"
HTML = "html"
URL = "url"
PRESETS: Mapping[str, str] = MappingProxyType(
    {
        MARKDOWN: "![$fileName]($url)",
        HTML: '<img src="$url" alt="$fileName">',
        URL: "$url",
    }
)
PLACEHOLDERS = ("url", "fileName", "extName")
_PLACEHOLDER = re.compile(r"\$(url|fileName|extName)")
# CommonMark ends a plain link destination at whitespace and needs its parentheses balanced: such
# a URL goes inside <...>, where only <, > and line breaks are not allowed.
_NEEDS_ANGLE = re.compile(r"[\s()]")
_MARKDOWN_ALT_SPECIAL = re.compile(r"([\\\[\]])")


def validate_format(fmt: str) -> None:
    """Raise :class:`~imgsync.errors.ConfigError` unless ``fmt`` is a preset or a template that
    names ``$url`` (a link without its URL is always a mistake)."""
    if fmt in PRESETS:
        return
    if not fmt.strip():
        raise ConfigError(f"empty link format; use {', '.join(PRESETS)} or a template with $url")
    if "$url" not in fmt:
        raise ConfigError(
            f"link format {fmt!r} is neither {', '.join(PRESETS)} nor a template with $url "
            f"(placeholders: {', '.join('$' + p for p in PLACEHOLDERS)})"
        )


def render_link(fmt: str, url: str, name: str) -> str:
    """The link for ``url`` in format ``fmt``; ``name`` is the image's file name (``a.png``)."""
    validate_format(fmt)
    stem, ext = split_name(name)
    if fmt == URL:
        return url
    if fmt == MARKDOWN:
        alt = _MARKDOWN_ALT_SPECIAL.sub(r"\\\1", stem)
        destination = f"<{url}>" if _NEEDS_ANGLE.search(url) else url
        return f"![{alt}]({destination})"
    if fmt == HTML:
        # Imported here: every settings load validates a format with this module, and html's
        # entity table (about 2 ms) is only for this preset.
        from html import escape

        return f'<img src="{escape(url)}" alt="{escape(stem)}">'
    values = {"url": url, "fileName": stem, "extName": ext}
    # One pass: a value that happens to contain "$url" is never filled in again.
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], fmt)


def split_name(name: str) -> tuple[str, str]:
    """(``$fileName``, ``$extName``) of a file name: ``("a", ".png")``; ``(".env", "")``."""
    stem, ext = posixpath.splitext(name)
    return stem, ext


def is_url(text: str) -> bool:
    """Whether an upload item is an http(s) URL rather than a path."""
    return text[:8].lower().startswith(("http://", "https://"))


def display_name(item: str) -> str:
    """The file name an upload item shows in its link: a path's or URL's last segment, decoded.

    ``/notes/img/a b.png`` → ``a b.png``; ``https://x.org/p/c%20d.jpg?s=1`` → ``c d.jpg``;
    ``file:///tmp/x.gif`` → ``x.gif``. Windows separators count too.
    """
    text = item
    if "://" in item[:10]:
        text = unquote(urlsplit(item).path)
    return re.split(r"[/\\]", text.rstrip("/\\"))[-1]
