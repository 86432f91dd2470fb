"""Code spans: which backtick run closes the one that opens a code span.

A run of N backticks opens a code span closed by the next run of exactly N backticks; with none,
the run is plain text (CommonMark, and mistune). Code spans bind tighter than brackets, so both
the scanner's bracket matching (:mod:`.brackets`) and the simple-note decider (:mod:`.simple`)
skip them. The runs are indexed once by length, so that many openers without a closer
(`` ` `` followed by ``` `` ``` a thousand times) cost one pass, not one search each.

Part of the scanner: imports nothing of the markdown modules. Pure.
"""

from __future__ import annotations

import re
from bisect import bisect_right

__all__ = ["BACKTICKS_RE", "BacktickRuns"]

#: A run of backticks.
BACKTICKS_RE = re.compile(r"`+")


class BacktickRuns:
    """The backtick runs of ``text[start:limit]``, by length."""

    def __init__(self, text: str, start: int = 0, limit: int | None = None) -> None:
        self._starts: dict[int, list[int]] = {}
        end = len(text) if limit is None else limit
        for run in BACKTICKS_RE.finditer(text, start, end):
            self._starts.setdefault(run.end() - run.start(), []).append(run.start())

    def closer(self, opener: int, size: int) -> int | None:
        """Where the run closing the ``size`` backticks at ``opener`` starts, or None (then the
        opening run is plain text)."""
        starts = self._starts.get(size)
        if not starts:
            return None
        later = bisect_right(starts, opener)
        return starts[later] if later < len(starts) else None
