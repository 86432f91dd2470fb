"""A faithful local 123pan image-bed (图床) server, for tests, ``imgsync demo`` and trying imgsync
without an account.

It is written from the official API reference on its own and never imports the imgsync client
(architecture rule 11), so a field name misread on one side fails against the other instead of
hiding in both. See docs/emulator.md for what it models, its control plane and its guesses.

    from imgsync.emulator import Emulator

    with Emulator() as emu:          # 127.0.0.1, a free port, in memory, credentials demo/demo
        print(emu.base_url)          # http://127.0.0.1:PORT
"""

from __future__ import annotations

from .lifecycle import Emulator, run_cli

__all__ = ["Emulator", "run_cli"]
