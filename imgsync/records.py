"""The equality, hash and repr of the frozen records every command builds at start, written once.

``@dataclass(frozen=True)`` compiles six methods for each class it makes, at every start of the
program: the nine classes of :mod:`imgsync.config` cost about 11 ms to import, the largest part
of the command line's start after click itself (``imgsync upload`` runs on every paste in an
editor; a no-op ``imgsync sync`` of a vault should cost little more than walking it), and each
record of the index (:mod:`imgsync.store`) about one more. Three of those methods are the same for
every record: a class that derives from :class:`FrozenRecord` and is made with
``@dataclass(frozen=True, eq=False, repr=False)`` gets them from here instead, with what the
dataclass would have generated (``tests/test_records.py`` compares both): imgsync.config then
imports in about 7 ms. The mutable records of a sync's report take two of three from
:class:`Record` the same way.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

__all__ = ["FrozenRecord", "Record"]


class Record:
    """Equal to a record of the same class whose compared fields are equal; unhashable; shown as
    ``Name(field=value, ...)`` without the fields marked ``repr=False``: what ``@dataclass``
    generates. A record made with ``@dataclass(eq=False, repr=False)`` derives from it."""

    __slots__ = ()

    # As @dataclass(eq=True) makes a mutable record: equal records may change, so no hash.
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return _compared(self) == _compared(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}({_shown(self)})"


class FrozenRecord(Record):
    """A :class:`Record` made with ``@dataclass(frozen=True, eq=False, repr=False)``: hashed by
    its compared fields, as ``@dataclass(frozen=True)`` hashes."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(_compared(self))


def _compared(record: Any) -> tuple[Any, ...]:
    """The values of the fields equality and the hash look at, in field order."""
    return tuple(getattr(record, f.name) for f in fields(record) if f.compare)


def _shown(record: Any) -> str:
    """``name=value`` of each field a repr shows, in field order."""
    return ", ".join(f"{f.name}={getattr(record, f.name)!r}" for f in fields(record) if f.repr)
