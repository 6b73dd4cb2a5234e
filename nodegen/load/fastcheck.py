"""The checks behind the plain manifest model (`model`): strict types, patterns, bounds, known keys.

They accept a value only where the wire models (`wire`, pydantic in strict mode) accept it and would
build the same object; anything else raises `Reject`, and the loader then asks the wire models, which
decide and word the error. So a check may be stricter than pydantic (a rejected value only costs
the pydantic import), never looser: `tests/load/test_model.py` runs both on every fixture.

Each check is a function of one value returning the value to store; they are composed once, when
`model` is imported, so a manifest is checked by calls only (no interpretation of a schema).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

Check = Callable[[Any], Any]
R = TypeVar("R", bound="Record")


UNSET: Any = object()  # a constructor argument not given


class Reject(Exception):
    """The value is not one the plain model takes; the wire models decide what is wrong."""


def _frozen(self: object, *_: object) -> None:
    raise AttributeError(f"{type(self).__name__} is frozen")


class Record:
    """A frozen manifest object: fields by name, equality and hash over them, and `model_fields_set`
    (the fields the manifest gave), as the wire model it stands for has them."""

    __slots__ = ("model_fields_set",)
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _factories: ClassVar[dict[str, Callable[[], Any]]] = {}
    model_fields_set: set[str]

    __setattr__ = _frozen
    __delattr__ = _frozen

    def _fill(self, values: tuple[Any, ...]) -> None:
        """Store the constructor's arguments in field order; a field not given gets its default."""
        given = set()
        for name, value in zip(self._fields, values, strict=True):
            if value is UNSET:
                factory = self._factories.get(name)
                value = factory() if factory is not None else self._defaults[name]
            else:
                given.add(name)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "model_fields_set", given)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._fields)

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, name) for name in self._fields)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        values = tuple(getattr(self, name) for name in self._fields)
        return _restore, (type(self), values, sorted(self.model_fields_set))

    def model_copy(self: R, *, update: Mapping[str, Any] | None = None) -> R:
        """A copy with some fields replaced (which then count as given), like pydantic's."""
        changes = dict(update or {})
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values = tuple(changes.get(name, getattr(self, name)) for name in self._fields)
        return _restore(type(self), values, [*self.model_fields_set, *changes])


def _restore(cls: type[R], values: tuple[Any, ...], given: list[str]) -> R:
    obj = object.__new__(cls)
    for name, value in zip(cls._fields, values, strict=True):
        object.__setattr__(obj, name, value)
    object.__setattr__(obj, "model_fields_set", set(given))
    return obj


def string(value: Any) -> Any:
    if type(value) is not str:
        raise Reject
    return value


def pattern(regex: str) -> Check:
    """A string the wire model's pattern matches. Pydantic runs patterns with Rust's regex engine,
    whose `$` matches only at the very end; Python's also matches before a final newline, so the
    closing `$` becomes `\\Z`."""
    if not (regex.startswith("^") and regex.endswith("$")) or "$" in regex[:-1]:
        raise ValueError(f"pattern {regex!r}: only ^...$ patterns are supported")
    match = re.compile(regex[:-1] + r"\Z").match

    def check(value: Any) -> Any:
        if type(value) is not str or match(value) is None:
            raise Reject
        return value
    return check


def integer(value: Any) -> Any:
    if type(value) is not int:  # strict: no bool, no float, no numeric string
        raise Reject
    return value


def number(value: Any) -> Any:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)  # pydantic's strict float takes an int and stores a float
    raise Reject


def boolean(value: Any) -> Any:
    if type(value) is not bool:
        raise Reject
    return value


def bounded(inner: Check, ge: Any = None, gt: Any = None, le: Any = None, lt: Any = None) -> Check:
    def check(value: Any) -> Any:
        value = inner(value)
        if ((ge is not None and not value >= ge) or (gt is not None and not value > gt)
                or (le is not None and not value <= le) or (lt is not None and not value < lt)):
            raise Reject
        return value
    return check


def literal(*choices: str) -> Check:
    allowed = frozenset(choices)

    def check(value: Any) -> Any:
        if type(value) is not str or value not in allowed:
            raise Reject
        return value
    return check


def optional(inner: Check) -> Check:
    def check(value: Any) -> Any:
        return None if value is None else inner(value)
    return check


def list_of(item: Check) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not list:
            raise Reject
        return [item(v) for v in value]
    return check


def dict_of(key: Check, item: Check) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not dict:
            raise Reject
        return {key(k): item(v) for k, v in value.items()}
    return check


def by_type(branches: Mapping[type, Check]) -> Check:
    """A union whose members take disjoint Python types (str, int, bool, a mapping): the member for
    the value's exact type decides, as pydantic's smart union does in strict mode."""
    table = dict(branches)

    def check(value: Any) -> Any:
        branch = table.get(type(value))
        if branch is None:
            raise Reject
        return branch(value)
    return check


def record(
    cls: Callable[..., Any],
    fields: Mapping[str, tuple[str, Check]],
    required: frozenset[str] = frozenset(),
    before: Callable[[Any], Any] | None = None,
) -> Check:
    """A mapping of known keys (a field's name or its alias) into an instance of cls."""
    table = dict(fields)

    def check(value: Any) -> Any:
        if before is not None:
            value = before(value)
        if type(value) is not dict:
            raise Reject
        given: dict[str, Any] = {}
        for key, item in value.items():
            entry = table.get(key) if type(key) is str else None
            if entry is None or entry[0] in given:
                raise Reject
            given[entry[0]] = entry[1](item)
        if not required <= given.keys():
            raise Reject
        return cls(**given)
    return check
