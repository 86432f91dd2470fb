"""A click group that knows its commands by name and one-line help, and imports a command's module
only when that command is used (click's "lazy loading subcommands" pattern).

Importing every command module before running one was most of the command line's start-up: each
pulls in its option tables, output helpers and result types, and ``imgsync sync`` of an unchanged
vault should cost little more than a walk of it. So the group is given a table of
:class:`LazyCommand` entries; ``imgsync sync`` imports ``imgsync.cli.sync`` and nothing of the
other commands. What lists commands without running one (``imgsync --help``, the shell completion
of a command name, the "Did you mean" of an unknown one) is answered from the table alone, with
the text click would have shown for the loaded command.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from gettext import gettext as _
from typing import TYPE_CHECKING, Any, NamedTuple

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

# click >= 8.4 raises this for an unknown command and suggests close names from the
# ``possibilities`` it is given; older versions print no suggestion at all.
_NoSuchCommand: Any = getattr(click.exceptions, "NoSuchCommand", None)


class LazyCommand(NamedTuple):
    """Where a command lives, and the first paragraph of its help (what listings shorten)."""

    module: str
    attribute: str
    help: str


class LazyGroup(click.Group):
    """A :class:`click.Group` whose commands are imported on first use from ``lazy_commands``.

    Commands added the usual way (``add_command``) work as in any group; a lazy command, once
    loaded, is added so, and later lookups find it there.
    """

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, LazyCommand] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            command = self._load(cmd_name)
        return command

    def _load(self, name: str) -> click.Command:
        spec = self.lazy_commands[name]
        command = getattr(importlib.import_module(spec.module), spec.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{spec.module}.{spec.attribute} is not a click command")
        self.add_command(command, name)
        return command

    def listed_command(self, name: str) -> click.Command | None:
        """The command as a listing shows it, importing nothing: the loaded command, else a
        stand-in that carries the help of the table."""
        command = self.commands.get(name)
        if command is None and name in self.lazy_commands:
            command = click.Command(name, help=self.lazy_commands[name].help)
        return command

    def _visible(self, ctx: click.Context, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
        for name in self.list_commands(ctx):
            if name.startswith(prefix):
                command = self.listed_command(name)
                if command is not None and not command.hidden:
                    yield name, command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The "Commands" section of the help, laid out as :class:`click.Group` lays it out."""
        commands = list(self._visible(ctx))
        if not commands:
            return
        # As click does: the help column gets what the widest name leaves of the line.
        limit = formatter.width - 6 - max(len(name) for name, _command in commands)
        rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (with their short help) and the group's options, importing nothing."""
        from click.shell_completion import CompletionItem

        results = [
            CompletionItem(name, help=command.get_short_help_str())
            for name, command in self._visible(ctx, incomplete)
        ]
        # The options, as any command completes them (click.Group would list commands again).
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if _NoSuchCommand is None:
            return super().resolve_command(ctx, args)
        try:
            return super().resolve_command(ctx, args)
        except _NoSuchCommand as exc:
            # click suggests close names from the commands it holds: the loaded ones only.
            raise _NoSuchCommand(
                exc.command_name,
                exc.message,
                possibilities=self.list_commands(ctx),
                ctx=ctx,
            ) from None
