"""The order the suite's tests are handed to pytest-xdist's workers in: slow ones first, spread.

``--dist worksteal`` gives each of the N workers one contiguous slice of the collection at the
start (sizes ``remaining // workers_left``, in worker order) and later moves the tail of a busy
worker's queue to an idle one. A test that runs for seconds at the end of a slice keeps its
worker busy after the others are done; several of them in one slice (as collection order puts
them: the scale and load tests sit side by side) serialise. So each test marked
``@pytest.mark.slow(seconds)`` goes to the front of a slice, the slices' slow work balanced
(longest first, each to the slice with the least so far); the other tests keep their collection
order. The seconds are a rough guide measured on a 2-core machine, not a limit: nothing fails
when a test is faster or slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def slice_sizes(total: int, workers: int) -> list[int]:
    """The sizes of worksteal's first slices of ``total`` tests among ``workers``."""
    sizes = []
    remaining = total
    for done in range(workers):
        size = remaining // (workers - done)
        sizes.append(size)
        remaining -= size
    return sizes


def spread_slow_first(items: Sequence[T], seconds: Sequence[float | None], workers: int) -> list[T]:
    """``items`` reordered so each worker's first slice starts with its share of the slow ones
    (``seconds[i]`` not None), the rest in their order. With one worker: slow ones first."""
    slow = sorted(
        (i for i, s in enumerate(seconds) if s is not None), key=lambda i: -(seconds[i] or 0.0)
    )
    if not slow:
        return list(items)
    rest = [item for item, s in zip(items, seconds, strict=True) if s is None]
    if workers < 2:
        return [items[i] for i in slow] + rest
    sizes = slice_sizes(len(items), workers)
    loads = [0.0] * workers
    heads: list[list[T]] = [[] for _ in range(workers)]
    for i in slow:
        # The slice with the least slow work that still has room for one more.
        open_slices = [w for w in range(workers) if len(heads[w]) < sizes[w]]
        target = min(open_slices, key=lambda w: (loads[w], w))
        heads[target].append(items[i])
        loads[target] += seconds[i] or 0.0
    ordered: list[T] = []
    fill = iter(rest)
    for head, size in zip(heads, sizes, strict=True):
        ordered += head
        ordered += [next(fill) for _ in range(size - len(head))]
    return ordered
