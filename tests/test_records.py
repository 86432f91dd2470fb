"""Every record of the package is what ``@dataclass`` would make of the same class body
(imgsync/records.py makes them without compiling code at every start): the same ``__init__``
signature and argument errors, equality, hash, repr, immutability, slots, and the same answers
from ``dataclasses.fields``, ``replace`` and ``asdict``."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any, ClassVar

import pytest

from imgsync import records
from imgsync.config import SECTIONS, Settings, load_settings
from imgsync.jobs.sync import SyncCounts
from imgsync.jobs.sync_report import ImageOutcome, NoteOutcome
from imgsync.records import field, record
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
FROZEN_RECORDS = [*SECTIONS.values(), Settings, NoteStamp, RemoteObject, UrlAttempt]
MUTABLE_RECORDS = [SyncCounts, ImageOutcome, NoteOutcome]
ALL_RECORDS = [*FROZEN_RECORDS, *MUTABLE_RECORDS]


def name_of(value: object) -> str:
    return value.__name__ if isinstance(value, type) else ""


def twin(cls: type) -> Any:
    """The same fields made into a plain ``@dataclass``, with the record's options, named alike
    (so that Python's own argument errors name it as they name the record)."""
    namespace: dict[str, Any] = {"__annotations__": {}, "__qualname__": cls.__qualname__}
    for f in records.record_fields(cls):
        namespace["__annotations__"][f.name] = cls.__annotations__[f.name]
        namespace[f.name] = dataclasses.field(
            default=dataclasses.MISSING if f.default is records.MISSING else f.default,
            default_factory=(
                dataclasses.MISSING if f.default_factory is records.MISSING else f.default_factory
            ),
            repr=f.repr,
            compare=f.compare,
        )
    if "__post_init__" in cls.__dict__:
        namespace["__post_init__"] = cls.__dict__["__post_init__"]
    return dataclasses.dataclass(frozen=cls in FROZEN_RECORDS, slots="__slots__" in cls.__dict__)(
        type(cls.__name__, (), namespace)
    )


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


def raised(call: Any) -> str:
    with pytest.raises(TypeError) as caught:
        call()
    return str(caught.value)


def outcome(cls: type, args: list[Any], kwargs: dict[str, Any]) -> str:
    """The repr of ``cls(*args, **kwargs)``, or the TypeError it raises."""
    try:
        return repr(cls(*args, **kwargs))
    except TypeError as exc:
        return f"TypeError: {exc}"


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=name_of)
def test_equality_hash_repr_and_immutability_are_the_dataclass_ones(cls: type) -> None:
    reference, mine = twin(cls), variants(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    theirs = [reference(**{name: getattr(v, name) for name in names}) for v in mine]
    for a, ref_a in zip(mine, theirs, strict=True):
        assert repr(a) == repr(ref_a)
        assert hashed(a) == hashed(ref_a)  # a mapping in a field, or a mutable record: unhashable
        for b, ref_b in zip(mine, theirs, strict=True):
            assert (a == b) == (ref_a == ref_b)
            assert (a != b) == (ref_a != ref_b)
        assert a.__eq__(ref_a) is NotImplemented  # another class, even with the same fields
        if cls in FROZEN_RECORDS:
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
                a.extra = 1  # type: ignore[attr-defined]
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field"):
                del a.extra  # type: ignore[attr-defined]
        else:
            setattr(a, names[0], getattr(a, names[0]))


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=name_of)
def test_construction_is_the_dataclass_one(cls: type) -> None:
    reference = twin(cls)
    ours, theirs = inspect.signature(cls), inspect.signature(reference)
    assert [(p.name, p.kind, repr(p.default)) for p in ours.parameters.values()] == [
        (p.name, p.kind, repr(p.default)) for p in theirs.parameters.values()
    ]
    assert cls.__match_args__ == reference.__match_args__  # type: ignore[attr-defined]
    assert ("__slots__" in cls.__dict__) == ("__slots__" in reference.__dict__)
    for f in records.record_fields(cls):  # class attributes, as a dataclass leaves them
        mine, theirs = cls.__dict__.get(f.name, "absent"), reference.__dict__.get(f.name, "absent")
        assert (type(mine), mine if f.name not in cls.__dict__.get("__slots__", ()) else 0) == (
            type(theirs),
            theirs if f.name not in reference.__dict__.get("__slots__", ()) else 0,
        )
    sample = variants(cls)[-1]
    values = [getattr(sample, name) for name in cls.__match_args__]  # type: ignore[attr-defined]
    for args, kwargs in (
        (values, {}),
        ([], dict(zip(cls.__match_args__, values, strict=True))),  # type: ignore[attr-defined]
        (values[:1], dict(zip(cls.__match_args__[1:], values[1:], strict=True))),  # type: ignore[attr-defined]
    ):
        made, expected = cls(*args, **kwargs), reference(*args, **kwargs)
        assert repr(made) == repr(expected)
        if "__slots__" not in cls.__dict__:
            assert list(vars(made).items()) == list(vars(expected).items())
    # Wrong arguments fail as they fail the dataclass (Python's own messages).
    for args, kwargs in (
        ([*values, 1], {}),
        (values, {"no_such_field": 1}),
        (values[:1], {cls.__match_args__[0]: 1}),  # type: ignore[attr-defined]
        ([], {}),
        ([], {"no_such_field": 1}),
    ):
        assert outcome(cls, args, kwargs) == outcome(reference, args, kwargs)


@pytest.mark.parametrize("cls", ALL_RECORDS, ids=name_of)
def test_dataclasses_functions_take_records(cls: type) -> None:
    reference = twin(cls)
    assert dataclasses.is_dataclass(cls)
    mine, theirs = dataclasses.fields(cls), dataclasses.fields(reference)
    assert [
        (f.name, f.type, f.default, f.default_factory, f.repr, f.compare, f.hash, f.init)
        for f in mine
    ] == [
        (f.name, f.type, f.default, f.default_factory, f.repr, f.compare, f.hash, f.init)
        for f in theirs
    ]
    sample = variants(cls)[-1]
    same = reference(**{f.name: getattr(sample, f.name) for f in mine})
    try:
        expected: object = dataclasses.asdict(same)
    except TypeError as exc:  # a mapping proxy (the rate limits) cannot be deep-copied
        expected = str(exc)
    assert (
        raised(lambda: dataclasses.asdict(sample))
        if isinstance(expected, str)
        else dataclasses.asdict(sample)
    ) == expected
    first = mine[0].name
    changed = dataclasses.replace(sample, **{first: getattr(variants(cls)[0], first)})
    assert changed == records.replace(sample, **{first: getattr(variants(cls)[0], first)})
    assert records.replace(sample) == sample and records.replace(sample) is not sample


@pytest.mark.parametrize(
    "cls", [NoteStamp, RemoteObject, UrlAttempt, *MUTABLE_RECORDS], ids=name_of
)
def test_records_survive_pickling(cls: type) -> None:
    for made in variants(cls):
        again = pickle.loads(pickle.dumps(made))
        assert type(again) is cls and repr(again) == repr(made)
        if cls in FROZEN_RECORDS:
            assert again == made


def test_secrets_stay_out_of_the_repr_and_warnings_out_of_equality() -> None:
    settings = load_settings(
        None,
        environ={"IMGSYNC_CONFIG": "", "IMGSYNC_CLIENT_SECRET": "s3cret-value"},
        overrides={"account": {"client_id": "me"}},
    )
    assert "s3cret-value" not in repr(settings)
    assert dataclasses.replace(settings, warnings=("other",)) == settings


def test_factories_make_a_value_per_record_and_post_init_runs() -> None:
    seen: list[str] = []

    @record
    class Basket:
        name: str
        items: list[str] = field(default_factory=list)

        def __post_init__(self) -> None:
            seen.append(self.name)

    one, two = Basket("a"), Basket("b", items=["x"])
    one.items.append("y")
    assert (one.items, two.items, Basket("c").items, seen) == (["y"], ["x"], [], ["a", "b", "c"])


def test_what_a_record_cannot_be_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="mutable default"):

        @record
        class Mutable:
            items: list[str] = []  # noqa: RUF012

    with pytest.raises(TypeError, match="follows default argument"):

        @record
        class Order:
            a: int = 0
            b: int

    with pytest.raises(TypeError, match="not supported"):

        @record
        class Shared:
            count: ClassVar[int] = 0

    @record
    class Base:
        a: int = 0

    with pytest.raises(TypeError, match="cannot derive from a record"):

        @record
        class Derived(Base):
            b: int = 0

    with pytest.raises(TypeError, match="frozen records with slots"):

        @record(frozen=True, slots=True)
        class Both:
            a: int = 0
