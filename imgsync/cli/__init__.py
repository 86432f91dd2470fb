"""The ``imgsync`` command line: the only layer that prints, and the only one that starts the
emulator.

Each command lives in a module of its own; the group (:data:`main`) knows every command by name
and one-line help (:mod:`imgsync.cli.commands`) and imports a command's module only when that
command is used. Commands import their jobs inside the function too: ``imgsync upload`` runs on
every paste in an editor, and ``imgsync sync`` of an unchanged vault should cost little more than
a walk of it, so start-up must stay small.
"""

from __future__ import annotations

from imgsync.cli.app import main

__all__ = ["main"]
