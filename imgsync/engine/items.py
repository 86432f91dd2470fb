"""Upload items as editors and the command line spell them: local paths, ``file://`` URIs, URLs.

An item is turned into what the engine works on (:data:`Item`: a local :class:`~pathlib.Path` or an
http(s) URL string) once, here, so the cache-only answer and the uploader read it the same way.

Only the standard library is imported: this is on the cache-hit path of ``imgsync upload``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

# A local file, or a remote image's URL (any other string is read as a local path).
Item = Path | str

HTTP_SCHEMES = ("http://", "https://")
FILE_SCHEME = "file://"
_URL_HEAD = max(map(len, HTTP_SCHEMES))  # characters enough to tell an http(s) URL


def is_url(text: str) -> bool:
    """Whether ``text`` is an http(s) URL (a remote image) rather than a local path."""
    return text[:_URL_HEAD].lower().startswith(HTTP_SCHEMES)


def is_file_uri(text: str) -> bool:
    """Whether ``text`` is a ``file://`` URI (a local file spelled as a URL)."""
    return text[: len(FILE_SCHEME)].lower() == FILE_SCHEME


def resolve_item(text: str) -> Item:
    """Turn one command-line or editor item into a local Path or a remote URL string.

    Editors hand over paths in several spellings (docs/users.md): plain, percent-encoded (``%20``,
    encoded Chinese) and ``file://`` URIs. A plain path that exists wins over its decoded spelling,
    so a file really named ``a%20b.png`` still works.
    """
    if is_url(text):
        return text
    if is_file_uri(text):
        parts = urlsplit(text)
        path = unquote(parts.path)
        if parts.netloc and parts.netloc.lower() != "localhost":
            path = f"//{parts.netloc}{path}"  # a UNC-style host; left for the OS to judge
        return Path(path)
    if "%" in text and not os.path.lexists(text):
        decoded = unquote(text)
        if os.path.lexists(decoded):
            return Path(decoded)
    return Path(text)


def local_path(item: Item) -> Path | None:
    """The local file an item names (a Path, a ``file://`` URI, a path string), or None for an
    http(s) URL."""
    if isinstance(item, Path):
        return item
    if is_url(item):
        return None
    if is_file_uri(item):
        return Path(resolve_item(item))
    return Path(item)


def item_key(item: Item) -> str:
    """Identical items are uploaded once: paths compare by absolute spelling, URLs as given."""
    if isinstance(item, str) and is_url(item):
        return "url:" + item
    return "path:" + os.path.abspath(item)


def shown_url(url: str) -> str:
    """A URL for a log line: no query string (it may carry a signature or a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
