"""The ``imgsync`` command line: the only layer that prints, and the only one that starts the
emulator.

Each command lives in a module of its own; the group (:data:`main`) knows every command by name
and one-line help (:mod:`imgsync.cli.commands`) and imports a command's module only when that
command is used. Commands import their jobs inside the function too: ``imgsync upload`` runs on
every paste in an editor, and ``imgsync sync`` of an unchanged vault should cost little more than
a walk of it, so start-up must stay small.

The cyclic garbage collector is paused while the command line's modules load (click, logging,
the group: about 20,000 objects), and what they made is then frozen (:func:`gc.freeze`) before it
runs again. Loading modules makes objects that live as long as the process and almost no garbage,
yet the collector counted them as young ones: 17 collections, and each of the later ones walked
all of them again, about 3.5 ms of every command (a no-op ``imgsync sync`` of 10,000 notes spent
7 ms in the collector in all). Frozen, they are never walked again, in a one-shot command or in a
``watch`` or ``serve`` that runs for days; the price is that the few reference cycles the imports
left as garbage are never freed (a few kilobytes, once). What the command does afterwards is
collected as before: its own garbage is young, and the collector runs as usual.
"""

from __future__ import annotations

import gc

_COLLECTING = gc.isenabled()  # as the importer had it (a test run, an embedding program)
gc.disable()
try:
    from imgsync.cli.app import main
finally:
    gc.freeze()
    if _COLLECTING:
        gc.enable()

__all__ = ["main"]
