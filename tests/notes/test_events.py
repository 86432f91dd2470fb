"""What the filesystem-events adapter adds to watchdog, apart from the watcher's own tests."""

from __future__ import annotations

import warnings

from imgsync.notes import events

WATCHDOG_INOTIFY = "/site-packages/watchdog/observers/inotify.py"


def test_watchdogs_warning_about_a_folder_watched_twice_is_kept_off_stderr() -> None:
    # A folder made while its parent's watch is set up is added twice; watchdog warns (once seen
    # in the suite, on stderr for a user of `imgsync watch`), though nothing is wrong.
    events._native_observer()
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit(
            "Callback with id '140209163036944' already exists for watch <Watch(wd=7)>. "
            "It will be Overwritten.",
            RuntimeWarning,
            WATCHDOG_INOTIFY,
            365,
            module="watchdog.observers.inotify",
        )
        warnings.warn_explicit(
            "any other warning",
            RuntimeWarning,
            WATCHDOG_INOTIFY,
            366,
            module="watchdog.observers.inotify",
        )
    assert [str(w.message) for w in seen] == ["any other warning"]
