"""What the manage commands share on the command line: asking before a deletion, and printing
per-item outcomes.

A deletion is asked for on a terminal unless ``--yes``. Without a terminal (a script, a pipe) there
is nobody to ask, so the command refuses with exit status 2 rather than guess: a script says
``--yes`` when it means it. Answering no ends the command with exit status 1, nothing done.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from imgsync.cli.app import fail
from imgsync.cli.manage_output import outcome_json
from imgsync.cli.output import echo_json, printable
from imgsync.errors import EXIT_PARTIAL, EXIT_USAGE

if TYPE_CHECKING:
    from imgsync.jobs.imagebed import ItemOutcome

YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def confirm(question: str, *, yes: bool, command: str) -> None:
    """Return when the user agreed (``--yes``, or "y" on a terminal); otherwise exit."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(
            f"{command} asks for confirmation, and stdin is not a terminal: add --yes to go"
            " ahead without asking",
            EXIT_USAGE,
        )
    if not click.confirm(question, default=False, err=True):
        fail("nothing was done", EXIT_PARTIAL)


def echo_err(text: str) -> None:
    """One line on stderr (names that are not UTF-8 shown as ``\\xNN``)."""
    click.echo(printable(text), err=True)


def print_outcomes(
    outcomes: Sequence[ItemOutcome], *, as_json: bool, own_document: bool = True
) -> None:
    """One stdout line per item done (``STATUS  ID  name``), one stderr line per failure, then
    the counts on stderr. With ``--json`` stdout gets the list of outcomes instead, unless they
    are part of a larger document the caller prints (``own_document`` False)."""
    if as_json and own_document:
        echo_json([outcome_json(outcome) for outcome in outcomes])
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if not outcome.ok:
            echo_err(f"imgsync: {outcome.input}: {outcome.error}")
        elif not as_json:
            name = f"  {outcome.name}" if outcome.name else ""
            click.echo(printable(f"{outcome.status}  {outcome.file_id or outcome.input}{name}"))
    echo_err(", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to do")
