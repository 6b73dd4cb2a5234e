"""`@record`: frozen value classes like `@dataclass(frozen=True)`, cheaper to create.

CPython 3.11's dataclasses compiles every generated method with its own `exec`, and a class's
creation costs ~0.5-1.5 ms; nodegen creates ~40 such classes on every cold run. A record compiles
less: its `__init__` (the code a frozen dataclass's has, so instances are created as fast) comes
from one template compiled per shape (number of fields, which have a default factory) and renamed
for the class; `__eq__`, `__hash__` and the ordering methods compile the dataclass's own code on
their first call (most records are never compared); `__repr__` and the frozen
`__setattr__`/`__delattr__` are closures over the field names.

A record is a dataclass to the standard library: `__dataclass_fields__` holds real
`dataclasses.Field` objects and `__dataclass_params__` the parameters, so `dataclasses.fields`,
`replace`, `asdict`, `astuple` and `is_dataclass` work on it, and assigning a field raises
`dataclasses.FrozenInstanceError`. Supported: defaults, `field(default=..., default_factory=...,
repr=..., compare=..., hash=..., metadata=...)`, `ClassVar` annotations (skipped), `__post_init__`,
`order=True`, inheriting from another record. Not supported (a TypeError says so): `InitVar`,
`KW_ONLY`, `field(init=False)` or `kw_only=True`, `__slots__`, a dataclass base that is not frozen.
Unlike a dataclass, a record without a docstring gets none generated, and its `__init__` carries no
annotations.
"""

from __future__ import annotations

import _thread
import dataclasses
import inspect
import sys
import types
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


def _tuple(obj: str, names: tuple[str, ...]) -> str:
    return f"({''.join(f'{obj}.{n},' for n in names)})"


def _lazy(cls: type[Any], name: str, names: tuple[str, ...]) -> Callable[..., Any]:
    """A comparison or __hash__ that compiles the dataclass's own method on its first call and puts it
    on the class: most records are never compared or hashed, and those that are, are as fast as a
    dataclass's."""
    def method(*args: Any) -> Any:
        if name == "__hash__":
            source = f"def __hash__(self):\n return hash({_tuple('self', names)})"
        else:
            source = (f"def {name}(self, other):\n if other.__class__ is self.__class__:\n"
                      f"  return {_tuple('self', names)}{_OPS[name]}{_tuple('other', names)}\n return NotImplemented")
        namespace: dict[str, Any] = {}
        exec(source, {}, namespace)  # builtins only: hash, NotImplemented
        compiled: Callable[..., Any] = namespace[name]
        compiled.__qualname__ = f"{cls.__qualname__}.{name}"
        if cls.__dict__.get(name) is method:
            setattr(cls, name, compiled)
        return compiled(*args)

    method.__name__ = name
    return method


_OPS = {"__eq__": "==", "__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">="}
_ORDER = ("__lt__", "__le__", "__gt__", "__ge__")


def _methods(cls: type[Any], fields: list[Field[Any]], order: bool) -> dict[str, Callable[..., Any]]:
    """Every generated method but __init__."""
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
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

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    out: dict[str, Callable[..., Any]] = {
        "__repr__": __repr__, "__setattr__": __setattr__, "__delattr__": __delattr__,
        "__eq__": _lazy(cls, "__eq__", compared),
        "__hash__": _lazy(cls, "__hash__", tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)))}
    for name in _ORDER if order else ():
        out[name] = _lazy(cls, name, compared)
    return out


_TEMPLATES: dict[tuple[int, tuple[int, ...], bool], tuple[types.CodeType, dict[str, int]]] = {}


def _template(size: int, factories: tuple[int, ...], post_init: bool) -> tuple[types.CodeType, dict[str, int]]:
    """A frozen dataclass's __init__ for fields named _0, _1, ... (those in factories having a default
    factory), compiled once per shape, and where each field's name is among its constants."""
    key = size, factories, post_init
    if key not in _TEMPLATES:
        outer = ["__dataclass_setattr__", "_HAS_DEFAULT_FACTORY", *(f"__dataclass_dflt_{i}__" for i in factories)]
        body = [f"__dataclass_setattr__(self,'_{i}',"
                + (f"__dataclass_dflt_{i}__() if _{i} is _HAS_DEFAULT_FACTORY else _{i})" if i in factories
                   else f"_{i})") for i in range(size)]
        if post_init:
            body.append("self.__post_init__()")
        params = ", ".join(["self", *(f"_{i}" for i in range(size))])
        source = (f"def __create_fn__({', '.join(outer)}):\n def __init__({params}):\n"
                  + "".join(f"  {line}\n" for line in body or ["pass"]) + " return __init__")
        create = next(c for c in compile(source, "<record>", "exec").co_consts if isinstance(c, types.CodeType))
        code = next(c for c in create.co_consts if isinstance(c, types.CodeType))
        slots = {f"_{i}": i for i in range(size)}
        if sum(type(c) is str and c in slots for c in code.co_consts) != size:  # how the names are renamed
            raise RuntimeError("record: this Python keeps attribute names of object.__setattr__ calls elsewhere")
        _TEMPLATES[key] = code, slots
    return _TEMPLATES[key]


def _init(cls: type, fields: list[Field[Any]], post_init: bool) -> Callable[..., None]:
    """A frozen dataclass's __init__ (without the annotations): the template of its shape, renamed."""
    defaults: list[Any] = []
    cells = {"__dataclass_setattr__": object.__setattr__, "_HAS_DEFAULT_FACTORY": _HAS_DEFAULT_FACTORY}
    for i, f in enumerate(fields):
        if f.default_factory is not MISSING:
            cells[f"__dataclass_dflt_{i}__"] = f.default_factory
            defaults.append(_HAS_DEFAULT_FACTORY)
        elif f.default is not MISSING:
            defaults.append(f.default)
        elif defaults:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    names = [f.name for f in fields]
    template, slots = _template(len(fields), tuple(i for i, f in enumerate(fields)
                                                   if f.default_factory is not MISSING), post_init)
    self_name = "__dataclass_self__" if "self" in names else "self"
    code = template.replace(
        co_varnames=(self_name, *names, *template.co_varnames[len(names) + 1:]),
        co_consts=tuple(names[slots[c]] if type(c) is str and c in slots else c for c in template.co_consts))
    module = sys.modules.get(cls.__module__)
    return types.FunctionType(code, module.__dict__ if module is not None else {}, "__init__", tuple(defaults),
                              tuple(types.CellType(cells[name]) for name in code.co_freevars))


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
