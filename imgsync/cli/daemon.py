"""What the long-running commands (``serve``, ``hotkey``) share: they run until Ctrl-C or SIGTERM
and then stop cleanly, with exit status 0 (stopping them is how they are meant to end, as for the
emulator; a service manager sending SIGTERM sees a clean stop)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def until_stopped() -> Iterator[None]:
    """Run the block until SIGINT or SIGTERM; the signal ends it quietly. Once stopped, further
    signals are ignored, so a second Ctrl-C cannot cut the cleanup after the block."""
    if threading.current_thread() is not threading.main_thread():
        with contextlib.suppress(KeyboardInterrupt):
            yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, _interrupt) for signum in signals}
    try:
        yield
    except KeyboardInterrupt:
        for signum in signals:
            signal.signal(signum, signal.SIG_IGN)
        return
    except BaseException:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    for signum, handler in previous.items():
        signal.signal(signum, handler)
