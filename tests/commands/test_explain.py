"""`nodegen explain RULE`: every rule explained, and every manifest example replays to the problem it shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nodegen.explain import EXPLANATIONS, Example, problem_text
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
    # The positions the message names are looked up in today's shipped fleet: the replay reports exactly them.
    shown = problem_text(example)
    assert any(line.startswith(f"{example.file}:") and line.split(": ", 1)[1] == shown
               for line in result.stderr.splitlines()), result.stderr
    assert f"{example.file}:…: {shown}\n" in invoke("explain", rule).stdout


def test_positions_in_examples_follow_the_shipped_fleet() -> None:
    text = (ROOT / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    line = text.splitlines().index("  city-service:") + 1
    port = next(n for n, row in enumerate(text.splitlines()[line:], line + 1) if row.startswith("    port: "))
    assert f"(nodes/fleet.yaml:{port}:11)" in invoke("explain", "port-conflict").stdout
    example = EXPLANATIONS["yaml"].example
    assert isinstance(example, Example)
    moved = Example(example.file, example.before, example.after, "x at {at:project}, line {line:domain}")
    assert problem_text(moved) == f"x at {_row(text, 'project: ')}:10, line {_row(text, 'domain: ')}"


def _row(text: str, start: str) -> int:
    return next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith(start))
