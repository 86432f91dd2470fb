"""Where the suite's temporary folders live: in memory when the machine has room for them.

Every test works in real files in temporary folders (``tmp_path``, the subprocesses' ``TMPDIR``).
On a disk, the notes' safe writes and the index's commits make the suite wait on ``fsync`` and
spend seconds of system time; a tmpfs is the same kind of file system to every test (real files,
real renames, locks, modes, symlinks and inotify events) without the disk. ``/dev/shm`` is used
when it is a tmpfs this user can write and execute in, with room to spare; otherwise, or when the
caller chose a ``TMPDIR``, nothing changes.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

SHM = Path("/dev/shm")
# The suite peaks at about 40 MB (sampled over a whole run); a small tmpfs (a container's 64 MB
# default) is left alone.
MIN_FREE_BYTES = 1 << 30


def _mount_options(mount_point: Path) -> list[str] | None:
    """The options of the file system mounted at ``mount_point`` if it is a tmpfs, else None."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) >= 4 and fields[1] == str(mount_point) and fields[2] == "tmpfs":
                    return fields[3].split(",")
    except OSError:
        pass
    return None


def memory_temp_root(
    shm: Path = SHM, min_free: int = MIN_FREE_BYTES, name: str = f"imgsync-tests-{os.getuid()}"
) -> Path | None:
    """A private folder ``name`` (0700, this user's) in the tmpfs at ``shm``, made if need be;
    None when the tmpfs is missing, mounted noexec or read-only, or short of room."""
    options = _mount_options(shm)
    if options is None or "noexec" in options or "ro" in options:
        return None
    try:
        free = os.statvfs(shm)
    except OSError:
        return None
    if free.f_bavail * free.f_frsize < min_free:
        return None
    root = shm / name
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError:
        return None
    # /dev/shm is shared: use the folder only if it is ours and private, not a planted link.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return root


def use_memory_temp(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Point this process's temporary folders, and those of the processes it starts (the test
    workers, imgsync subprocesses), at :func:`memory_temp_root`; the folder used, or None."""
    if environ.get("TMPDIR"):
        return None
    root = memory_temp_root()
    if root is not None:
        environ["TMPDIR"] = str(root)
        tempfile.tempdir = str(root)
    return root
