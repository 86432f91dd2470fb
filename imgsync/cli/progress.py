"""A one-line progress bar on a terminal; silent for editors, pipes and ``--json``."""

from __future__ import annotations

import click


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    WIDTH = 30  # characters of bar: fits an 80-column terminal with the counts beside it

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        self._show()

    def step(self, _result: object) -> None:
        self.done += 1
        self._show()

    @property
    def shown(self) -> bool:
        """Whether a bar is on the terminal's current line."""
        return self.enabled and self.total > 0

    def _show(self) -> None:
        if self.enabled and self.total:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            click.echo(f"\rimages [{bar}] {self.done}/{self.total}", err=True, nl=False)

    def finish(self) -> None:
        if self.enabled and self.total:
            click.echo("", err=True)
