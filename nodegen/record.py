"""`@record`: frozen value classes like `@dataclass(frozen=True)`, cheaper to create.

CPython's dataclasses compiles every generated method with its own `exec` (before 3.13), and a
class's creation costs ~0.5-1.5 ms; nodegen creates ~45 such classes on every cold run. A record's
`__init__` is the one method compiled (the same code a frozen dataclass's has, so instances are
created as fast); `__repr__`, `__eq__`, `__hash__`, the ordering methods and the frozen
`__setattr__`/`__delattr__` are closures over the field names, with the same behaviour.

A record is a dataclass to the standard library: `__dataclass_fields__` holds real
`dataclasses.Field` objects and `__dataclass_params__` the parameters, so `dataclasses.fields`,
`replace`, `asdict`, `astuple` and `is_dataclass` work on it, and assigning a field raises
`dataclasses.FrozenInstanceError`. Supported: defaults, `field(default=..., default_factory=...,
repr=..., compare=..., hash=..., metadata=...)`, `ClassVar` annotations (skipped), `__post_init__`,
`order=True`, inheriting from another record. Not supported (a TypeError says so): `InitVar`,
`KW_ONLY`, `field(init=False)` or `kw_only=True`, `__slots__`, a dataclass base that is not frozen.
Unlike a dataclass, a record without a docstring gets none generated.
"""

from __future__ import annotations

import _thread
import dataclasses
import inspect
import operator
import sys
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError
from typing import Any, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - type checkers read the 3.11+ branch
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda f: f

__all__ = ["record"]

_T = TypeVar("_T")

_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
_FIELD_CLASSVAR = dataclasses._FIELD_CLASSVAR  # type: ignore[attr-defined]
_HAS_DEFAULT_FACTORY = dataclasses._HAS_DEFAULT_FACTORY  # type: ignore[attr-defined]
_PARAMS_CLASS = dataclasses._DataclassParams  # type: ignore[attr-defined]
_PARAM_NAMES: tuple[str, ...] = _PARAMS_CLASS.__slots__
_PARAM_VALUES = {"init": True, "repr": True, "eq": True, "unsafe_hash": False, "frozen": True,
                 "match_args": True, "kw_only": False, "slots": False, "weakref_slot": False}


def _params(order: bool) -> Any:
    values = {**_PARAM_VALUES, "order": order}
    return _PARAMS_CLASS(**{name: values[name] for name in _PARAM_NAMES})


_PARAMS = {False: _params(False), True: _params(True)}


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):  # from __future__ import annotations: as dataclasses reads them
        return annotation.partition("[")[0].strip() in ("ClassVar", "typing.ClassVar")
    import typing

    return annotation is typing.ClassVar or getattr(annotation, "__origin__", None) is typing.ClassVar


def _unsupported(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.partition("[")[0].strip() in ("InitVar", "dataclasses.InitVar", "KW_ONLY",
                                                         "dataclasses.KW_ONLY")
    return annotation is dataclasses.KW_ONLY or isinstance(annotation, dataclasses.InitVar)


def _getter(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    """The tuple of these attributes of an object, as a dataclass's generated methods build it."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        one = operator.attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _compare(compared: Callable[[object], tuple[Any, ...]], op: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def method(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return op(compared(self), compared(other))
        return NotImplemented

    return method


def _methods(cls: type[Any], fields: list[Field[Any]], order: bool) -> dict[str, Callable[..., Any]]:
    """Every generated method but __init__."""
    shown = tuple(f.name for f in fields if f.repr)
    compared = _getter(tuple(f.name for f in fields if f.compare))
    hashed = _getter(tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)))
    names = frozenset(f.name for f in fields)
    running: set[tuple[int, int]] = set()

    def __repr__(self: Any) -> str:
        key = id(self), _thread.get_ident()
        if key in running:
            return "..."
        running.add(key)
        try:
            return f"{self.__class__.__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"
        finally:
            running.discard(key)

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    out: dict[str, Callable[..., Any]] = {"__repr__": __repr__, "__eq__": __eq__, "__hash__": __hash__,
                                          "__setattr__": __setattr__, "__delattr__": __delattr__}
    if order:
        for name, op in _ORDER.items():
            out[name] = _compare(compared, op)
            out[name].__name__ = name
    return out


_ORDER = {"__lt__": operator.lt, "__le__": operator.le, "__gt__": operator.gt, "__ge__": operator.ge}


def _init(cls: type, fields: list[Field[Any]], post_init: bool) -> Callable[..., None]:
    """The one compiled method: a frozen dataclass's __init__, without the annotations."""
    self_name = "__dataclass_self__" if any(f.name == "self" for f in fields) else "self"
    outer: dict[str, Any] = {"__dataclass_setattr__": object.__setattr__, "_HAS_DEFAULT_FACTORY": _HAS_DEFAULT_FACTORY}
    params, body = [self_name], []
    seen_default = False
    for f in fields:
        name = f.name
        if f.default_factory is not MISSING:
            outer[f"_dflt_{name}"] = f.default_factory
            params.append(f"{name}=_HAS_DEFAULT_FACTORY")
            value = f"_dflt_{name}() if {name} is _HAS_DEFAULT_FACTORY else {name}"
            seen_default = True
        elif f.default is not MISSING:
            outer[f"_dflt_{name}"] = f.default
            params.append(f"{name}=_dflt_{name}")
            value = name
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            params.append(name)
            value = name
        body.append(f"  __dataclass_setattr__({self_name},{name!r},{value})")
    if post_init:
        body.append(f"  {self_name}.__post_init__()")
    source = (f"def __create_fn__({', '.join(outer)}):\n"
              f" def __init__({','.join(params)}):\n"
              + ("\n".join(f" {line}" for line in body) if body else "  pass")
              + "\n return __init__")
    namespace: dict[str, Any] = {}
    module = sys.modules.get(cls.__module__)
    exec(source, module.__dict__ if module is not None else {}, namespace)
    fn: Callable[..., None] = namespace["__create_fn__"](**outer)
    return fn


def _field(cls: type[Any], name: str, annotation: object) -> Field[Any]:
    """The field of one annotation, as dataclasses makes it (its class attribute set to the default)."""
    if _unsupported(annotation):
        raise TypeError(f"record {cls.__name__}.{name}: InitVar and KW_ONLY are not supported")
    default = cls.__dict__.get(name, MISSING)
    if isinstance(default, Field):
        f = default
        if f.default is MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, f.default)
    else:
        f = dataclasses.field(default=default)
    f.name, f.type = name, annotation
    if _is_classvar(annotation):
        f._field_type = _FIELD_CLASSVAR  # type: ignore[attr-defined]
        if f.default_factory is not MISSING:
            raise TypeError(f"field {name} cannot have a default factory")
        return f
    f._field_type = _FIELD  # type: ignore[attr-defined]
    if not f.init or f.kw_only is True:
        raise TypeError(f"record {cls.__name__}.{name}: init=False and kw_only are not supported")
    f.kw_only = False
    if f.default.__class__.__hash__ is None:
        raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
    return f


def _fields(cls: type[Any]) -> dict[str, Field[Any]]:
    """The bases' fields, then the class's own, in dataclasses' order."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"record {cls.__name__}: __slots__ is not supported")
    fields: dict[str, Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        base_fields = base.__dict__.get("__dataclass_fields__")
        if base_fields is not None:
            if not base.__dict__["__dataclass_params__"].frozen:
                raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
            fields.update(base_fields)
    annotations = inspect.get_annotations(cls)
    for name, annotation in annotations.items():
        fields[name] = _field(cls, name, annotation)
    for name, value in cls.__dict__.items():
        if isinstance(value, Field) and name not in annotations:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    return fields


def _build(cls: type[_T], order: bool) -> type[_T]:
    fields = _fields(cls)
    real = [f for f in fields.values() if f._field_type is _FIELD]  # type: ignore[attr-defined]
    own = cls.__dict__
    for name in ("__setattr__", "__delattr__", *(_ORDER if order else ())):
        if name in own:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    class_hash = own.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in own))
    attrs: dict[str, Any] = {"__dataclass_params__": _PARAMS[order], "__dataclass_fields__": fields}
    methods = _methods(cls, real, order)
    if explicit_hash:
        del methods["__hash__"]
    else:
        attrs["__hash__"] = methods.pop("__hash__")
    for name, fn in methods.items():
        if name not in own:
            attrs[name] = fn
    if "__init__" not in own:
        attrs["__init__"] = _init(cls, real, hasattr(cls, "__post_init__"))
    if "__match_args__" not in own:
        attrs["__match_args__"] = tuple(f.name for f in real)
    for name, value in attrs.items():
        if callable(value):
            value.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, value)
    return cls


@overload
@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, Field))
def record(cls: type[_T], /) -> type[_T]: ...


@overload
def record(*, order: bool = False) -> Callable[[type[_T]], type[_T]]: ...


def record(cls: type[_T] | None = None, /, *, order: bool = False) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """`@record` or `@record(order=True)`: the class as `@dataclass(frozen=True[, order=True])` would make it."""
    if cls is None:
        return lambda c: _build(c, order)
    return _build(cls, order)
