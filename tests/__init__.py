"""imgsync's tests. A package, so every folder can share ``tests/support.py``."""
