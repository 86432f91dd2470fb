"""Records: classes of named fields, made as ``@dataclass`` makes them, without its cost at start.

``@dataclass`` writes each class's methods as source text and compiles them when the module is
imported, at every start of the program, after working through each field's annotation: the nine
settings classes of :mod:`imgsync.config` cost about 7.5 ms to import that way, and the index's
and the sync report's records several milliseconds more, some 13 ms of the 233 ms of a no-op
``imgsync sync`` of 10,000 notes (which should cost little more than walking them), and of every
``imgsync upload`` an editor runs on a paste. :func:`record` makes the same class from the same
body with nothing compiled at start: it reads the annotations and defaults as they are (no type is
looked at); equality, hash, repr and immutability are functions written once below, bound to each
class's field names; ``__init__`` is one written once too (a record's fields go into its
``__dict__`` at once), except for a record with slots, whose own is compiled the first time one is
made.

What a record does is what ``@dataclass`` with the same options makes (``tests/test_records.py``
checks every record of the package against a dataclass twin): the same ``__init__`` signature,
defaults and factories, ``__post_init__``, and the same errors for wrong arguments; equal to a
record of the same class whose compared fields are equal; hashed by those fields when frozen,
unhashable when not; shown as ``Name(field=value, ...)`` without the fields marked
``repr=False``; a frozen record raises :class:`dataclasses.FrozenInstanceError` on assignment;
``slots=True`` gives ``__slots__``. ``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` work on records: the first of them to ask builds the class's dataclass fields
(``__dataclass_fields__``) from a twin, once. In the package, :func:`replace` and
:func:`record_fields` do the same without loading :mod:`dataclasses`.

Only what the package's records use is supported; a record that needs more (inheriting fields
from another record, ``ClassVar``, ``InitVar``, ``kw_only``, ordering, frozen with slots) is
refused with a TypeError at import, and should be a dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["MISSING", "Field", "field", "record", "record_fields", "replace"]

_T = TypeVar("_T", bound=type)
_R = TypeVar("_R")

# What a record's annotation may not name (see the module docstring).
_UNSUPPORTED_ANNOTATIONS = ("ClassVar", "InitVar", "KW_ONLY")


class _Missing:
    """No default (as ``dataclasses.MISSING``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Factory:
    """The default an ``__init__`` parameter shows when its field has a ``default_factory``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY: Any = _Factory()

# A field whose value is still to be made by its factory, in a generic ``__init__``.
_FACTORY_MARK: Any = object()


class Field:
    """One field of a record: its name, its default or default factory, and whether the repr
    shows it and equality (and the hash) compares it."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(
        self,
        *,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | Any = MISSING,
        repr: bool = True,
        compare: bool = True,
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare

    def __repr__(self) -> str:
        return (
            f"Field(name={self.name!r}, default={self.default!r}, "
            f"default_factory={self.default_factory!r}, repr={self.repr}, "
            f"compare={self.compare})"
        )


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | Any = MISSING,
    repr: bool = True,
    compare: bool = True,
) -> Any:
    """A field with options, as :func:`dataclasses.field` spells them (for a record)."""
    return Field(default=default, default_factory=default_factory, repr=repr, compare=compare)


@overload
def record(cls: _T, /) -> _T: ...


@overload
def record(*, frozen: bool = False, slots: bool = False) -> Callable[[_T], _T]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: Any = None, /, *, frozen: bool = False, slots: bool = False) -> Any:
    """Make ``cls`` a record: what ``@dataclass(frozen=frozen, slots=slots)`` would make of it."""

    def wrap(cls: type) -> type:
        return _make_record(cls, frozen=frozen, slots=slots)

    return wrap if cls is None else wrap(cls)


def record_fields(cls_or_record: Any) -> tuple[Field, ...]:
    """The fields of a record class (or of a record), in order."""
    return cls_or_record.__record_fields__  # type: ignore[no-any-return]


def replace(obj: _R, /, **changes: Any) -> _R:
    """A copy of the record ``obj`` with ``changes``, as :func:`dataclasses.replace` makes it
    (through ``__init__``: its checks run, and factories are not called again)."""
    for f in obj.__record_fields__:  # type: ignore[attr-defined]
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


# -- making a record ------------------------------------------------------------------------------


def _make_record(cls: type, *, frozen: bool, slots: bool) -> type:
    for base in cls.__mro__[1:]:
        if "__record_fields__" in base.__dict__:
            raise TypeError(f"{cls.__qualname__}: a record cannot derive from a record")
    if frozen and slots:
        raise TypeError(f"{cls.__qualname__}: frozen records with slots are not supported")
    fields = _read_fields(cls)
    names = tuple(f.name for f in fields)
    if slots:
        cls = _with_slots(cls, names)
    else:
        for f in fields:  # as a dataclass leaves them: a plain default stays a class attribute
            if f.default is MISSING:
                if f.name in cls.__dict__:
                    delattr(cls, f.name)
            else:
                setattr(cls, f.name, f.default)
    cls.__record_fields__ = fields  # type: ignore[attr-defined]
    cls.__match_args__ = names  # type: ignore[attr-defined]
    cls.__dataclass_fields__ = _DataclassFields()  # type: ignore[attr-defined]
    if "__signature__" not in cls.__dict__:
        cls.__signature__ = _Signature()  # type: ignore[attr-defined]
    compared = _getter(tuple(f.name for f in fields if f.compare))
    shown = tuple(f.name for f in fields if f.repr)
    methods: dict[str, Any] = {
        "__init__": (
            _compiled_on_first_use(cls, fields, frozen=frozen)
            if slots or _set_otherwise(cls, names, frozen=frozen)
            else _init(cls, fields)
        ),
        "__repr__": _repr(shown),
        "__eq__": _eq(compared),
    }
    for name, method in methods.items():
        if name not in cls.__dict__:
            method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
    explicit_hash = "__hash__" in cls.__dict__ and not (
        cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__
    )
    if not explicit_hash:
        # As @dataclass: a frozen record hashes its compared fields; a mutable one, whose equal
        # records may change, has no hash.
        cls.__hash__ = _hash(compared) if frozen else None  # type: ignore[assignment]
    if frozen:
        for name, method in (("__setattr__", _frozen_setattr), ("__delattr__", _frozen_delattr)):
            if name in cls.__dict__:
                raise TypeError(f"cannot overwrite attribute {name} in class {cls.__name__}")
            setattr(cls, name, method(cls, frozenset(names)))
    return cls


def _set_otherwise(cls: type, names: tuple[str, ...], *, frozen: bool) -> bool:
    """Whether assigning a field would do more than put it in the ``__dict__``: a descriptor of
    that name in a base class, or a mutable record's own ``__setattr__``."""
    if not frozen and cls.__setattr__ is not object.__setattr__:  # type: ignore[comparison-overlap]
        return True
    return any(hasattr(type(getattr(cls, name, None)), "__set__") for name in names)


def _read_fields(cls: type) -> tuple[Field, ...]:
    """The fields the class body declares, in order, checked as ``@dataclass`` checks them."""
    fields: list[Field] = []
    seen_default = False
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if any(word in str(annotation) for word in _UNSUPPORTED_ANNOTATIONS):
            raise TypeError(f"{cls.__qualname__}.{name}: {annotation} is not supported by records")
        if name == "self":
            raise TypeError(f"{cls.__qualname__}: a field may not be called self")
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        if f.default is not MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(
                f"mutable default {type(f.default)} for field {name} is not allowed: use "
                "default_factory"
            )
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        seen_default = seen_default or has_default
        fields.append(f)
    return tuple(fields)


def _with_slots(cls: type, names: tuple[str, ...]) -> type:
    """The class made again with ``__slots__`` (a class's slots are fixed when it is made)."""
    namespace = dict(cls.__dict__)
    for name in (*names, "__dict__", "__weakref__"):
        namespace.pop(name, None)
    namespace["__slots__"] = names
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _init(cls: type, fields: tuple[Field, ...]) -> Callable[..., None]:
    """The ``__init__`` ``@dataclass`` would write, as a closure over the class's field names (its
    code compiled with the package, not at every start), for a record whose fields live in its
    ``__dict__`` and are set by no descriptor or ``__setattr__`` (a frozen record's own is
    bypassed, as ``@dataclass`` bypasses it): the record's ``__dict__`` is made in one piece.

    It costs about 1 µs more per record than a compiled one (3 µs against 2 for a note stamp made
    from six values): some 10 ms of the seconds a first sync of 10,000 notes takes, against 0.2 ms
    of compiling per class at every start.
    """
    names = tuple(f.name for f in fields)
    count = len(names)
    # Each field's value before the arguments: its default, a factory's mark, or MISSING.
    template = {
        f.name: f.default if f.default_factory is MISSING else _FACTORY_MARK for f in fields
    }
    required = tuple(f.name for f in fields if template[f.name] is MISSING)
    factories = tuple(
        (f.name, f.default_factory) for f in fields if f.default_factory is not MISSING
    )
    post_init = hasattr(cls, "__post_init__")
    set_attribute = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        values = template.copy()
        if args:
            if len(args) > count:
                raise _arguments_error(cls, names, args, kwargs)
            values.update(zip(names, args, strict=False))  # fewer args than fields
            if kwargs and not kwargs.keys().isdisjoint(names[: len(args)]):
                raise _arguments_error(cls, names, args, kwargs)
        values.update(kwargs)
        if len(values) != count:  # a keyword that is no field
            raise _arguments_error(cls, names, args, kwargs)
        if len(args) < len(required):
            for name in required:
                if values[name] is MISSING:
                    raise _arguments_error(cls, names, args, kwargs)
        for name, factory in factories:
            if values[name] is _FACTORY_MARK:
                values[name] = factory()
        set_attribute(self, "__dict__", values)
        if post_init:
            self.__post_init__()

    return __init__


def _compiled_on_first_use(
    cls: type, fields: tuple[Field, ...], *, frozen: bool
) -> Callable[..., None]:
    """An ``__init__`` that compiles the record's own (:func:`_compiled_init`) the first time a
    record of the class is made, and is replaced by it: a run that makes none (a no-op sync
    makes no note's outcome) does not pay for the compiling."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        compiled = _compiled_init(cls, fields, frozen=frozen)
        compiled.__qualname__ = f"{cls.__qualname__}.__init__"
        type.__setattr__(cls, "__init__", compiled)  # two threads at once: both compile, alike
        compiled(self, *args, **kwargs)

    return __init__


def _compiled_init(cls: type, fields: tuple[Field, ...], *, frozen: bool) -> Callable[..., None]:
    """The ``__init__`` ``@dataclass`` would write, compiled as it compiles it (about 0.2 ms a
    class), for a record with slots (its fields are no ``__dict__``), or whose fields are set
    through a descriptor or its own ``__setattr__``: per record made, it is faster than the
    generic one of :func:`_init` can be without a ``__dict__`` to fill at once."""
    params, body = [], []
    helpers: dict[str, Any] = {"__record_factory__": _FACTORY, "__record_set__": object.__setattr__}
    for n, f in enumerate(fields):
        value = f.name
        if f.default_factory is not MISSING:
            helpers[f"__record_f{n}__"] = f.default_factory
            params.append(f"{f.name}=__record_factory__")
            value = f"__record_f{n}__() if {f.name} is __record_factory__ else {f.name}"
        elif f.default is not MISSING:
            helpers[f"__record_d{n}__"] = f.default
            params.append(f"{f.name}=__record_d{n}__")
        else:
            params.append(f.name)
        body.append(
            f"__record_set__(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}"
        )
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n " + ("\n ".join(body) or "pass")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), helpers, namespace)
    return namespace["__init__"]  # type: ignore[no-any-return]


def _arguments_error(
    cls: type, names: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> TypeError:
    """The TypeError Python gives a compiled ``__init__`` called with these arguments."""
    where = f"{cls.__qualname__}.__init__()"
    fields = cls.__record_fields__  # type: ignore[attr-defined]
    if len(args) > len(names):  # counting ``self``, as Python does
        least = 1 + sum(f.default is MISSING and f.default_factory is MISSING for f in fields)
        most = len(names) + 1
        takes = f"from {least} to {most}" if least < most else f"{most}"
        return TypeError(
            f"{where} takes {takes} positional arguments but {len(args) + 1} were given"
        )
    for name in names[: len(args)]:
        if name in kwargs:
            return TypeError(f"{where} got multiple values for argument {name!r}")
    for name in kwargs:
        if name not in names:
            return TypeError(f"{where} got an unexpected keyword argument {name!r}")
    missing = [
        f"{f.name!r}"
        for f in fields[len(args) :]
        if f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING
    ]
    if len(missing) == 1:
        listed = missing[0]
    elif len(missing) == 2:  # Python says "'a' and 'b'", "'a', 'b', and 'c'"
        listed = " and ".join(missing)
    else:
        listed = f"{', '.join(missing[:-1])}, and {missing[-1]}"
    plural = "argument" if len(missing) == 1 else "arguments"
    return TypeError(f"{where} missing {len(missing)} required positional {plural}: {listed}")


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of ``names`` of a record, as a tuple."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda record: (get(record),)
    return lambda _record: ()


def _eq(compared: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, object], Any]:
    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    return __eq__


def _hash(compared: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(compared(self))

    return __hash__


def _repr(shown: tuple[str, ...]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    return __repr__


def _frozen_setattr(cls: type, names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    return __setattr__


def _frozen_delattr(cls: type, names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __delattr__


class _DataclassFields:
    """A record's ``__dataclass_fields__``, made on first use from a dataclass twin (the same
    annotations and defaults, decorated by :mod:`dataclasses` itself), so that the functions of
    :mod:`dataclasses` take a record as they take a dataclass; replaced by what it makes."""

    def __get__(self, instance: Any, owner: type) -> dict[str, Any]:
        import dataclasses

        annotations = owner.__dict__.get("__annotations__", {})
        namespace: dict[str, Any] = {
            "__annotations__": {},
            "__module__": owner.__module__,
            "__qualname__": owner.__qualname__,
        }
        for f in owner.__record_fields__:  # type: ignore[attr-defined]
            namespace["__annotations__"][f.name] = annotations[f.name]
            namespace[f.name] = dataclasses.field(
                default=dataclasses.MISSING if f.default is MISSING else f.default,
                default_factory=(
                    dataclasses.MISSING if f.default_factory is MISSING else f.default_factory
                ),
                repr=f.repr,
                compare=f.compare,
            )
        twin = dataclasses.dataclass(init=False, repr=False, eq=False)(
            type(owner.__name__, (), namespace)
        )
        made: dict[str, Any] = twin.__dataclass_fields__  # type: ignore[attr-defined]
        type.__setattr__(owner, "__dataclass_fields__", made)
        return made


class _Signature:
    """A record's ``__signature__``, made on first use: what :func:`inspect.signature` shows of
    the class (``__init__``'s parameters, not the ``*args, **kwargs`` of a generic one)."""

    def __get__(self, instance: Any, owner: type) -> Any:
        import inspect

        annotations = owner.__dict__.get("__annotations__", {})
        parameters = [
            inspect.Parameter(
                f.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=(
                    _FACTORY
                    if f.default_factory is not MISSING
                    else inspect.Parameter.empty
                    if f.default is MISSING
                    else f.default
                ),
                annotation=annotations[f.name],
            )
            for f in owner.__record_fields__  # type: ignore[attr-defined]
        ]
        made = inspect.Signature(parameters, return_annotation=None)
        type.__setattr__(owner, "__signature__", made)
        return made
