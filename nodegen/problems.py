"""Problems as data (path, line, col, rule, message) and the one place that formats them."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Literal

Level = Literal["error", "warning"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


@dataclass(frozen=True, order=True)
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
