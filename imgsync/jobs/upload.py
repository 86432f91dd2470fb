"""``imgsync upload``: upload local images and image URLs as an editor hands them over."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.engine.results import UploadResult


def upload_items(
    settings: Settings,
    items: Sequence[str],
    on_result: Callable[[int, UploadResult], None] | None = None,
) -> list[UploadResult]:
    """Upload every item (a path, a percent-encoded path, a ``file://`` URI or an http(s) URL);
    one result per item, in order. ``on_result(index, result)`` hears of each as it is known.

    A whole-run failure (configuration, authentication, an unusable cache) raises.
    """
    from imgsync.engine.items import resolve_item
    from imgsync.engine.uploader import Uploader

    with Uploader.from_settings(settings) as uploader:
        return uploader.upload_many([resolve_item(i) for i in items], on_result=on_result)
