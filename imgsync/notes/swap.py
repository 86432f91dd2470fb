"""Swap two files' names in one atomic step: Linux ``renameat2(RENAME_EXCHANGE)``.

A plain ``os.replace`` of a rewritten note destroys whatever the note's name held at that instant:
a save the user made after imgsync's last look is lost. Exchanging the names instead keeps that
file, under the temporary name, where it can be examined and swapped back (see
:func:`imgsync.notes.notefile.write_note`).

The call exists on Linux 3.15+ with glibc 2.28+, on most local filesystems (ext4, xfs, btrfs,
tmpfs, f2fs); some refuse it (older NFS, some FUSE filesystems). Where it is missing or refused,
:func:`exchange` says so by returning False and nothing has happened: the caller falls back to
``os.replace``. It is loaded once, through ctypes, from the C library already in the process.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Callable

__all__ = ["exchange", "exchange_supported"]

#: ``RENAME_EXCHANGE`` of <linux/fs.h>: atomically exchange oldpath and newpath.
RENAME_EXCHANGE = 2
#: ``AT_FDCWD`` of <fcntl.h>: relative paths are taken from the working folder.
AT_FDCWD = -100
#: What the kernel or a filesystem answers when it cannot exchange names (nothing was done).
UNSUPPORTED_ERRNOS = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})

_Renameat2 = Callable[[int, bytes, int, bytes, int], int]
_loaded: list[_Renameat2 | None] = []
_load_lock = threading.Lock()
# Devices whose filesystem refused an exchange: not asked again in this process.
_refused_devices: set[int] = set()


def _renameat2() -> _Renameat2 | None:
    """The C library's ``renameat2``, or None where there is none (not Linux, old glibc)."""
    with _load_lock:
        if not _loaded:
            _loaded.append(_load())
        return _loaded[0]


def _load() -> _Renameat2 | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only where the call can exist

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    path, fd = ctypes.c_char_p, ctypes.c_int
    function.argtypes = [fd, path, fd, path, ctypes.c_uint]
    function.restype = ctypes.c_int

    def call(olddirfd: int, old: bytes, newdirfd: int, new: bytes, flags: int) -> int:
        if function(olddirfd, old, newdirfd, new, flags) == 0:
            return 0
        return ctypes.get_errno() or errno.EIO

    return call


def exchange(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Swap the files named ``first`` and ``second`` (both must exist) in one atomic step.

    Returns True when swapped, False when this system or this filesystem cannot exchange names
    (nothing happened). Raises OSError for any other failure, e.g. FileNotFoundError when one of
    the two is gone (nothing happened either).
    """
    call = _renameat2()
    if call is None:
        return False
    try:
        device = os.stat(first).st_dev
    except OSError:
        device = None
    if device in _refused_devices:
        return False
    code = call(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE)
    if code == 0:
        return True
    if code in UNSUPPORTED_ERRNOS:
        if device is not None:
            _refused_devices.add(device)
        return False
    raise OSError(code, os.strerror(code), os.fspath(second))


def exchange_supported(folder: str | os.PathLike[str]) -> bool:
    """Whether names can be exchanged in ``folder`` (tried on two scratch files made there)."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=folder, prefix=".imgsync-swap-probe-") as scratch:
        first, second = os.path.join(scratch, "a"), os.path.join(scratch, "b")
        for name in (first, second):
            with open(name, "wb"):
                pass
        try:
            return exchange(first, second)
        except OSError:
            return False
