"""Load the workspace's manifests into the wire models, turning every failure into located problems."""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from nodegen.load.model import Fleet, Node
from nodegen.load.yamlio import Document, Loc, load
from nodegen.problems import Problem
from nodegen.workspace import Workspace


@dataclass
class Manifests:
    """The fleet and its nodes as parsed models, with the documents they came from."""

    fleet_doc: Document
    fleet: Fleet
    node_docs: dict[str, Document] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # node ids whose manifest did not load (reported already)


def load_manifests(ws: Workspace) -> tuple[Manifests | None, list[Problem]]:
    """Every manifest of the workspace, or the problems that stop it from loading."""
    problems: list[Problem] = []
    fleet_doc, fleet = _load_one(ws, ws.fleet_file, Fleet, problems)
    loaded: dict[str, tuple[Document, Node]] = {}
    unreadable: set[str] = set()
    problems += _twin_manifests(ws)
    for node_id, path in ws.node_files().items():
        doc, node = _load_one(ws, path, Node, problems)
        if doc is not None and node is not None:
            loaded[node_id] = (doc, node)
            if node.node != node_id:
                problems.append(doc.problem(("node",), "node-distribution",
                                            f"node id {node.node!r} differs from the file name {node_id!r}"))
        else:
            unreadable.add(node_id)
    if not loaded and not problems:
        problems.append(Problem(ws.display(ws.nodes_dir), 1, 1, "file", "no node manifests (nodes/<node>.yaml)"))
    if fleet_doc is None or fleet is None:
        return None, problems
    manifests = Manifests(fleet_doc, fleet, unreadable=unreadable)
    for node_id, (doc, node) in loaded.items():
        manifests.node_docs[node_id] = doc
        manifests.nodes[node_id] = node
    return manifests, problems


M = typing.TypeVar("M", bound=BaseModel)


def _load_one(
    ws: Workspace, path: Any, model: type[M], problems: list[Problem]
) -> tuple[Document | None, M | None]:
    display = ws.display(path)
    if path.is_symlink() or (path.exists() and not _inside(ws, path)):
        problems.append(Problem(display, 1, 1, "file", "manifest is a symlink or lies outside the workspace"))
        return None, None
    doc, problem = load(path, display)
    if doc is None:
        problems.append(problem or Problem(display, 1, 1, "file", "cannot load"))
        return None, None
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "schema", f"top level must be a mapping, not {_kind(doc.data)}"))
        return doc, None
    try:
        return doc, model.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(pydantic_problems(doc, exc, model))
        return doc, _without_unknown_keys(doc, exc, model)


def _without_unknown_keys(doc: Document, exc: ValidationError, model: type[M]) -> M | None:
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


def _twin_manifests(ws: Workspace) -> list[Problem]:
    """node1.yaml beside node1.yml: one would silently shadow the other."""
    twins = [p for p in sorted(ws.nodes_dir.glob("*.yml")) if p.with_suffix(".yaml").exists()]
    return [Problem(ws.display(p), 1, 1, "file", f"{p.with_suffix('.yaml').name} and {p.name} both exist; keep one")
            for p in twins]


def _inside(ws: Workspace, path: Any) -> bool:
    try:
        path.resolve().relative_to(ws.root)
    except ValueError:
        return False
    return True


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "empty"
    )


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
