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
from imgsync.jobs.session import OpenOnce
from imgsync.store.cache import Cache

__all__ = ["UploadSession", "upload_items"]

if TYPE_CHECKING:
    from imgsync.client.api import Api
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


class UploadSession:
    """Uploads batch after batch over one index and one API client, for a long-lived server.

    ``imgsync serve`` answers every paste of an editor: opening the index (and, for a miss, the
    API client with its HTTP session and token) per request would cost more than the answer. The
    session opens them on first need and keeps them until :meth:`close`. Each batch still gets its
    own :class:`~imgsync.engine.cached.CacheAnswers` and, for the items the index cannot answer, a
    fresh :class:`~imgsync.engine.uploader.Uploader` over the kept collaborators: so the hosted
    prefixes are read again, and an outage the engine noticed in one batch does not fail the next
    at once. Batches may come from several threads at once (the server's requests); the index
    and the API client are shared by threads already, as the engine's own workers share them.

    ``api_factory`` makes the API client (tests pass one pointed elsewhere).
    """

    def __init__(self, settings: Settings, *, api_factory: Callable[[], Api] | None = None) -> None:
        self.settings = settings
        self._open = OpenOnce(settings, api_factory)

    def __call__(
        self,
        items: Sequence[str],
        on_result: Callable[[int, UploadResult], None] | None = None,
    ) -> list[UploadResult]:
        """As :func:`upload_items`, over the session's index and API client."""
        targets = [resolve_item(item) for item in items]
        cache = self._open.cache()

        def upload_rest(rest: Sequence[Item], report: OnResult) -> None:
            from imgsync.engine.uploader import Uploader  # only a batch with something to upload

            # Given, not owned: closing the batch's uploader leaves the session's api and index
            # open.
            with Uploader.from_settings(self.settings, api=self._open.api(), cache=cache) as up:
                up.upload_many(rest, on_result=report)

        answers = CacheAnswers(self.settings, cache)
        return upload_cache_first(
            targets, answers=answers, upload_rest=upload_rest, on_result=on_result
        )

    def close(self) -> None:
        """Close the API client and the index (no batch may be in flight)."""
        self._open.close()

    def __enter__(self) -> UploadSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
