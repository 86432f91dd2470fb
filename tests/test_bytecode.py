"""The suite's own bytecode plumbing (tests/bytecode.py)."""

from __future__ import annotations

import marshal
from pathlib import Path

from _pytest.assertion import rewrite as rewriter

from .bytecode import _WholeFileMarshal, read_pycs_whole


def test_pytest_reads_its_rewritten_modules_whole_in_this_process() -> None:
    assert isinstance(rewriter.marshal, _WholeFileMarshal)
    assert read_pycs_whole()  # asked again: still in place, not wrapped twice
    assert isinstance(rewriter.marshal, _WholeFileMarshal)
    assert rewriter.marshal.dumps is marshal.dumps  # the rest is marshal's own


def test_a_whole_read_gives_the_code_a_piecewise_read_gives(tmp_path: Path) -> None:
    source = Path(__file__)
    code = compile(source.read_text(), str(source), "exec")
    pyc = tmp_path / "module.pyc"
    pyc.write_bytes(b"header16bytes..." + marshal.dumps(code))
    with open(pyc, "rb") as piecewise, open(pyc, "rb") as whole:
        piecewise.read(16)
        whole.read(16)
        assert _WholeFileMarshal.load(whole) == marshal.load(piecewise) == code
