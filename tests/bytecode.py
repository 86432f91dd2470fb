"""Bytecode every test process would compile alike, written once by the controller before the
workers start.

Each pytest-xdist worker imports every test module, and pytest rewrites a test module's asserts
before it runs (parse, rewrite, compile: about 4 s of CPU for this suite's ~100 test modules and
conftests). pytest caches the result in the module's ``__pycache__``, but not where
PYTHONDONTWRITEBYTECODE is set (as on CI's machines and this project's): there each of the four
workers paid those 4 s, and each worker and imgsync subprocess compiled imgsync again (an
editable install has no bytecode of its own).

So the controller writes both once: imgsync's bytecode with :mod:`compileall`, the test modules'
rewritten code with pytest's own rewriter, one process per core (a file still current from an
earlier run is kept). A worker finds a rewritten file whose recorded source hash matches the
module's (pytest checks it) and loads it instead of rewriting. The rewriter's helpers are pytest
internals: where they differ (another pytest), nothing is written and every worker rewrites as
before. Only the suite's speed depends on this.

Reading that code back is quicker too (:func:`read_pycs_whole`): pytest loads each rewritten module
with ``marshal.load`` on the open file, which reads it a piece at a time; reading the file whole
and then ``marshal.loads`` gives the same code object in an eighth of the time (0.21 s -> 0.03 s
for the suite's 98 test modules; collection in one process fell from 2.28-2.40 s to 2.01-2.07 s,
and every worker and the controller, which checks each module's code first, load them).

Run as a script (``python tests/bytecode.py [--pass-hook] FILE...``) it rewrites the files given:
that is how the controller's other processes are started.
"""

from __future__ import annotations

import compileall
import marshal
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import BinaryIO


class _WholeFileMarshal:
    """:mod:`marshal` as pytest's ``_read_pyc`` uses it, except that :meth:`load` reads the rest
    of the file at once."""

    def __getattr__(self, name: str) -> object:
        return getattr(marshal, name)

    @staticmethod
    def load(file: BinaryIO) -> object:
        return marshal.loads(file.read())


def read_pycs_whole() -> bool:
    """Have pytest read its rewritten modules whole (see the module's docstring); False where its
    rewriter does not use :mod:`marshal` as this expects (another pytest): nothing is changed."""
    try:
        from _pytest.assertion import rewrite as rewriter
    except ImportError:
        return False
    if getattr(rewriter, "marshal", None) is not marshal:
        return isinstance(getattr(rewriter, "marshal", None), _WholeFileMarshal)
    rewriter.marshal = _WholeFileMarshal()  # type: ignore[assignment]
    return True


def precompile(package: Path, tests: Path, *, pass_hook: bool, processes: int) -> None:
    """Compile ``package`` and write the rewritten code of every test module under ``tests``
    whose cached one is missing or out of date, split over ``processes`` processes (this one
    included)."""
    compileall.compile_dir(package, quiet=1)
    try:
        from _pytest.assertion.rewrite import PYC_TAIL, _read_pyc, get_cache_dir
    except ImportError:  # another pytest: the workers rewrite the modules themselves
        return
    stale = []
    for path in sorted(tests.rglob("*.py")):
        if path.name == "conftest.py" or path.name.startswith("test_"):
            source = path.resolve()
            if _read_pyc(source, get_cache_dir(source) / (source.name[:-3] + PYC_TAIL)) is None:
                stale.append(str(source))
    # Interleaved, so each process gets big and small modules alike.
    shares = [stale[n::processes] for n in range(max(processes, 1))]
    others = [
        subprocess.Popen(
            [sys.executable, __file__, *(["--pass-hook"] if pass_hook else []), *share],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for share in shares[1:]
        if share
    ]
    try:
        rewrite(shares[0], pass_hook=pass_hook)
    finally:
        for process in others:
            process.wait()


def rewrite(files: list[str], *, pass_hook: bool) -> None:
    """Write pytest's rewritten code of each of ``files`` where pytest looks for it first."""
    try:
        from _pytest.assertion.rewrite import PYC_TAIL, _rewrite_test, _write_pyc, get_cache_dir
    except ImportError:  # another pytest: the workers rewrite the modules themselves
        return
    config = SimpleNamespace(getini=lambda name: pass_hook)  # the one setting the rewrite reads
    state = SimpleNamespace(trace=lambda message: None)
    for name in files:
        source = Path(name)
        try:
            source_hash, code = _rewrite_test(source, config)  # type: ignore[arg-type]
            cache_dir = get_cache_dir(source)
            os.makedirs(cache_dir, exist_ok=True)
            _write_pyc(state, code, source_hash, cache_dir / (source.name[:-3] + PYC_TAIL))  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a file not written is rewritten by each worker instead
            continue


if __name__ == "__main__":
    arguments = sys.argv[1:]
    hook = "--pass-hook" in arguments
    rewrite([a for a in arguments if a != "--pass-hook"], pass_hook=hook)
