"""Per-key locks: identical work is done once while different work runs in parallel.

Two threads of one run must never upload the same content, migrate the same URL or create the same
image-bed folder at the same time: the second would make a duplicate (or trip over "name exists")
instead of finding the first one's result. A single lock would serialise the whole run; one lock per
key (an md5, a URL, a folder path) makes only identical work wait. Locks are dropped as soon as no
thread holds or waits for them, so a long run does not collect one per image.

Only the standard library is imported: this is loaded on the cache-hit path of ``imgsync upload``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class KeyedLocks:
    """One lock per key, so two threads never upload the same content or create the same folder at
    once (the second then finds the first one's result), while different keys run in parallel."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list[Any]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` for the ``with`` block (waiting while another thread does)."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]
