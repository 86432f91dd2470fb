"""The command group loads a command's module only when that command is used.

``imgsync --help``, shell completion and the "Did you mean" of an unknown command are answered
from the table in imgsync/cli/commands.py; these tests keep that table true to the commands, and
check in fresh processes (where nothing else has imported anything) that listing commands imports
none of them, and that running one imports only its own.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import click
import pytest

import imgsync.cli
from imgsync.cli.commands import COMMANDS

TIMEOUT_S = 60
COMMAND_MODULES = sorted({spec.module for spec in COMMANDS.values()})
# What no listing of commands needs: the jobs and what they stand on, and the big libraries.
HEAVY = (
    "requests",
    "urllib3",
    "mistune",
    "watchdog",
    "sqlite3",
    "imgsync.config",
    "imgsync.jobs",
    "imgsync.engine",
    "imgsync.store",
    "imgsync.notes",
    "imgsync.emulator",
)

# Runs in a fresh interpreter: the command line with ARGV, then the modules it loaded (on stderr,
# as the last line, so that the command's own output stays apart).
PROBE = """
import json, sys
from imgsync.cli import main
try:
    main(sys.argv[1:], prog_name="imgsync")
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def probe(args: list[str], **env: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env={**os.environ, "COLUMNS": "80", **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    return done, loaded


def heavy_in(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m in HEAVY or m.startswith(tuple(f"{h}." for h in HEAVY))}


def test_every_entry_names_its_command_with_its_own_help() -> None:
    for name, spec in COMMANDS.items():
        command = getattr(importlib.import_module(spec.module), spec.attribute)
        assert isinstance(command, click.Command), name
        assert command.name == name
        # The stand-in a listing shows carries only the help: the rest must not differ.
        assert (command.short_help, command.hidden, command.deprecated) == (None, False, False)
        stand_in = click.Command(name, help=spec.help)
        for limit in (20, 45, 60, 74, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), name


def test_every_command_the_modules_define_is_in_the_table() -> None:
    defined = set()
    for info in pkgutil.iter_modules(imgsync.cli.__path__, "imgsync.cli."):
        module = importlib.import_module(info.name)
        commands = {
            attr: obj
            for attr, obj in vars(module).items()
            if isinstance(obj, click.Command) and obj.callback is not None
            if obj.callback.__module__ == info.name
        }
        subcommands = {
            id(sub)
            for obj in commands.values()
            if isinstance(obj, click.Group)
            for sub in obj.commands.values()
        }
        defined |= {(info.name, a) for a, o in commands.items() if id(o) not in subcommands}
    defined.discard(("imgsync.cli.app", "main"))
    assert defined == {(spec.module, spec.attribute) for spec in COMMANDS.values()}


def test_the_help_lists_every_command_without_importing_one() -> None:
    done, loaded = probe(["--help"])

    assert done.returncode == 0, done.stderr
    assert not loaded & set(COMMAND_MODULES), loaded & set(COMMAND_MODULES)
    assert not heavy_in(loaded), heavy_in(loaded)
    listed = done.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(COMMANDS)


def test_the_help_reads_the_same_with_every_command_loaded() -> None:
    code = (
        "import click\n"
        "from imgsync.cli import main\n"
        "ctx = click.Context(main, info_name='imgsync', terminal_width=80)\n"
        "lazy = main.get_help(ctx)\n"
        "for name in main.list_commands(ctx):\n"
        "    main.get_command(ctx, name)\n"
        "assert main.get_help(ctx) == lazy, (lazy, main.get_help(ctx))\n"
        "print(lazy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    assert "  sync      Upload the images the notes at PATHS refer to, and rewrite..." in (
        done.stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("command", "module"),
    [("sync", "imgsync.cli.sync"), ("upload", "imgsync.cli.upload"), ("ls", "imgsync.cli.manage")],
)
def test_a_command_imports_its_own_module_only(command: str, module: str) -> None:
    done, loaded = probe([command, "--help"])

    assert done.returncode == 0, done.stderr
    assert module in loaded
    others = set(COMMAND_MODULES) - {module}
    assert not loaded & others, loaded & others
    for heavy in ("requests", "mistune", "watchdog", "imgsync.emulator"):
        assert heavy not in loaded


def test_an_unknown_command_is_refused_with_a_suggestion() -> None:
    done, loaded = probe(["snyc", "x"])

    assert "Error: No such command 'snyc'. Did you mean 'sync'?" in done.stderr
    assert not loaded & set(COMMAND_MODULES)


def test_shell_completion_of_a_command_name_imports_no_command() -> None:
    done, loaded = probe(
        [], _IMGSYNC_COMPLETE="zsh_complete", COMP_WORDS="imgsync m", COMP_CWORD="1"
    )

    assert done.stdout.splitlines() == [
        "plain",
        "migrate",
        "Have the service fetch images by URL onto...",
        "plain",
        "mkdir",
        "Make folders on the image bed, with every...",
        "plain",
        "mv",
        "Move files and folders, by ID, into an...",
    ]
    assert not loaded & set(COMMAND_MODULES), loaded & set(COMMAND_MODULES)


def test_shell_completion_goes_on_into_a_lazy_command() -> None:
    done, loaded = probe(
        [], _IMGSYNC_COMPLETE="bash_complete", COMP_WORDS="imgsync cache st", COMP_CWORD="2"
    )

    assert done.stdout.splitlines() == ["plain,stats"]
    assert "imgsync.cli.cache" in loaded


def test_the_version_is_the_installed_one_and_costs_no_metadata_lookup() -> None:
    from importlib.metadata import version

    done, loaded = probe(["--version"])

    assert done.stdout == f"imgsync, version {version('imgsync')}\n"
    assert "importlib.metadata" not in loaded
    assert not heavy_in(loaded), heavy_in(loaded)
