"""Load the workspace's manifests into the plain model, turning every failure into located problems.

The plain model's checks (`model`, generated from the wire models) take a valid manifest without
pydantic; a manifest they reject goes to the wire models (`diagnose`), which decide and word the errors.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nodegen.load import model
from nodegen.load.fastcheck import Record
from nodegen.load.model import Fleet, Node
from nodegen.load.yamlio import Document, load
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
    fleet_doc, fleet = _load_one(ws, ws.fleet_file, model.check_fleet, "Fleet", problems)
    loaded: dict[str, tuple[Document, Node]] = {}
    unreadable: set[str] = set()
    problems += _twin_manifests(ws)
    for node_id, path in ws.node_files().items():
        doc, node = _load_one(ws, path, model.check_node, "Node", problems)
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


M = typing.TypeVar("M", bound=Record)


def _load_one(
    ws: Workspace, path: Any, check: Callable[[Any], M], wire_name: str, problems: list[Problem]
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
        return doc, check(doc.data)
    except model.Reject:
        pass
    from nodegen.load import diagnose  # pydantic is imported for a manifest the plain checks did not take

    found, kept = diagnose.wire_validate(doc, wire_name)
    problems.extend(found)
    return doc, typing.cast("M | None", kept)


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
