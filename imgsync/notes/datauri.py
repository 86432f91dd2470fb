"""The bytes a ``data:`` URI in a note holds (RFC 2397), so an inline image can go up like a file.

Pure: no filesystem, no network. The caller decides what to do with the bytes (the sync job writes
them to a scratch file for the uploader, which checks that they are an image).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_to_bytes

__all__ = ["decode_data_uri"]

# The parameter that marks a base64 payload (RFC 2397: ``data:[<mediatype>][;base64],<data>``).
BASE64_MARKER = ";base64"


def decode_data_uri(uri: str) -> bytes:
    """The payload of ``uri`` (``data:[<mediatype>][;base64],<data>``), decoded.

    An undecodable payload gives no bytes rather than an exception: the uploader then refuses the
    empty image with a clear message, reported on the reference like any other failed image.
    """
    header, _, payload = uri.partition(",")
    try:
        if header.lower().endswith(BASE64_MARKER):
            return base64.b64decode(payload.strip(), validate=False)
        return unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return b""
