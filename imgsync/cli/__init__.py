"""The ``imgsync`` command line: the only layer that prints, and the only one that starts the
emulator.

Each command lives in a module of its own and registers itself on :data:`main` when imported.
Commands import their jobs inside the function: ``imgsync upload`` runs on every paste in an
editor, so start-up must stay small.
"""

from __future__ import annotations

from imgsync.cli import (  # noqa: F401 - they register
    account,
    cache,
    clip,
    demo,
    emulator,
    hotkey,
    manage,
    serve,
    sync,
    tasks,
    upload,
    watch,
)
from imgsync.cli.app import main

__all__ = ["main"]
