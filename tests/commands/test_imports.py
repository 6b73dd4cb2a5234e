"""Each command imports only what it needs (docs/performance.md): checked by module, never by time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Runs the CLI as the console script does, then lists the modules the process imported.
PROBE = """
import sys
from nodegen.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def imported(workspace: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, "-C", str(workspace), *args], capture_output=True,
                          text=True, cwd=workspace, env={**os.environ, **(env or {})}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.splitlines())


@pytest.mark.parametrize("command", [("validate",), ("nodes",)])
def test_validate_and_nodes_build_no_view_and_import_no_templates(workspace: Path, command: tuple[str, ...]) -> None:
    modules = imported(workspace, *command)
    assert "nodegen.load.model" in modules  # the probe really ran the command
    assert not {"nodegen.view.resolve", "jinja2", "nodegen.templating", "nodegen.targets"} & modules
    assert not {"pydantic", "pydantic_core", "nodegen.load.wire", "nodegen.load.diagnose"} & modules


def test_a_cold_check_and_render_of_a_valid_fleet_import_no_pydantic(tmp_path: Path) -> None:
    ws = shipped(tmp_path)
    for command in (("check", "--all"), ("render", "--all", "--force")):
        modules = imported(ws, *command, env={"NODEGEN_NO_CACHE": "1"})
        assert "nodegen.load.model" in modules and "jinja2" in modules
        assert not {"pydantic", "pydantic_core", "nodegen.load.wire"} & modules


def test_an_invalid_manifest_is_worded_by_the_wire_models(tmp_path: Path) -> None:
    ws = shipped(tmp_path)
    fleet = ws / "nodes" / "fleet.yaml"
    fleet.write_text(fleet.read_text(encoding="utf-8").replace("project: daarion", "project: daarion\nprojekt: x"),
                     encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", PROBE, "-C", str(ws), "validate"], capture_output=True, text=True,
                          cwd=ws, timeout=120)
    assert proc.returncode == 1
    lines = set(proc.stderr.splitlines())  # the problems, then the modules
    assert "nodes/fleet.yaml:5:1: error[schema] unknown key 'projekt' in top level; did you mean 'project'?" in lines
    assert {"pydantic", "nodegen.load.wire", "nodegen.load.diagnose"} <= lines


def shipped(tmp_path: Path) -> Path:
    """The shipped nodes/ and output/ in a scratch workspace (no .nodegen-cache)."""
    shutil.copytree(ROOT / "nodes", tmp_path / "nodes")
    shutil.copytree(ROOT / "output", tmp_path / "output", symlinks=True)
    return tmp_path


def test_cold_check_imports_what_it_renders_with(tmp_path: Path) -> None:
    ws = shipped(tmp_path)
    modules = imported(ws, "check", "--all", env={"NODEGEN_NO_CACHE": "1"})
    assert {"nodegen.view.resolve", "jinja2", "nodegen.targets"} <= modules


def test_cached_check_imports_neither_pydantic_nor_jinja(tmp_path: Path) -> None:
    ws = shipped(tmp_path)
    imported(ws, "check", "--all")  # fills .nodegen-cache/
    modules = imported(ws, "check", "--all")
    assert "nodegen.cache" in modules
    assert not {"pydantic", "jinja2", "yaml", "nodegen.view.resolve"} & modules
