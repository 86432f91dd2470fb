"""The settings records compare, hash and show themselves exactly as ``@dataclass(frozen=True)``
would make them (imgsync/records.py writes those methods once instead of compiling them)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from imgsync.config import SECTIONS, Settings, load_settings
from imgsync.jobs.sync import SyncCounts
from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome
from imgsync.records import FrozenRecord, Record
from imgsync.store.attempts import UrlAttempt
from imgsync.store.cache import RemoteObject
from imgsync.store.notestamps import NoteStamp

# A record of each class whose fields have no defaults (the others are built from theirs).
SAMPLES: dict[type, Any] = {
    NoteStamp: NoteStamp(10, 1_000_000_000_000_000_000, 42, "d1", False, 7),
    RemoteObject: RemoteObject("AB" * 16, 5, "f1", "https://a/b.png", "", 2, "b.png", 9),
    UrlAttempt: UrlAttempt("t1", 2, "gone", "failed", 3, 4),
    ImageOutcome: ImageOutcome("a.png", "local", "failed", error="gone", line=3),
    NoteOutcome: NoteOutcome("/v/n.md", changed=True, warnings=["w"], retry_after_ns=5),
}
RECORDS = [*SECTIONS.values(), Settings, NoteStamp, RemoteObject, UrlAttempt]
MUTABLE_RECORDS = [SyncCounts, ImageOutcome, NoteOutcome]


def twin(cls: type, *, frozen: bool = True) -> Any:
    """The same fields made into a plain ``@dataclass(frozen=...)``, named alike."""
    namespace: dict[str, Any] = {"__annotations__": {}, "__qualname__": cls.__qualname__}
    for f in dataclasses.fields(cls):
        namespace["__annotations__"][f.name] = f.type
        namespace[f.name] = dataclasses.field(
            default=f.default,
            default_factory=f.default_factory,
            repr=f.repr,
            compare=f.compare,
            hash=f.hash,
        )
    return dataclasses.dataclass(frozen=frozen)(type(cls.__name__, (), namespace))


def variants(cls: type) -> list[Any]:
    """The defaults, and each field changed in turn (to another value of its kind)."""
    base = SAMPLES[cls] if cls in SAMPLES else cls()
    made = [base]
    for f in dataclasses.fields(cls):
        value = getattr(base, f.name)
        if isinstance(value, bool):
            other: Any = not value
        elif isinstance(value, int | float):
            other = value + 1
        elif isinstance(value, str):
            other = value + "x"
        elif isinstance(value, tuple | list):
            other = type(value)([*value, "x"])
        else:
            continue  # a mapping or a nested record: the defaults cover it
        try:
            made.append(dataclasses.replace(base, **{f.name: other}))
        except ValueError:  # a value the record refuses (RemoteObject's md5)
            continue
    return made


def hashed(record: object) -> object:
    try:
        return hash(record)
    except TypeError as exc:
        return str(exc)


@pytest.mark.parametrize(
    ("cls", "frozen"),
    [*((cls, True) for cls in RECORDS), *((cls, False) for cls in MUTABLE_RECORDS)],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_equality_hash_and_repr_are_the_dataclass_ones(cls: type, frozen: bool) -> None:
    assert issubclass(cls, FrozenRecord if frozen else Record)
    reference, mine = twin(cls, frozen=frozen), variants(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    theirs = [reference(**{name: getattr(v, name) for name in names}) for v in mine]
    for a, ref_a in zip(mine, theirs, strict=True):
        assert repr(a) == repr(ref_a)
        assert hashed(a) == hashed(ref_a)  # a mapping in a field, or a mutable record: unhashable
        for b, ref_b in zip(mine, theirs, strict=True):
            assert (a == b) == (ref_a == ref_b)
            assert (a != b) == (ref_a != ref_b)
        assert a.__eq__(ref_a) is NotImplemented  # another class, even with the same fields
        if frozen:
            with pytest.raises(dataclasses.FrozenInstanceError):
                a.extra = 1  # type: ignore[attr-defined]


def test_secrets_stay_out_of_the_repr_and_warnings_out_of_equality() -> None:
    settings = load_settings(
        None,
        environ={"IMGSYNC_CONFIG": "", "IMGSYNC_CLIENT_SECRET": "s3cret-value"},
        overrides={"account": {"client_id": "me"}},
    )
    assert "s3cret-value" not in repr(settings)
    assert dataclasses.replace(settings, warnings=("other",)) == settings
