"""The gap report of an import: every source key mapped, dropped or to review, violations and secret values."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from typing import Literal

from nodegen.problems import Problem, format_problem
from nodegen.record import record

Kind = Literal["mapped", "dropped", "needs-review", "violation", "secret"]
KINDS: tuple[Kind, ...] = ("mapped", "dropped", "needs-review", "violation", "secret")
LOSSY: frozenset[str] = frozenset({"dropped"})  # what of the sources the manifests do not carry


@record(order=True)
class Where:
    """A place in a source file (1-based line and column)."""

    path: str
    line: int
    col: int


@record(order=True)
class Gap:
    """One line of the report: where, what kind, which key, and what became of it."""

    path: str
    line: int
    col: int
    kind: Kind
    key: str
    message: str

    @classmethod
    def at(cls, where: Where, kind: Kind, key: str, message: str) -> Gap:
        return cls(where.path, where.line, where.col, kind, key, message)


def lossy(gaps: list[Gap]) -> list[Gap]:
    return [g for g in gaps if g.kind in LOSSY]


def summary(gaps: list[Gap]) -> str:
    counts = Counter(g.kind for g in gaps)
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in KINDS)


def format_text(gaps: list[Gap]) -> str:
    """One `path:line:col: kind[key] message` line per gap, in source order, then the counts."""
    lines = [format_problem(Problem(g.path, g.line, g.col, g.key, g.message, "error")).replace(
        ": error[", f": {g.kind}[", 1) for g in sorted(gaps)]
    return "\n".join([*lines, f"gap report: {summary(gaps)}"])


def format_json(gaps: list[Gap], written: list[str]) -> str:
    counts = Counter(g.kind for g in gaps)
    doc = {"gaps": [asdict(g) for g in sorted(gaps)], "counts": {k: counts.get(k, 0) for k in KINDS},
           "lossy": bool(lossy(gaps)), "written": written}
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True)
