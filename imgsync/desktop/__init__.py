"""The desktop: the clipboard, notifications and global hotkeys.

System side effects at the same layer as ``client`` and ``store``: each is a small adapter with
the real system as default, built by a ``system_*`` function that picks what this machine has, and
replaced by a fake in tests where no real one can exist (Wayland, macOS, Windows).
"""
