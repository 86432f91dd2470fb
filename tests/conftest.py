"""Fixtures shared by the folders that run against the emulator (client, upload, sync): one
in-process emulator for the session, reset before each test, and settings pointed at it.

The emulator's own tests (tests/emulator) start theirs with its defaults and speak to it by plain
HTTP; they use none of these fixtures.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import imgsync
from imgsync.config import Settings, load_settings
from imgsync.emulator import Emulator
from imgsync.engine import transfer

from .bytecode import precompile, read_pycs_whole
from .schedule import spread_slow_first
from .support import CLIENT_ID, CLIENT_SECRET, Control, write_config
from .temproot import use_memory_temp

# Before the test modules are collected: they load quicker (tests/bytecode.py).
read_pycs_whole()


def pytest_configure(config: pytest.Config) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        # Before the first temporary folder and the workers' start (tests/temproot.py).
        use_memory_temp()
        # Written once before the workers start instead of by each (tests/bytecode.py).
        precompile(
            Path(imgsync.__file__).parent,
            Path(__file__).parent,
            pass_hook=bool(config.getini("enable_assertion_pass_hook")),
            processes=_cores(),
        )
    config.addinivalue_line(
        "markers",
        "slow(seconds): runs for seconds (a rough figure); started first, spread over the workers",
    )
    config.addinivalue_line(
        "markers", "real_poll_spacing: polls at the reference's 1 s (see short_poll_spacing)"
    )


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: five workers per two cores. Much of the suite waits (poll spacing, rate
    limits, subprocesses, the watcher's quiet periods) rather than computes; the other workers
    run meanwhile. On 2 cores, paired full runs took 68.9-69.9 s with five workers against
    74.8-75.1 s with four (the fifth costs ~4 % more CPU, its start-up)."""
    return max(1, 5 * _cores() // 2)


def _cores() -> int:
    """The cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, spread over the workers' first slices (tests/schedule.py)."""
    seconds = []
    for item in items:
        mark = item.get_closest_marker("slow")
        seconds.append(None if mark is None else float(mark.args[0] if mark.args else 1.0))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    items[:] = spread_slow_first(items, seconds, workers)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection made (about 2,000 test items, their fixtures' definitions, the modules)
    lives as long as the process: frozen (:func:`gc.freeze`), the garbage collector's full passes
    during the run no longer walk it each time."""
    gc.freeze()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as emu:
        yield emu


@pytest.fixture
def control(emulator: Emulator) -> Iterator[Control]:
    """A freshly reset emulator's control plane; its connection closed after the test, so the
    emulator's thread serving it ends then."""
    ctl = Control(emulator.base_url)
    ctl.reset()
    yield ctl
    ctl.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config_writer() -> Callable[..., Path]:
    """How this folder writes a config file (``support.write_config``); a folder whose configs
    start from other values overrides it."""
    return write_config


@pytest.fixture
def config_path(config_writer: Callable[..., Path], control: Control, tmp_path: Path) -> Path:
    return config_writer(tmp_path / "config.toml", control.base_url)


@pytest.fixture
def make_settings(
    config_writer: Callable[..., Path], control: Control, tmp_path: Path, data_dir: Path
) -> Callable[..., Settings]:
    """``make_settings(upload={...}, network={...}, qps={...})`` → Settings for the emulator, read
    from a config file as users give them."""

    def make(**sections: Any) -> Settings:
        path = config_writer(tmp_path / "config.toml", control.base_url, **sections)
        return load_settings(path, environ={"IMGSYNC_DATA_DIR": str(data_dir)})

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(autouse=True)
def short_poll_spacing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Completion and task-progress polls 50 ms apart instead of the reference's 1 s, in this
    process: a test that only needs an upload or a migration to finish does not wait seconds for
    it. The tests of the spacing itself are marked ``real_poll_spacing``; imgsync subprocesses
    always poll at 1 s."""
    if request.node.get_closest_marker("real_poll_spacing") is None:
        monkeypatch.setattr(transfer, "POLL_INTERVAL_S", 0.05)
