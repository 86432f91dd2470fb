"""``imgsync hotkey``: run the clip flow whenever the global key chord is pressed.

Each press takes what the clipboard holds at once; the clips then run one at a time by a single
worker, so two uploads never run at once and every press gets its own clip, in order: pressing
twice quickly uploads twice (the second is usually answered by the cache). The result of each
press is told with a desktop notification where the desktop has one, else through ``fallback``
(the command line prints it on stderr).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imgsync.desktop.hotkeys import HotkeyListener
from imgsync.desktop.notify import Notifier
from imgsync.errors import ImgsyncError
from imgsync.jobs.clip import ClipResult, Upload

if TYPE_CHECKING:
    from imgsync.config import Settings
    from imgsync.desktop.clipboard import Clipboard, ClipContent

log = logging.getLogger(__name__)

# Presses waiting while a clip runs. A clip takes well under a second when cached and seconds
# when uploading; more waiting presses than this are a stuck key or a stuck upload, and are
# dropped (and said so) rather than queued without end.
MAX_PENDING_PRESSES = 8
TITLE_DONE = "imgsync: link copied"
TITLE_FAILED = "imgsync: clip failed"
_STOP = object()


@dataclass(frozen=True)
class PressOutcome:
    """What one press did: the clip's result, or the error that stopped it."""

    press: int
    result: ClipResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the press produced links for everything it found."""
        return self.error is None and self.result is not None and self.result.ok

    def message(self) -> tuple[str, str]:
        """(title, text) telling the user what happened."""
        if self.error is not None:
            return TITLE_FAILED, self.error
        assert self.result is not None
        failed = [r for r in self.result.results if not r.linked]
        lines = list(self.result.links)
        lines += [f"{r.input}: {r.why_no_link}" for r in failed]
        return (TITLE_FAILED if failed else TITLE_DONE), "\n".join(lines)


class ClipOnPress:
    """Turns presses (from the listener's thread) into clips run one at a time, in order.

    Two stages, each a thread: the reader takes the clipboard's content as soon as a press is
    made (so the second of two quick presses still finds the image, not the link the first one
    is about to put there), and the worker uploads what each press found, one press at a time.
    """

    def __init__(
        self,
        read: Callable[[], ClipContent],
        run_clip: Callable[[ClipContent], ClipResult],
        notifier: Notifier,
        fallback: Callable[[str, str], None],
        *,
        on_outcome: Callable[[PressOutcome], None] | None = None,
        max_pending: int = MAX_PENDING_PRESSES,
    ) -> None:
        self._read = read
        self._run_clip = run_clip
        self._notifier = notifier
        self._fallback = fallback
        self._on_outcome = on_outcome
        self._max_pending = max_pending
        self._pressed: queue.Queue[object] = queue.Queue(max_pending)
        self._held: queue.Queue[object] = queue.Queue()
        self._stopping = threading.Event()
        self._presses = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_presses, name="imgsync-read", daemon=True)
        self._worker = threading.Thread(target=self._work, name="imgsync-clip", daemon=True)

    def start(self) -> None:
        """Start the reader and the worker."""
        self._reader.start()
        self._worker.start()

    def press(self) -> None:
        """One press of the chord: queue it (never blocks the listener)."""
        with self._lock:
            self._presses += 1
            number = self._presses
        try:
            self._pressed.put_nowait(number)
        except queue.Full:
            log.warning("press %d dropped: %d presses already wait", number, self._max_pending)
            self._tell(PressOutcome(number, error="too many presses waiting; this one was dropped"))

    def stop(self, timeout: float | None = None) -> None:
        """Let the clip in progress finish, drop the presses waiting, stop both threads."""
        self._stopping.set()
        self._pressed.put(_STOP)
        self._reader.join(timeout)
        self._worker.join(timeout)

    def _read_presses(self) -> None:
        while True:
            number = self._pressed.get()
            if number is _STOP or self._stopping.is_set():
                self._held.put(_STOP)
                return
            try:
                content: ClipContent | ImgsyncError = self._read()
            except ImgsyncError as exc:  # the clipboard did not answer, or cannot be used
                content = exc
            self._held.put((number, content))

    def _work(self) -> None:
        while True:
            held = self._held.get()
            if held is _STOP:
                return
            if self._stopping.is_set():
                continue
            number, content = held  # type: ignore[misc]
            log.info("press %d: clip started", number)
            try:
                if isinstance(content, ImgsyncError):
                    raise content
                outcome = PressOutcome(number, result=self._run_clip(content))
            except ImgsyncError as exc:
                outcome = PressOutcome(number, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - one bad press must not end the daemon
                log.debug("press %d failed", number, exc_info=True)
                outcome = PressOutcome(number, error=f"internal error: {type(exc).__name__}: {exc}")
            log.info("press %d: clip finished (%s)", number, "ok" if outcome.ok else "failed")
            self._tell(outcome)

    def _tell(self, outcome: PressOutcome) -> None:
        title, text = outcome.message()
        if not self._notifier.notify(title, text):
            self._fallback(title, text)
        if self._on_outcome is not None:
            self._on_outcome(outcome)


class HotkeyDaemon:
    """A started key listener and its clip worker."""

    def __init__(self, chord: str, listener: HotkeyListener, worker: ClipOnPress) -> None:
        self.chord = chord
        self._listener = listener
        self._worker = worker

    def listening(self) -> bool:
        """Whether the key listener still runs (it ends if the display goes away)."""
        return self._listener.is_alive()

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the listener to end."""
        self._listener.join(timeout)

    def stop(self) -> None:
        """Stop listening; let the clip in progress finish."""
        self._listener.stop()
        self._worker.stop()


def start_hotkey(
    settings: Settings,
    *,
    fallback: Callable[[str, str], None],
    fmt: str | None = None,
    clipboard: Clipboard | None = None,
    upload: Upload | None = None,
    notifier: Notifier | None = None,
    listen: Callable[[str, Callable[[], None]], HotkeyListener] | None = None,
    on_outcome: Callable[[PressOutcome], None] | None = None,
) -> HotkeyDaemon:
    """Start listening for ``hotkey.keys``; each press runs the clip flow (see the module).

    Everything that touches the desktop is checked here, before the first press: the format, the
    clipboard tool, pynput and the chord (:class:`~imgsync.errors.ConfigError`, exit 2).
    """
    from imgsync.desktop import hotkeys
    from imgsync.desktop.clipboard import system_clipboard
    from imgsync.desktop.notify import system_notifier
    from imgsync.jobs.clip import clip, default_upload
    from imgsync.links import validate_format

    fmt = fmt or settings.upload.format
    validate_format(fmt)
    board = clipboard if clipboard is not None else system_clipboard()
    send = upload if upload is not None else default_upload(settings)
    worker = ClipOnPress(
        board.read,
        lambda content: clip(settings, clipboard=board, upload=send, fmt=fmt, content=content),
        notifier if notifier is not None else system_notifier(),
        fallback,
        on_outcome=on_outcome,
    )
    start_listening = listen if listen is not None else hotkeys.listen
    chord = hotkeys.normalize_chord(settings.hotkey.keys)
    listener = start_listening(chord, worker.press)
    worker.start()
    listener.start()
    listener.wait()  # a press right after start-up is not lost
    return HotkeyDaemon(chord, listener, worker)
