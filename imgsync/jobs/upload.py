"""``imgsync upload``: upload local images and image URLs as an editor hands them over.

This runs on every paste in an editor, so what the local index knows is answered first
(:mod:`imgsync.engine.cached`: no read, no request), and the uploader - with the API client and
the HTTP stack it imports - is built only for the items left over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from imgsync.engine.cached import CacheAnswers, OnResult, upload_cache_first
from imgsync.engine.items import Item, resolve_item
from imgsync.store.cache import Cache

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
    targets = [resolve_item(item) for item in items]
    with Cache.open(settings.data_dir, namespace=settings.account.key) as cache:

        def upload_rest(rest: Sequence[Item], report: OnResult) -> None:
            # Imported here, not at the top: the uploader brings the API client and requests,
            # which a run answered from the cache must not pay for.
            from imgsync.engine.uploader import Uploader

            with Uploader.from_settings(settings, cache=cache) as uploader:
                uploader.upload_many(rest, on_result=report)

        answers = CacheAnswers(settings, cache)
        return upload_cache_first(
            targets, answers=answers, upload_rest=upload_rest, on_result=on_result
        )
