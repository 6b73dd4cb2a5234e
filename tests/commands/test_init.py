"""`nodegen init`: a fresh workspace for either preset passes validate, render, verify --strict and audit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Run, invoke


def ng(ws: Path, *args: str) -> Run:
    return invoke("-C", str(ws), *args)


@pytest.mark.tools
@pytest.mark.parametrize("nodes", [1, 3])
@pytest.mark.parametrize("preset", ["daarion", "minimal"])
def test_an_initialised_fleet_passes_everything(
    tmp_path: Path, preset: str, nodes: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = tmp_path / "acme"
    made = invoke("init", str(ws), "--project", "acme", "--nodes", str(nodes), "--preset", preset)
    assert made.code == 0, made.stderr
    ids = [f"node{k}" for k in range(1, nodes + 1)]
    assert {".gitignore", "README.md", "schema/nodegen.schema.json", "nodes/fleet.yaml",
            *(f"nodes/{n}.yaml" for n in ids)} == {p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file()}
    validate = ng(ws, "validate")
    assert validate.code == 0, validate.stderr
    assert f"ok: {nodes} node(s)" in validate.stdout + validate.stderr
    render = ng(ws, "render", "--all")
    assert render.code == 0, render.stderr
    assert {p.name for p in (ws / "output").iterdir() if p.is_dir()} >= set(ids)
    monkeypatch.setenv("PATH", os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    verify = ng(ws, "verify", "--all", "--strict")
    assert verify.code == 0, verify.stdout + verify.stderr
    for node in ids:
        assert f"{node}  promtool   ok" in verify.stdout
        audit = ng(ws, "audit", node)
        assert audit.code == 0, audit.stdout
        assert "10 of 10 items pass" in audit.stdout
        assert "✓ monitoring coverage:" in audit.stdout
    fleet = (ws / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    assert "project: acme" in fleet and "domain: acme.example" in fleet and "daarion" not in fleet.split("services:")[0]
    assert ng(ws, "check").code == 0


def test_the_schema_reference_works_from_the_new_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "w"
    assert invoke("init", str(ws)).code == 0
    first = (ws / "nodes" / "node1.yaml").read_text(encoding="utf-8").splitlines()[0]
    target = (ws / "nodes" / first.split("$schema=", 1)[1]).resolve()
    assert target == (ws / "schema" / "nodegen.schema.json").resolve()
    assert json.loads(target.read_text(encoding="utf-8")) == json.loads(invoke("schema").stdout)
    gitignore = (ws / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {".env", "!.env.example", "*.pem", "backups/"} <= set(gitignore)


def test_init_never_overwrites(tmp_path: Path) -> None:
    assert invoke("init", str(tmp_path)).code == 0
    again = invoke("init", str(tmp_path))
    assert again.code == 2
    assert "already has" in again.stderr and "nodes/fleet.yaml" in again.stderr
    assert invoke("init", str(tmp_path / "x"), "--project", "Bad Name").code == 2


def test_port_table_headings_are_a_parameter_of_the_standard(tmp_path: Path) -> None:
    ws = tmp_path / "w"
    assert invoke("init", str(ws), "--preset", "minimal").code == 0
    fleet = ws / "nodes" / "fleet.yaml"
    old = "    core: Infrastructure\n"
    assert old in fleet.read_text(encoding="utf-8")
    text = fleet.read_text(encoding="utf-8").replace(old, "    core: Базова інфраструктура\n")
    fleet.write_text(text, encoding="utf-8")
    assert ng(ws, "render", "--all").code == 0
    assert "### Базова інфраструктура\n" in (ws / "output" / "FLEET.md").read_text(encoding="utf-8")
    assert "### Базова інфраструктура\n" in (ws / "output" / "node1" / "docs" / "INFRASTRUCTURE.md").read_text(
        encoding="utf-8")
    assert "### Базова інфраструктура\n" in ng(ws, "ports").stdout
    assert json.loads(ng(ws, "--format", "json", "ports").stdout)["fleet"][0]["section"] == "Базова інфраструктура"
    fleet.write_text(text.replace("core: Базова інфраструктура", "core: 'a | b'"), encoding="utf-8")
    bad = ng(ws, "validate")
    assert bad.code == 1 and "error[schema] standard.port_tables.core" in bad.stderr


def test_the_minimal_preset_speaks_its_own_vocabulary(tmp_path: Path) -> None:
    ws = tmp_path / "w"
    assert invoke("init", str(ws), "--preset", "minimal").code == 0
    fleet = (ws / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    head = fleet.split("\nservices:\n")[0]
    for word in ("mvp", "dagi", "multimodal", "federation", "НОДА"):
        assert word not in head, word
    assert ng(ws, "--format", "json", "ports", "--next", "app").stdout.strip() == '{"class": "app", "port": 7000}'
    wrong = ng(ws, "ports", "--next", "mvp")
    assert wrong.code == 2 and "not a class with a port range (app, tools)" in wrong.stderr
