"""What long-lived jobs keep open between batches: one index and one API client, opened on first
need (the API client, and the HTTP library it loads, only once something is to be uploaded).

The watcher (:mod:`imgsync.jobs.watch_sync`) and the PicGo server
(:class:`imgsync.jobs.upload.UploadSession`) each hold one :class:`OpenOnce` for their life and
build
a fresh :class:`~imgsync.engine.uploader.Uploader` over it per batch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from imgsync.store.cache import Cache

if TYPE_CHECKING:
    from imgsync.client.api import Api
    from imgsync.config import Settings

__all__ = ["OpenOnce"]


class OpenOnce:
    """The index and the API client of ``settings``, each opened on first use (from any thread)
    and kept until :meth:`close`. ``api_factory`` makes the API client (tests pass one pointed
    elsewhere)."""

    def __init__(self, settings: Settings, api_factory: Callable[[], Api] | None = None) -> None:
        self.settings = settings
        self._api_factory = api_factory or self._default_api
        self._lock = threading.Lock()
        self._cache: Cache | None = None
        self._api: Api | None = None

    def cache(self) -> Cache:
        """The index, opened on first use."""
        with self._lock:
            if self._cache is None:
                account = self.settings.account.key
                self._cache = Cache.open(self.settings.data_dir, namespace=account)
            return self._cache

    def api(self) -> Api:
        """The API client, made on first use."""
        with self._lock:
            if self._api is None:
                self._api = self._api_factory()
            return self._api

    def close(self) -> None:
        """Close the API client and the index (no batch may be using them)."""
        with self._lock:
            api, cache = self._api, self._cache
            self._api = self._cache = None
        if api is not None:
            with contextlib.suppress(Exception):
                api.close()
        if cache is not None:
            cache.close()

    def _default_api(self) -> Api:
        from imgsync.client.api import Api  # loads requests: only once something uploads

        self.settings.require_credentials()
        return Api.from_settings(self.settings)
