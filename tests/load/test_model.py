"""The plain model (nodegen/load/model.py) stands for the wire models: what its checks take, pydantic takes
too and builds the same object (class, every field, `model_fields_set`), and both take the same manifests.

The corpus is every manifest in the repository, plus thousands of single changes to the shipped ones (a
value of another type, out of range, a stray newline, an unknown key, a key removed).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from nodegen.load import codegen, model, wire
from nodegen.load.diagnose import to_plain
from nodegen.load.fastcheck import Reject, pattern
from nodegen.load.yamlio import parse
from tests.conftest import ROOT

MANIFESTS = sorted({*ROOT.glob("nodes/*.yaml"), *ROOT.glob("tests/**/nodes/*.yaml"),
                    *ROOT.glob("nodegen/presets/*.yaml")})


def same(plain: Any, wired: Any, where: str = "") -> None:
    """plain is the wire value's twin: same class name, fields, field values and fields given."""
    if isinstance(wired, BaseModel):
        assert type(plain).__name__ == type(wired).__name__, where
        assert set(plain.model_fields_set) == set(wired.model_fields_set), where
        for name in type(wired).model_fields:
            same(getattr(plain, name), getattr(wired, name), f"{where}.{name}")
    elif isinstance(wired, dict):
        assert type(plain) is dict and list(plain) == list(wired), where
        for key in wired:
            same(plain[key], wired[key], f"{where}.{key}")
    elif isinstance(wired, list):
        assert type(plain) is list and len(plain) == len(wired), where
        for i, (p, w) in enumerate(zip(plain, wired, strict=True)):
            same(p, w, f"{where}.{i}")
    else:
        assert type(plain) is type(wired) and plain == wired, f"{where}: {plain!r} != {wired!r}"


def both(kind: str, data: Any) -> tuple[Any, Any]:
    """(the plain check's object or None, the wire model's object or None) for the same data."""
    try:
        plain = model.CHECKS[kind](data)
    except Reject:
        plain = None
    try:
        wired = getattr(wire, kind).model_validate(data)
    except ValidationError:
        wired = None
    return plain, wired


def agree(kind: str, data: Any, what: str) -> bool:
    plain, wired = both(kind, data)
    verdict = "rejects" if plain is None else "takes"
    assert (plain is None) == (wired is None), f"{what}: the plain model {verdict} it, pydantic does not"
    if wired is not None:
        same(plain, wired, what)
    return wired is not None


def kind_of(path: Path) -> str:
    return "Fleet" if path.name in ("fleet.yaml", "daarion.yaml", "minimal.yaml") else "Node"


def loaded(path: Path) -> Any:
    doc, _ = parse(path.read_text(encoding="utf-8", errors="replace"), str(path))
    return None if doc is None else doc.data


def test_model_py_is_what_codegen_writes() -> None:
    assert codegen.Generator().source() == codegen.TARGET.read_text(encoding="utf-8"), (
        "run `python -m nodegen.load.codegen` after changing nodegen/load/wire.py")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_of_the_repository_is_read_alike(path: Path) -> None:
    data = loaded(path)
    if isinstance(data, dict):
        agree(kind_of(path), data, str(path))


def test_the_shipped_fleet_needs_no_pydantic() -> None:
    taken = [p for p in ROOT.glob("nodes/*.yaml") if both(kind_of(p), loaded(p))[0] is not None]
    assert sorted(taken) == sorted(ROOT.glob("nodes/*.yaml"))


def _paths(data: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield at, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*at, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*at, i))


def _replace(data: Any, at: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    cur = out
    for part in at[:-1]:
        cur = cur[part]
    cur[at[-1]] = value
    return out


def _removed(data: Any, at: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(data)
    cur = out
    for part in at[:-1]:
        cur = cur[part]
    del cur[at[-1]]
    return out


def _variants(value: Any) -> list[Any]:
    """Values of other types and edge values a YAML manifest can hold."""
    out: list[Any] = [None, True, 0, -1, 1, 7001, 10**6, 0.5, 1.0, 2.5, "", "x", "7001", [], {}, ["x"], {"x": 1}]
    if isinstance(value, str):
        out += [value + "\n", value + " ", value.upper(), "\n" + value, value * 3]
    if isinstance(value, int) and not isinstance(value, bool):
        out += [value + 1, value - 1, -value, float(value), str(value)]
    if isinstance(value, float):
        out += [value * 2, -value, int(value), float("nan"), float("inf")]
    return out


def _judge_changes(kind: str, data: Any, what: str) -> tuple[int, int]:
    """Every single change below data, judged by both; (how many pydantic took, how many were made)."""
    taken = judged = 0
    for at, value in list(_paths(data)):
        if not at:
            continue
        changed = [_replace(data, at, v) for v in _variants(value)] + [_removed(data, at)]
        if isinstance(value, dict):
            changed += [_replace(data, at, {**value, "unknown_key": 1}), _replace(data, at, {**value, 3: "x"})]
        for i, variant in enumerate(changed):
            taken += agree(kind, variant, f"{what} {'.'.join(map(str, at))} variant {i}")
            judged += 1
    return taken, judged


@pytest.mark.parametrize("name", ["node1.yaml", "node2.yaml", "node3.yaml"])
def test_single_changes_to_the_shipped_nodes_are_judged_alike(name: str) -> None:
    path = ROOT / "nodes" / name
    taken, judged = _judge_changes("Node", loaded(path), name)
    assert judged > 300 and 0 < taken < judged  # the changes reach both outcomes


def test_single_changes_to_the_shipped_catalog_are_judged_alike() -> None:
    """Each catalog service on its own (the Service model), then the rest of fleet.yaml around two of them."""
    fleet = loaded(ROOT / "nodes" / "fleet.yaml")
    taken = judged = 0
    for name, service in fleet["services"].items():
        t, j = _judge_changes("Service", service, f"services.{name}")
        taken, judged = taken + t, judged + j
    assert judged > 3000 and 0 < taken < judged
    around = {**fleet, "services": dict(list(fleet["services"].items())[:2])}
    t, j = _judge_changes("Fleet", around, "fleet.yaml")
    assert j > 500 and 0 < t < j


@pytest.mark.parametrize("name", [name for name, cls in vars(wire).items() if isinstance(cls, type)
                                  and issubclass(cls, wire.Strict) and cls is not wire.Strict
                                  and not any(f.is_required() for f in cls.model_fields.values())])
def test_defaults_are_the_wire_models(name: str) -> None:
    same(getattr(model, name)(), getattr(wire, name)(), name)


def test_to_plain_keeps_what_the_data_gave() -> None:
    data = loaded(ROOT / "nodes" / "fleet.yaml")
    wired = wire.Fleet.model_validate(data)
    same(to_plain(wired), wired)
    same(model.check_fleet(data), wired)


def test_records_are_frozen_values() -> None:
    use = model.Use(node="node2")
    assert use == model.Use(node="node2", via="gateway") and hash(use) == hash(model.Use(node="node2"))
    assert use != model.Use(node="node3") and use.model_fields_set == {"node"}
    with pytest.raises(AttributeError):
        use.node = "node3"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del use.node  # type: ignore[misc]
    moved = use.model_copy(update={"via": "private"})
    assert (moved.via, moved.node, moved.model_fields_set) == ("private", "node2", {"node", "via"})
    assert use.via == "gateway"
    with pytest.raises(TypeError):
        use.model_copy(update={"nope": 1})
    back = pickle.loads(pickle.dumps(moved))
    assert back == moved and back.model_fields_set == moved.model_fields_set
    assert repr(use) == "Use(node='node2', fallback=None, via='gateway')"
    assert model.Hardening().tmpfs is not model.Hardening().tmpfs  # a default list is never shared


def test_unsupported_wire_types_stop_the_generator() -> None:
    gen = codegen.Generator()
    with pytest.raises(TypeError):
        gen.check_expr(set[str], [])
    with pytest.raises(TypeError):
        gen.check_expr(int | float, [])  # an int is both; pydantic's choice is not a type dispatch
    with pytest.raises(ValueError, match="only"):
        pattern("[a-z]+")
