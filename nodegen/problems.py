"""Problems as data (path, line, col, rule, message) and the one place that formats them
(text, JSON lines, GitHub workflow annotations, SARIF 2.1.0)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Literal
from urllib.parse import quote

from nodegen.record import record

Level = Literal["error", "warning"]
STYLES = ("text", "json", "github", "sarif")
MACHINE_STYLES = frozenset({"json", "github", "sarif"})  # printed on stdout; human text goes to stderr
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


@record(order=True)
class Problem:
    """One finding about the manifests; line and col are 1-based, 0 when unknown."""

    path: str
    line: int
    col: int
    rule: str
    message: str
    level: Level = "error"

    @property
    def is_error(self) -> bool:
        return self.level == "error"


def format_problem(problem: Problem, style: str = "text") -> str:
    """Render one problem in the chosen output style."""
    if style == "json":
        return json.dumps(asdict(problem), ensure_ascii=False, sort_keys=True)
    if style == "github":
        return (
            f"::{problem.level} file={_gh(problem.path, prop=True)},line={max(problem.line, 1)},"
            f"col={max(problem.col, 1)},title={problem.rule}::{_gh(problem.message)}"
        )
    return (f"{_one_line(problem.path)}:{problem.line}:{problem.col}: "
            f"{problem.level}[{problem.rule}] {_one_line(problem.message)}")


def _one_line(text: str) -> str:
    """Control characters escaped: a message quoting a name like "a\\nb" must not split the problem in two."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _gh(text: str, *, prop: bool = False) -> str:
    """Escape a workflow-command value: messages quote manifest text, which may hold `%0A` or `::`."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def format_problems(problems: list[Problem], style: str = "text") -> str:
    """Sorted, deduplicated, one per line."""
    return "\n".join(format_problem(p, style) for p in sorted(set(problems)))


def has_errors(problems: list[Problem]) -> bool:
    return any(p.is_error for p in problems)


def format_report(problems: list[Problem], style: str, rules: Mapping[str, str] | None = None) -> str:
    """A whole run's problems as one document: SARIF is one log, the other styles one problem per line."""
    if style == "sarif":
        return json.dumps(sarif_log(problems, rules or {}), ensure_ascii=False, indent=2, sort_keys=True)
    return format_problems(problems, style)


def sarif_log(problems: list[Problem], rules: Mapping[str, str]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run: the rules that can fire, and one result per problem."""
    from nodegen import __version__

    ordered = sorted(set(problems))
    ids = sorted(set(rules) | {p.rule for p in ordered})
    index = {rule: i for i, rule in enumerate(ids)}
    driver = {
        "name": "nodegen",
        "version": __version__,
        "rules": [{"id": r, "name": r, "shortDescription": {"text": rules.get(r, r)},
                   "help": {"text": f"nodegen explain {r}"}} for r in ids],
    }
    results = [_sarif_result(p, index[p.rule]) for p in ordered]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": results}]}


def _sarif_result(problem: Problem, rule_index: int) -> dict[str, Any]:
    region = {"startLine": max(problem.line, 1), "startColumn": max(problem.col, 1)}
    location = {"physicalLocation": {"artifactLocation": {"uri": quote(problem.path, safe="/"),
                                                          "uriBaseId": "SRCROOT"},
                                     "region": region}}
    return {"ruleId": problem.rule, "ruleIndex": rule_index, "level": problem.level,
            "message": {"text": _one_line(problem.message)}, "locations": [location]}
