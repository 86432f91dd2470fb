"""Every ``imgsync`` command: its name, the module and attribute that define it, and the first
paragraph of its help, which ``imgsync --help`` and shell completion shorten into one line.

The group (:mod:`imgsync.cli.lazy`) imports a command's module only when that command is used, so
the help of the listing is written here too; tests/cli/test_lazy_commands.py fails if it drifts
from the command's own docstring, or if a command module defines a command this table lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from imgsync.cli.lazy import LazyCommand

COMMANDS: Mapping[str, LazyCommand] = MappingProxyType(
    {
        "cache": LazyCommand(
            "imgsync.cli.cache",
            "cache",
            "Inspect and repair the local index (md5 -> link) that makes re-runs free.",
        ),
        "clip": LazyCommand(
            "imgsync.cli.clip",
            "clip",
            "Upload the image on the clipboard (or the image paths or URL it holds).",
        ),
        "copy": LazyCommand(
            "imgsync.cli.tasks",
            "copy",
            "Copy images from your 123pan cloud drive (by their drive IDs) onto the image bed.",
        ),
        "demo": LazyCommand(
            "imgsync.cli.demo",
            "demo",
            "Try imgsync on sample notes against a built-in emulator (no account needed).",
        ),
        "emulator": LazyCommand(
            "imgsync.cli.emulator",
            "emulator",
            "Run the local 123pan image-bed emulator.",
        ),
        "hotkey": LazyCommand(
            "imgsync.cli.hotkey",
            "hotkey",
            "Upload the clipboard's image whenever the key chord is pressed, wherever the focus"
            " is.",
        ),
        "info": LazyCommand(
            "imgsync.cli.manage",
            "info",
            "Show everything the image bed says about files or folders, by ID.",
        ),
        "login": LazyCommand(
            "imgsync.cli.account",
            "login",
            "Check the credentials with the service and store the token.",
        ),
        "ls": LazyCommand(
            "imgsync.cli.manage",
            "ls_command",
            "List a folder of the image bed (default: the root): ID, size, review, path, link.",
        ),
        "migrate": LazyCommand(
            "imgsync.cli.tasks",
            "migrate",
            "Have the service fetch images by URL onto the image bed (offline migration).",
        ),
        "mkdir": LazyCommand(
            "imgsync.cli.manage",
            "mkdir",
            "Make folders on the image bed, with every missing level; existing ones are fine.",
        ),
        "mv": LazyCommand(
            "imgsync.cli.manage",
            "mv",
            "Move files and folders, by ID, into an existing folder (100 per request).",
        ),
        "orphans": LazyCommand(
            "imgsync.cli.manage",
            "orphans",
            "List the images in imgsync's image-bed folders that no note below NOTES links to.",
        ),
        "rm": LazyCommand(
            "imgsync.cli.manage",
            "rm",
            "Delete files from the image bed, by ID (100 per request); they leave the local index"
            " too.",
        ),
        "serve": LazyCommand(
            "imgsync.cli.serve",
            "serve",
            "Serve the PicGo upload protocol (POST /upload, /heartbeat) for editors.",
        ),
        "sync": LazyCommand(
            "imgsync.cli.sync",
            "sync",
            "Upload the images the notes at PATHS refer to, and rewrite their links.",
        ),
        "upload": LazyCommand(
            "imgsync.cli.upload",
            "upload",
            "Upload local images or image URLs; print one link per ITEM, in order.",
        ),
        "watch": LazyCommand(
            "imgsync.cli.watch",
            "watch",
            "Keep the notes at PATHS synced: sync them now, then each note again as it changes.",
        ),
    }
)
