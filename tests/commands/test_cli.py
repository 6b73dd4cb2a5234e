"""The command line: exit codes, exact output, workspace discovery and output formats."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nodegen import __version__
from nodegen.commands import COMMANDS
from tests.conftest import ROOT, invoke
from tests.rules.test_checks import FLEET, NODE, sub, write_workspace

PORT_9555 = "nodes/fleet.yaml:20:11: error[port-class] api: port 9555 is outside the mvp range 7000-7999"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A valid one-node workspace."""
    return write_workspace(tmp_path, {"nodes/fleet.yaml": FLEET, "nodes/n1.yaml": NODE})


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A workspace with two problems in two files."""
    return write_workspace(tmp_path / "broken", {
        "nodes/fleet.yaml": sub(FLEET, "port: 7001", "port: 9555"),
        "nodes/n1.yaml": sub(NODE, "role: production", "role: prod"),
    })


# --- validate -------------------------------------------------------------------------------------

def test_validate_shipped_fleet() -> None:
    result = invoke("-C", str(ROOT), "validate")
    assert (result.code, result.stderr) == (0, "")
    assert re.fullmatch(r"ok: 3 node\(s\), 32 service placement\(s\), \d+ catalog service\(s\)\n", result.stdout)


def test_validate_narrows_the_summary_to_named_nodes() -> None:
    result = invoke("-C", str(ROOT), "validate", "node2")
    assert result.code == 0
    assert result.stdout.startswith("ok: 1 node(s), 8 service placement(s), ")


def test_validate_reports_every_problem_sorted(broken: Path) -> None:
    result = invoke("-C", str(broken), "validate")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == (
        f"{PORT_9555}\n"
        "nodes/n1.yaml:3:7: error[vocabulary] role 'prod' is not in standard.roles (production, dev, federation); "
        "did you mean 'production'?\n"
        "2 error(s); nothing written\n"
    )


def test_format_json(broken: Path) -> None:
    result = invoke("-C", str(broken), "--format", "json", "validate")
    assert result.code == 1
    assert result.stderr == "2 error(s); nothing written\n"  # machine output on stdout, human text on stderr
    lines = result.stdout.splitlines()
    assert json.loads(lines[0]) == {"path": "nodes/fleet.yaml", "line": 20, "col": 11, "rule": "port-class",
                                    "message": "api: port 9555 is outside the mvp range 7000-7999",
                                    "level": "error"}
    assert [json.loads(line)["rule"] for line in lines] == ["port-class", "vocabulary"]


def test_format_github(broken: Path) -> None:
    result = invoke("-C", str(broken), "--format=github", "validate")
    assert result.code == 1
    assert result.stdout.splitlines()[0] == (
        "::error file=nodes/fleet.yaml,line=20,col=11,title=port-class::"
        "api: port 9555 is outside the mvp range 7000-7999"
    )


def test_format_github_escapes_what_would_break_an_annotation(tmp_path: Path) -> None:
    write_workspace(tmp_path, {"nodes/fleet.yaml": sub(FLEET, "route: api", "route: 'a%0A::error::x'"),
                               "nodes/n1.yaml": NODE})
    result = invoke("-C", str(tmp_path), "--format", "github", "validate")
    first = result.stdout.splitlines()[0]
    assert first.startswith("::error file=nodes/fleet.yaml,line=21,col=12,title=route::api: route ")
    assert first.endswith("route 'a%250A::error::x' must be lowercase ASCII letters, digits and '-'")


def test_format_unknown_is_usage_error(tiny: Path) -> None:
    result = invoke("-C", str(tiny), "--format", "xml", "validate")
    assert result.code == 2
    assert "Invalid value for '--format'" in result.stderr


# --- nodes / schema / version / help ------------------------------------------------------------

def test_nodes_lists_the_fleet() -> None:
    result = invoke("-C", str(ROOT), "nodes")
    assert result.code == 0
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["NODE", "NAME", "ROLE", "UPTIME", "SERVICES", "DOMAIN"]
    assert [row[:4] for row in rows[1:]] == [
        ["node1", "НОДА1", "production", "24/7"],
        ["node2", "НОДА2", "dev", "on-demand"],
        ["node3", "НОДА3", "federation", "24/7"],
    ]
    assert [row[4] for row in rows[1:]] == ["15", "8", "9"]


def test_nodes_columns_line_up() -> None:
    lines = invoke("-C", str(ROOT), "nodes").stdout.splitlines()
    starts = {line.index(line.split()[2]) for line in lines}
    assert len(starts) == 1


def test_schema_matches_the_committed_file() -> None:
    result = invoke("schema")
    assert result.code == 0
    committed = (ROOT / "schema" / "nodegen.schema.json").read_text(encoding="utf-8")
    assert result.stdout == committed, "run: nodegen schema > schema/nodegen.schema.json"


def test_schema_describes_both_manifests() -> None:
    schema = json.loads(invoke("schema").stdout)
    assert {"Fleet", "Node", "Service"} <= set(schema["$defs"])
    port = schema["$defs"]["Service"]["properties"]["port"]
    assert port["description"] and schema["$defs"]["Service"]["additionalProperties"] is False


def test_every_manifest_points_at_the_schema() -> None:
    for path in sorted((ROOT / "nodes").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/nodegen.schema.json", path.name


def test_version() -> None:
    result = invoke("--version")
    assert (result.code, result.stdout) == (0, f"nodegen, version {__version__}\n")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^version = "(.*)"$', pyproject, re.M)[1] == __version__  # type: ignore[index]


def test_help_lists_every_command_with_examples() -> None:
    result = invoke("--help")
    assert result.code == 0
    for command in COMMANDS:
        assert re.search(rf"^  {command}\s", result.stdout, re.M), command
    assert "Examples:" in result.stdout
    assert "Exit codes: 0 ok, 1 problems or drift, 2 usage." in result.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_has_help(command: str) -> None:
    result = invoke(command, "--help")
    assert result.code == 0
    assert result.stdout.startswith(f"Usage: nodegen {command} ")


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "nodegen", "--version"], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert (proc.returncode, proc.stdout) == (0, f"nodegen, version {__version__}\n")


# --- exit codes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("validate", "node7"), ("render", "node7"), ("check", "node7"),
                                  ("diff", "node7"), ("verify", "node7")])
def test_unknown_node_is_usage_error(args: tuple[str, ...]) -> None:
    result = invoke("-C", str(ROOT), *args)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == "nodegen: no node 'node7' (nodes: node1, node2, node3)\n"


def test_no_workspace_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("validate")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == (f"nodegen: not inside a nodegen workspace: no nodes/fleet.yaml in {tmp_path.resolve()} "
                             "or above (use -C DIR)\n")


def test_workspace_option_without_fleet(tmp_path: Path) -> None:
    result = invoke("-C", str(tmp_path), "nodes")
    assert result.code == 2
    assert result.stderr == f"nodegen: {tmp_path}: not a nodegen workspace (no nodes/fleet.yaml)\n"


def test_render_needs_nodes_or_all(tiny: Path) -> None:
    result = invoke("-C", str(tiny), "render")
    assert result.code == 2
    assert result.stderr == "nodegen: name at least one node, or use --all (nodes: n1)\n"
    assert not (tiny / "output").exists()


def test_render_nodes_and_all_together(tiny: Path) -> None:
    result = invoke("-C", str(tiny), "render", "--all", "n1")
    assert (result.code, result.stderr) == (2, "nodegen: give node names or --all, not both\n")


@pytest.mark.parametrize("args", [("bogus",), ("diff",), ("render", "--bogus")])
def test_click_usage_errors_exit_2(tiny: Path, args: tuple[str, ...]) -> None:
    result = invoke("-C", str(tiny), *args)
    assert result.code == 2
    assert result.stderr.splitlines()[-1].startswith("Error: ")


def test_problems_exit_1_for_every_command(broken: Path) -> None:
    for args in (("validate",), ("nodes",), ("render", "--all"), ("check",), ("diff", "n1"), ("verify",)):
        result = invoke("-C", str(broken), *args)
        assert (args, result.code, result.stdout) == (args, 1, "")
        assert result.stderr.splitlines()[0] == PORT_9555


# --- finding the workspace -------------------------------------------------------------------------

def test_walks_up_from_a_subdirectory(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tiny / "output" / "n1" / "infra"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = invoke("validate")
    assert (result.code, result.stdout) == (0, "ok: 1 node(s), 3 service placement(s), 3 catalog service(s)\n")


def test_walks_up_to_the_nearest_workspace(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = write_workspace(tiny / "sub", {"nodes/fleet.yaml": sub(FLEET, "port: 7001", "port: 9555"),
                                           "nodes/n1.yaml": NODE})
    monkeypatch.chdir(inner / "nodes")
    assert invoke("validate").stderr.splitlines()[0] == PORT_9555


def test_workspace_option_wins_over_the_current_folder(tiny: Path, broken: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(broken)
    assert invoke("validate").code == 1
    assert invoke("-C", str(tiny), "validate").code == 0
    assert invoke("--workspace", str(tiny), "validate").code == 0


def test_relative_workspace_option(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny.parent)
    assert invoke("-C", tiny.name, "validate").code == 0


def test_render_from_a_subdirectory_writes_into_the_workspace(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny / "nodes")
    assert invoke("render", "n1").code == 0
    assert (tiny / "output" / "n1" / "docker-compose.all.yml").is_file()
    assert not (tiny / "nodes" / "output").exists()
