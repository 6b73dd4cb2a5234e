"""Machine formats: SARIF 2.1.0 (checked against the OASIS schema), GitHub annotations and JSON, on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nodegen.rules.catalogue import all_rules
from tests.conftest import FIXTURES, ROOT, Run, invoke
from tests.test_output import edit

SCHEMA = json.loads((FIXTURES / "sarif" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
REAL = "tests/fixtures/real/docker-compose.all.yml"


def ng(ws: Path, *args: str) -> Run:
    return invoke("-C", str(ws), *args)


def sarif(result: Run) -> list[dict[str, Any]]:
    """The results of a SARIF log printed on stdout, after checking the log against the schema."""
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert set(all_rules()) <= set(rules)
    for res in run["results"]:
        assert rules[res["ruleIndex"]] == res["ruleId"]
    return list(run["results"])


def where(res: dict[str, Any]) -> tuple[str, int, int, str]:
    loc = res["locations"][0]["physicalLocation"]
    return loc["artifactLocation"]["uri"], loc["region"]["startLine"], loc["region"]["startColumn"], res["ruleId"]


@pytest.fixture
def broken(workspace: Path) -> Path:
    edit(workspace / "nodes" / "fleet.yaml", "    port: 7002\n", "    port: 9555\n")
    edit(workspace / "nodes" / "node2.yaml", "role: dev", "role: devl")
    return workspace


@pytest.fixture
def done(workspace: Path) -> Path:
    assert ng(workspace, "render", "--all").code == 0
    return workspace


def test_the_schema_rejects_what_is_not_sarif() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate({"version": "2.1.0", "runs": [{"results": []}]})


def test_validate_sarif_lists_every_problem(broken: Path) -> None:
    result = ng(broken, "--format", "sarif", "validate")
    assert result.code == 1
    assert result.stderr == "2 error(s); nothing written\n"
    found = sarif(result)
    port_line = (broken / "nodes" / "fleet.yaml").read_text(encoding="utf-8").splitlines().index("    port: 9555") + 1
    assert [where(r) for r in found] == [("nodes/fleet.yaml", port_line, 11, "port-class"),
                                         ("nodes/node2.yaml", 4, 7, "vocabulary")]
    assert found[1]["message"]["text"].endswith("did you mean 'dev'?")
    assert {r["level"] for r in found} == {"error"}


def test_validate_sarif_of_a_clean_fleet_is_an_empty_run(workspace: Path) -> None:
    result = ng(workspace, "--format", "sarif", "validate")
    assert result.code == 0
    assert sarif(result) == []
    assert result.stderr.startswith("ok: 3 node(s)")


def test_check_sarif_locates_the_hand_edit(done: Path) -> None:
    compose = done / "output" / "node1" / "docker-compose.all.yml"
    compose.write_text(compose.read_text(encoding="utf-8").replace("7002/health", "7003/health"), encoding="utf-8")
    result = ng(done, "--format", "sarif", "check")
    assert result.code == 1
    found = {where(r)[3]: where(r) for r in sarif(result)}
    assert found["output-drift"][:2] == ("output/node1/docker-compose.all.yml", 1)
    line = next(i for i, x in enumerate(compose.read_text(encoding="utf-8").splitlines(), 1) if "7003/health" in x)
    assert found["hand-edit"][:2] == ("output/node1/docker-compose.all.yml", line)
    assert "stale" in result.stderr  # the human report still goes to stderr


def test_audit_sarif_for_a_node_and_a_compose_file(done: Path) -> None:
    node = ng(done, "--format", "sarif", "audit", "node2")  # no .gitignore in this workspace
    assert node.code == 1
    assert [where(r) for r in sarif(node)] == [("output/node2", 1, 1, "checklist")]
    assert "✗ .env not in Git" in node.stderr
    real = invoke("-C", str(ROOT), "--format", "sarif", "audit", str(ROOT / REAL))
    assert real.code == 1
    found = sarif(real)
    assert len(found) == 104
    assert all(where(r)[0].endswith("tests/fixtures/real/docker-compose.all.yml") for r in found)
    assert len({where(r)[1] for r in found}) > 40  # located at their own lines


def test_lint_migrations_sarif(tmp_path: Path) -> None:
    result = invoke("--format", "sarif", "lint-migrations", str(ROOT / "tests" / "migrations" / "bad"))
    assert result.code == 1
    expected = (ROOT / "tests" / "migrations" / "bad.expected").read_text(encoding="utf-8").splitlines()
    found = sarif(result)
    assert len(found) == len([x for x in expected if ": error[" in x])
    assert {r["ruleId"] for r in found} >= {"migration-header", "migration-transaction"}


def test_verify_sarif_reports_a_missing_tool_under_strict(done: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(done))  # shellcheck and promtool are not found; --strict fails them
    result = ng(done, "--format", "sarif", "verify", "--strict", "node2")
    assert result.code == 1
    found = sarif(result)
    assert found and all(where(r)[3] == "verify" and where(r)[0].startswith("output/node2") for r in found)
    assert "FAILED" in result.stderr


@pytest.mark.parametrize("args", [("validate",), ("check",), ("audit", "node2"), ("lint-migrations", "MIGRATIONS")])
def test_github_annotations_on_stdout(broken: Path, args: tuple[str, ...]) -> None:
    args = tuple(str(ROOT / "tests" / "migrations" / "bad") if a == "MIGRATIONS" else a for a in args)
    result = ng(broken, "--format", "github", *args)
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert lines and all(x.startswith("::error file=") for x in lines), result.stdout


def test_json_documents_for_nodes_ports_audit_and_check(done: Path) -> None:
    nodes = json.loads(ng(done, "--format", "json", "nodes").stdout)
    assert [n["node"] for n in nodes] == ["node1", "node2", "node3"]
    assert nodes[1]["role"] == "dev" and "stt-service" in nodes[1]["services"]
    ports = json.loads(ng(done, "--format", "json", "ports").stdout)
    assert {"title": "Agents Service", "ports": "7002"}.items() <= next(
        r for r in ports["fleet"] if r["title"] == "Agents Service").items()
    assert ports["problems"] == [] and set(ports["nodes"]) == {"node1", "node2", "node3"}
    assert json.loads(ng(done, "--format", "json", "ports", "--next", "mvp").stdout) == {"class": "mvp", "port": 7007}
    audit = ng(done, "--format", "json", "audit", "node1")
    doc = json.loads(audit.stdout)
    assert (doc["node"], doc["total"]) == ("node1", 10)
    assert [i["title"] for i in doc["items"] if not i["ok"]] == [".env not in Git"]
    check = json.loads(ng(done, "--format", "json", "check").stdout)
    assert check == {"clean": True, "nodes": ["node1", "node2", "node3"], "files": [], "hand_edits": []}
    (done / "output" / "node3" / "docker-compose.all.yml").unlink()
    stale = ng(done, "--format", "json", "check")
    assert stale.code == 1
    assert json.loads(stale.stdout)["files"] == [{"path": "output/node3/docker-compose.all.yml", "state": "missing"}]


def test_every_rule_id_is_documented() -> None:
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert [r for r in all_rules() if f"| `{r}` |" not in page] == []
