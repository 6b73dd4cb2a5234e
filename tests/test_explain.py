"""`nodegen explain RULE`: every rule explained, and every manifest example replays to the problem it shows."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from nodegen.explain import EXPLANATIONS, Example
from nodegen.rules.catalogue import all_rules
from tests.conftest import ROOT, invoke

REPLAYED = sorted(rule for rule, item in EXPLANATIONS.items() if isinstance(item.example, Example))


def test_every_rule_has_an_explanation() -> None:
    assert sorted(EXPLANATIONS) == sorted(all_rules())
    for rule in all_rules():
        result = invoke("explain", rule)
        assert result.code == 0, rule
        lines = result.stdout.splitlines()
        assert lines[0] == f"{rule}: {all_rules()[rule]}"
        assert lines[1].startswith("standard: ") and any(x.startswith("example: ") for x in lines)
        assert lines[-1].startswith("fix: ")


def test_an_unknown_rule_is_a_usage_error_with_a_hint() -> None:
    result = invoke("explain", "port-clas")
    assert result.code == 2
    assert result.stderr == "nodegen: no rule 'port-clas'; did you mean 'port-class'? (the rule ids: docs/rules.md)\n"


def _lines(message: str) -> str:
    return re.sub(r"(line |\.yaml:)\d+(:\d+)?", r"\1N", message)


@pytest.mark.parametrize("rule", REPLAYED)
def test_the_example_reproduces_the_problem_it_shows(rule: str, tmp_path: Path) -> None:
    example = EXPLANATIONS[rule].example
    assert isinstance(example, Example)
    shutil.copytree(ROOT / "nodes", tmp_path / "nodes")
    path = tmp_path / example.file
    text = path.read_text(encoding="utf-8")
    assert example.before in text
    path.write_text(text.replace(example.before, example.after, 1), encoding="utf-8")
    result = invoke("-C", str(tmp_path), "validate")
    assert result.code == 1
    # Line numbers inside a message move with every edit of the shipped manifests; what the example shows is the rest.
    assert any(line.startswith(f"{example.file}:") and _lines(line.split(": ", 1)[1]) == _lines(example.problem)
               for line in result.stderr.splitlines()), result.stderr
    assert example.problem in invoke("explain", rule).stdout
