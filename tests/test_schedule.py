"""The suite's own test order (tests/schedule.py): slow tests open the workers' slices."""

from __future__ import annotations

import pytest

from .schedule import slice_sizes, spread_slow_first


@pytest.mark.parametrize(("total", "workers"), [(10, 4), (2149, 4), (7, 3), (3, 4)])
def test_slices_are_worksteals_even_split(total: int, workers: int) -> None:
    sizes = slice_sizes(total, workers)
    assert sum(sizes) == total and len(sizes) == workers
    assert max(sizes) - min(sizes) <= 1


def test_slow_tests_open_the_slices_balanced_and_the_rest_keep_their_order() -> None:
    items = [f"t{i}" for i in range(40)]
    seconds: list[float | None] = [None] * 40
    for index, length in {3: 18.0, 4: 11.0, 5: 11.0, 20: 8.0, 30: 5.0, 31: 5.0, 39: 4.0}.items():
        seconds[index] = length
    ordered = spread_slow_first(items, seconds, 4)

    assert sorted(ordered) == sorted(items)
    starts = [0, 10, 20, 30]
    heads = []
    for start in starts:
        chunk = ordered[start : start + 10]
        slow = [name for name in chunk if seconds[int(name[1:])] is not None]
        assert chunk[: len(slow)] == slow  # slow ones first in their slice
        heads.append(sum(seconds[int(name[1:])] or 0.0 for name in slow))
    # Longest first, each to the least loaded slice: 18 | 11+5 | 11+4 | 8+5.
    assert heads == [18.0, 16.0, 15.0, 13.0]
    fast = [name for name in ordered if seconds[int(name[1:])] is None]
    assert fast == [name for name, s in zip(items, seconds, strict=True) if s is None]


def test_without_workers_slow_tests_simply_go_first() -> None:
    assert spread_slow_first(["a", "b", "c"], [None, 2.0, None], 1) == ["b", "a", "c"]
    assert spread_slow_first(["a", "b"], [None, None], 4) == ["a", "b"]
