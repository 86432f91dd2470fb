"""A one-line progress display on a terminal; silent for editors, pipes and ``--json``.

While ``imgsync sync`` runs, stderr (when it is a terminal) shows one line, redrawn in place::

    notes 41/200 (1 failed) · images 57/100 · about 25 s left

notes done of those found (``+`` while the walk still finds more) and how many of them failed in
whole or in part, distinct images settled of those needed (and how many failed), and the time
left, estimated from the pace of the uploads so far once the walk is over. The report's own lines
go to stdout, which is often the same terminal: :meth:`Progress.echo` clears the line before one is
printed and draws it again after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from imgsync.jobs.sync import SyncCounts

# How often the line is drawn at most: a run settles hundreds of items a second at times, and a
# terminal redrawn that often flickers and costs more than the work it reports.
REFRESH_S = 0.1
# Below this many seconds the estimate says seconds; above it, minutes.
SECONDS_SHOWN_UP_TO = 90
# ANSI: carriage return and erase to the end of the line.
CLEAR_LINE = "\r\x1b[K"


class Progress:
    """The progress line on stderr when ``enabled`` (stderr is a terminal); silent otherwise.

    ``clock`` is the monotonic clock the redraws and the estimate are timed by.
    """

    def __init__(self, *, enabled: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock
        self._line = ""  # what is on the terminal now ("" when nothing is)
        self._drawn_at: float | None = None
        self._counts: SyncCounts | None = None
        # When the first upload was seen, and how many had settled then (the estimate's origin).
        self._uploads_seen_at: float | None = None

    @property
    def shown(self) -> bool:
        """Whether the progress line is on the terminal's current line."""
        return bool(self._line)

    def update(self, counts: SyncCounts) -> None:
        """Take the run's counts; redraw if the last drawing is old enough."""
        if not self.enabled:
            return
        self._counts = counts
        now = self._clock()
        if counts.uploads and self._uploads_seen_at is None:
            self._uploads_seen_at = now
        if self._drawn_at is None or now - self._drawn_at >= REFRESH_S:
            self._draw(now)

    def text(self, counts: SyncCounts, now: float) -> str:
        """The progress line for ``counts`` at the time ``now``."""
        more = "" if counts.walk_done else "+"
        parts = [
            f"notes {counts.notes_done}/{counts.notes_found}{more}{_failed(counts.notes_failed)}"
        ]
        if counts.images:
            parts.append(
                f"images {counts.images_done}/{counts.images}{_failed(counts.images_failed)}"
            )
        left = self._time_left(counts, now)
        if left is not None:
            parts.append(left)
        return " · ".join(parts)

    def _time_left(self, counts: SyncCounts, now: float) -> str | None:
        """ "about N s left" from the pace of the uploads so far, once the walk is over and an
        upload has settled; None before (the amount of work is not known yet)."""
        start = self._uploads_seen_at
        if not counts.walk_done or start is None or not counts.uploads_done:
            return None
        remaining = counts.uploads - counts.uploads_done
        if remaining <= 0 or now <= start:
            return None
        seconds = remaining * (now - start) / counts.uploads_done
        if seconds < SECONDS_SHOWN_UP_TO:
            return f"about {max(1, round(seconds))} s left"
        return f"about {round(seconds / 60)} min left"

    def echo(self, text: str, *, err: bool) -> None:
        """Print a line of the report (stdout) or a warning (stderr) without garbling the
        progress line: it is cleared first and drawn again after."""
        line = self._line
        if line:
            self._clear()
        click.echo(text, err=err)
        if line and self._counts is not None:
            self._draw(self._clock())

    def finish(self) -> None:
        """Clear the line for good (the report's summary follows)."""
        if self._line:
            self._clear()

    def _draw(self, now: float) -> None:
        assert self._counts is not None
        import shutil  # here: on a terminal only (shutil loads bz2 and lzma, ~3 ms of start-up)

        width = max(20, shutil.get_terminal_size().columns - 1)
        self._line = self.text(self._counts, now)[:width]
        self._drawn_at = now
        click.echo(CLEAR_LINE + self._line, err=True, nl=False, color=True)

    def _clear(self) -> None:
        click.echo(CLEAR_LINE, err=True, nl=False, color=True)  # color: keep the escape as is
        self._line = ""


def _failed(count: int) -> str:
    return f" ({count} failed)" if count else ""


class StepBar:
    """A bar of steps done out of a known total (``imgsync cache verify``), on stderr when it is a
    terminal; silent otherwise."""

    WIDTH = 30  # characters of bar: fits an 80-column terminal with the counts beside it

    def __init__(self, *, enabled: bool, what: str) -> None:
        self.enabled = enabled
        self.what = what
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        self._show()

    def step(self, _result: object) -> None:
        self.done += 1
        self._show()

    def _show(self) -> None:
        if self.enabled and self.total:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            click.echo(f"\r{self.what} [{bar}] {self.done}/{self.total}", err=True, nl=False)

    def finish(self) -> None:
        if self.enabled and self.total:
            click.echo("", err=True)
