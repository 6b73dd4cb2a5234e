"""A manifest the plain model's checks rejected: the wire models (pydantic) decide and word the errors.

Imported only then, so a valid fleet never loads pydantic. What the wire models accept is handed on as
the plain model's objects (`to_plain`), so the rest of nodegen sees one kind of object either way.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from nodegen.load import model, wire
from nodegen.load.yamlio import Document, Loc
from nodegen.problems import Problem


def wire_validate(doc: Document, name: str) -> tuple[list[Problem], Any]:
    """The problems of doc's data against the wire model `name` (Fleet or Node), and the plain object
    the rules may still read (None when the data is unusable)."""
    wire_model: type[BaseModel] = getattr(wire, name)
    try:
        return [], to_plain(wire_model.model_validate(doc.data))
    except ValidationError as exc:
        kept = _without_unknown_keys(doc, exc, wire_model)
        return pydantic_problems(doc, exc, wire_model), None if kept is None else to_plain(kept)


def to_plain(value: Any) -> Any:
    """The plain model's twin of a wire value: the same class name, the fields the data gave."""
    if isinstance(value, BaseModel):
        cls = getattr(model, type(value).__name__)
        return cls(**{name: to_plain(getattr(value, name)) for name in type(value).model_fields
                      if name in value.model_fields_set})
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def _without_unknown_keys(doc: Document, exc: ValidationError, model: type[BaseModel]) -> BaseModel | None:
    """The model with the unknown keys left out, when they were its only fault (their problems are
    reported already): the standard's rules still run on it, so a typo key does not hide the same
    service's bad port. The run still fails on the schema problems; nothing is written."""
    errors = exc.errors()
    if not errors or any(e["type"] != "extra_forbidden" for e in errors):
        return None
    data = copy.deepcopy(doc.data)
    for err in errors:
        loc, rest = _data_loc(data, tuple(err["loc"]))
        if rest or not loc:
            return None
        parent = data
        for part in loc[:-1]:
            parent = parent[part]
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def _data_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Loc, tuple[Any, ...]]:
    """Split a pydantic loc into the part that indexes the data and what is left over."""
    out: list[str | int] = []
    cur = data
    rest = list(loc)
    while rest:
        part = rest.pop(0)
        if _indexes(cur, part):
            out.append(part)
            cur = cur[part]
        elif isinstance(part, str) and ("[" in part or part in _BRANCH_NAMES):
            continue  # a union branch label, not a key
        else:
            return tuple(out), (part, *rest)
    return tuple(out), ()


def _indexes(container: Any, part: Any) -> bool:
    if isinstance(container, dict):
        return isinstance(part, str) and part in container
    if isinstance(container, list):
        return isinstance(part, int) and 0 <= part < len(container)
    return False


_BRANCH_NAMES = {"str", "int", "bool", "float", "list", "dict", "none", "EnvVar", "Use", "ServiceOverride"}


def pydantic_problems(doc: Document, exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into one located problem per offending place."""
    found: dict[Loc, tuple[int, Problem]] = {}
    for err in exc.errors():
        loc, rest = _data_loc(doc.data, tuple(err["loc"]))
        problem = _problem_for(doc, model, err, loc, rest)
        depth = len(loc) + (1 if rest else 0)
        if loc not in found or depth > found[loc][0]:
            found[loc] = (depth, problem)
    # A union reports each branch; keep the deepest, most specific error per place.
    kept = [p for loc, (_, p) in found.items() if not any(o != loc and o[: len(loc)] == loc for o in found)]
    return sorted(set(kept))


def _problem_for(doc: Document, model: type[BaseModel], err: Any, loc: Loc, rest: tuple[Any, ...]) -> Problem:
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = _allowed_keys(model, loc[:-1])
        hint = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
        if hint:
            suggestion = f"; did you mean {hint[0]!r}?"
        else:
            suggestion = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
        parent = ".".join(map(str, loc[:-1])) or "top level"
        return doc.problem(loc, "schema", f"unknown key {key!r} in {parent}{suggestion}", key=True)
    if err["type"] == "missing":
        missing = rest[0] if rest else "?"
        return doc.problem(loc, "schema", f"{dotted}: missing required key {missing!r}", key=True)
    message = f"{dotted}: {err['msg'][0].lower()}{err['msg'][1:]}"
    if err["type"] == "literal_error" and isinstance(err.get("input"), str):
        expected = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        close = difflib.get_close_matches(err["input"], expected, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
    return doc.problem(loc, "schema", message)


def _allowed_keys(model: type[BaseModel], loc: Loc) -> set[str]:
    """The keys a mapping at loc may have, following the model's annotations."""
    target: Any = model
    for part in loc:
        target = _step(target, part)
        if target is None:
            return set()
    models = [t for t in _unwrap(target) if isinstance(t, type) and issubclass(t, BaseModel)]
    return {f.alias or name for m in models for name, f in m.model_fields.items()}


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return [a for arg in typing.get_args(tp) for a in _unwrap(arg)]
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    return [tp]


def _step(tp: Any, part: str | int) -> Any:
    for option in _unwrap(tp):
        if isinstance(option, type) and issubclass(option, BaseModel):
            for name, f in option.model_fields.items():
                if part in (name, f.alias):
                    return f.annotation
        origin = typing.get_origin(option)
        if origin is dict and isinstance(part, str):
            return typing.get_args(option)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(option)[0]
    return None
