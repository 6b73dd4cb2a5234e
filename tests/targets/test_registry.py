"""A target is local: one registry entry (here a throwaway one) is rendered, audited and verified with no other edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nodegen.checksums import SUM_FILE, Files, parse_sum
from nodegen.pipeline import load_fleet
from nodegen.targets import TARGETS, Check, Target
from nodegen.verify import verify_node
from nodegen.view.resolve import NodeView
from nodegen.workspace import Workspace
from tests.conftest import ROOT, invoke

PATH = "notes/ports.txt"  # a top-level folder no other target writes


def render_notes(view: NodeView) -> Files:
    return {PATH: "".join(f"{s.name} {s.port}\n" for s in view.services)}


THROWAWAY = Target(render_notes, ("notes/",), checks=(
    Check("notes", "command", (PATH,), ("grep", "-q", "^postgres 5432$"), install="any POSIX system"),))


@pytest.fixture
def throwaway(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> Path:
    monkeypatch.setitem(TARGETS, "throwaway", THROWAWAY)
    monkeypatch.setenv("NODEGEN_NO_CACHE", "1")
    shutil.copy(ROOT / ".gitignore", workspace / ".gitignore")
    return workspace


def test_a_registered_target_is_rendered_and_listed_in_the_checksums(throwaway: Path) -> None:
    files = load_fleet(Workspace(throwaway)).render("node1")
    assert files[PATH].startswith("agents-service 7002\n")
    assert PATH in parse_sum(files[SUM_FILE])
    result = invoke("-C", str(throwaway), "render", "node1")
    assert result.code == 0, result.stderr
    assert (throwaway / "output" / "node1" / PATH).read_text(encoding="utf-8") == files[PATH]
    assert invoke("-C", str(throwaway), "check", "node1").code == 0
    (throwaway / "output" / "node1" / PATH).write_text("edited\n", encoding="utf-8")
    assert invoke("-C", str(throwaway), "check", "node1").stderr.startswith(f"node1/{PATH}: stale\n")


def test_audit_takes_the_layout_from_the_registry(throwaway: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("-C", str(throwaway), "render", "--all").code == 0
    layout = next(line for line in invoke("-C", str(throwaway), "audit", "node1").stdout.splitlines()
                  if "standard directory layout" in line)
    assert layout.startswith("✓") and "notes/" in layout
    monkeypatch.delitem(TARGETS, "throwaway")  # the same folder, once no target writes it
    layout = invoke("-C", str(throwaway), "audit", "node1").stdout
    assert "    notes: not part of the standard's node layout\n" in layout


def test_verify_runs_the_checks_a_registry_entry_names(throwaway: Path) -> None:
    fleet = load_fleet(Workspace(throwaway))
    verdicts = {r.tool: r.status for r in verify_node(fleet.view("node1"))}
    assert verdicts["notes"] == "ok"
    assert list(verdicts)[-1] == "notes"  # after the shipped targets' checks, in registry order
    broken = {**fleet.render("node1"), PATH: "gateway-nginx 443\n"}
    assert {r.tool: r.status for r in verify_node(fleet.view("node1"), broken)}["notes"] == "failed"
