"""Exporters: placed beside what they watch, scraped, probed from outside, and accepted by the real tools."""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, invoke, require_tool

OUTPUT = ROOT / "output"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def services(node: str) -> dict[str, Any]:
    data: dict[str, Any] = load(OUTPUT / node / "docker-compose.all.yml")["services"]
    return data


def jobs(node: str = "node1") -> dict[str, dict[str, Any]]:
    config = load(OUTPUT / node / "infra" / "prometheus" / "prometheus.yml")
    return {j["job_name"]: j for j in config["scrape_configs"]}


def test_exporters_follow_what_they_watch() -> None:
    expected = {
        "node1": {"node-exporter", "postgres-exporter", "redis-exporter", "nats-exporter", "nginx-exporter",
                  "blackbox-exporter"},
        "node2": {"node-exporter", "postgres-exporter", "redis-exporter", "nats-exporter", "nginx-exporter"},
        "node3": {"node-exporter", "postgres-exporter", "redis-exporter", "nats-exporter", "nginx-exporter"},
    }
    for node, wanted in expected.items():
        found = {name for name in services(node) if name.endswith("-exporter")}
        assert found == wanted, node
        manifest = (ROOT / "nodes" / f"{node}.yaml").read_text(encoding="utf-8")
        assert "exporter" not in manifest  # placed by `beside:`, never listed


def test_exporters_are_internal_pinned_labelled_and_least_privileged() -> None:
    for node in ("node1", "node2", "node3"):
        for name, svc in services(node).items():
            if not name.endswith("-exporter"):
                continue
            assert "ports" not in svc, (node, name)
            assert re.fullmatch(r"[a-z0-9/_.-]+:v?\d+\.\d+\.\d+(-alpine)?", svc["image"]), svc["image"]
            assert svc["labels"]["com.daarion.tier"] == "monitoring"
            assert svc["labels"]["com.daarion.phase"] == "monitor"
            assert "no-new-privileges:true" in svc["security_opt"]
            for volume in svc.get("volumes", []):
                assert volume.endswith(":ro"), volume
    node_exporter = services("node1")["node-exporter"]
    assert "/:/host:ro" in node_exporter["volumes"]
    assert "./metrics:/textfile:ro" in node_exporter["volumes"]
    assert "--path.rootfs=/host" in node_exporter["command"]
    assert "--collector.textfile.directory=/textfile" in node_exporter["command"]


def test_healthchecks_use_the_images_own_binaries_or_none() -> None:
    svc = services("node1")
    ports = {"node-exporter": 9100, "postgres-exporter": 9187, "redis-exporter": 9121, "blackbox-exporter": 9115}
    for name, port in ports.items():
        test = svc[name]["healthcheck"]["test"]
        assert test[:5] == ["CMD", "wget", "-q", "-O", "/dev/null"], name  # busybox wget in these images
        assert test[5].startswith(f"http://127.0.0.1:{port}/"), test
    for name in ("nats-exporter", "nginx-exporter"):  # built FROM scratch: Prometheus' up is the check
        assert "healthcheck" not in svc[name]  # `disable: true` would fail `up --wait`
        assert not any(name in (s.get("depends_on") or {}) for s in svc.values())
    health = (OUTPUT / "node1" / "scripts" / "health-check.sh").read_text(encoding="utf-8")
    assert "postgres-exporter" in health and "nats-exporter" not in health


def test_exporter_connects_as_its_own_monitor_role() -> None:
    pg = services("node1")["postgres-exporter"]
    assert pg["environment"]["DATA_SOURCE_USER"] == "postgres_exporter"
    assert pg["environment"]["DATA_SOURCE_PASS"].startswith("${POSTGRES_EXPORTER_DB_PASSWORD:?")
    assert pg["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    env = (OUTPUT / "node1" / ".env.example").read_text(encoding="utf-8")
    assert "POSTGRES_EXPORTER_DB_PASSWORD=CHANGE_ME" in env and "DATA_SOURCE_PASS" not in env


def test_every_exporter_is_scraped_locally_or_through_its_gateway() -> None:
    found = jobs()
    for node in ("node1", "node2", "node3"):
        for name in services(node):
            if name.endswith("-exporter"):
                job = name if node == "node1" else f"{node}/{name}"
                assert job in found, job
    assert found["node3/postgres-exporter"]["metrics_path"] == "/metrics/postgres-exporter"
    conf = (OUTPUT / "node3" / "infra" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert "location = /metrics/postgres-exporter {" in conf


def test_stub_status_listens_on_the_node_network_only() -> None:
    for node in ("node1", "node2", "node3"):
        conf = (OUTPUT / node / "infra" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
        block = re.search(r"server \{\n        listen 8081;\n.*?\n    \}\n", conf, re.S)
        assert block is not None and "stub_status;" in block.group(0), node
        gateway = services(node)["gateway-nginx"]
        assert gateway["ports"] == ["80:80/tcp", "443:443/tcp"]
        assert services(node)["nginx-exporter"]["command"] == [
            "--nginx.scrape-uri=http://gateway-nginx:8081/stub_status"]


def test_blackbox_probes_every_public_route_and_gateway() -> None:
    found = jobs()
    routes = [t for c in found["probe-routes"]["static_configs"] for t in c["targets"]]
    gateways = [t for c in found["probe-gateways"]["static_configs"] for t in c["targets"]]
    assert gateways == ["https://gateway.daarion.city/health", "https://node2.daarion.city/health",
                        "https://node3.daarion.city/health"]
    assert "https://gateway.daarion.city/api/agents/health" in routes
    assert "https://node2.daarion.city/api/stt/health" in routes
    assert "https://node3.daarion.city/api/governance/health" in routes
    assert len(routes) == 8 + 4 + 3  # every routed service of node1, node2 and node3
    for job in ("probe-routes", "probe-gateways"):
        assert found[job]["relabel_configs"][-1] == {"target_label": "__address__",
                                                      "replacement": "blackbox-exporter:9115"}
    blackbox = load(OUTPUT / "node1" / "infra" / "blackbox" / "blackbox.yml")
    assert blackbox["modules"]["http_2xx"]["http"]["fail_if_not_ssl"] is True


def test_a_node_that_lists_an_exporter_gets_one(workspace: Path) -> None:
    """Listing one by hand changes nothing: `beside:` placement and the list agree."""
    node1 = workspace / "nodes" / "node1.yaml"
    node1.write_text(node1.read_text(encoding="utf-8").replace("  - postgres\n", "  - postgres\n  - node-exporter\n"),
                     encoding="utf-8")
    assert invoke("-C", str(workspace), "render", "node1").code == 0
    assert invoke("-C", str(workspace), "check", "node1").code == 0  # same files as the shipped output


def set_fleet(ws: Path, old: str, new: str) -> None:
    fleet = ws / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    fleet.write_text(text.replace(old, new), encoding="utf-8")


def test_beside_and_probe_mistakes_are_problems(workspace: Path) -> None:
    set_fleet(workspace, "    beside: redis\n", "    beside: redis-cluster\n")
    set_fleet(workspace, "    host_mounts: {/: /host}\n", "    host_mounts: {proc: /host/proc}\n")
    set_fleet(workspace, "    needs: [redis]\n    health:\n      path: /health\n",
              "    needs: [redis, nats-exporter]\n    health:\n      path: /health\n")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert re.search(r"fleet.yaml:\d+:\d+: error\[unknown-dependency\] redis-exporter: beside 'redis-cluster' "
                     r"is not a catalog service", result.stderr), result.stderr
    assert "error[value-syntax] node-exporter: host mount 'proc' -> '/host/proc' needs two absolute paths" \
        in result.stderr
    assert "error[health-endpoint] redis-exporter needs nats-exporter, which has no healthcheck" in result.stderr


def test_stub_status_port_is_reserved(workspace: Path) -> None:
    node3 = workspace / "nodes" / "node3.yaml"
    node3.write_text(node3.read_text(encoding="utf-8") + "gateway:\n  internal_port: 8081\n", encoding="utf-8")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1
    assert re.search(r"nodes/node3.yaml:\d+:\d+: error\[port-conflict\] gateway port 8081 is its stub_status "
                     r"listener", result.stderr), result.stderr


README_RECIPE = re.compile(r"```sh\n( *salt=\$\(openssl rand -hex 4\)\n.*?)```", re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str, user: str, password: str) -> int:
    request = urllib.request.Request(url)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.tools
def test_readme_htpasswd_recipe_is_what_nginx_accepts(tmp_path: Path) -> None:
    """The METRICS_HTPASSWD line README tells operators to make: nginx lets that password in, no other."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    require_tool("nginx", nginx is not None)
    assert nginx is not None
    recipe = README_RECIPE.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert recipe is not None
    script = textwrap.dedent(recipe.group(1)).replace("\\\n", "")
    env = {"PATH": os.environ["PATH"], "METRICS_SCRAPE_PASSWORD": "s3cret-Pass_1"}
    made = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30, check=True)
    line = made.stdout.strip()
    assert line.startswith("METRICS_HTPASSWD='prometheus:{SSHA}") and "$" not in line
    (tmp_path / "htpasswd").write_text(line.split("=", 1)[1].strip("'") + "\n", encoding="utf-8")
    port = free_port()
    (tmp_path / "www" / "metrics").mkdir(parents=True)
    (tmp_path / "www" / "metrics" / "x").write_text("ok\n", encoding="utf-8")  # `return` would skip auth
    conf = tmp_path / "nginx.conf"
    # As root, nginx's workers would run as nobody and could not read the test's private folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(user + f"""daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /metrics/x {{
            auth_basic "metrics";
            auth_basic_user_file {tmp_path}/htpasswd;
            root {tmp_path}/www;
        }}
    }}
}}
""", encoding="utf-8")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/metrics/x"
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        assert get(url, "prometheus", "s3cret-Pass_1") == 200
        assert get(url, "prometheus", "wrong") == 401
        assert get(url, "someone", "s3cret-Pass_1") == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_exporter_reads_redis_password_from_env() -> None:
    for node in ("node1", "node2", "node3"):
        env = services(node)["redis-exporter"]["environment"]
        assert env["REDIS_PASSWORD"] == "${REDISCLI_AUTH:?REDISCLI_AUTH is required; set it in .env}", node
        example = (OUTPUT / node / ".env.example").read_text(encoding="utf-8")
        names = [line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")]
        assert names.count("REDISCLI_AUTH") == 1 and "REDIS_PASSWORD" not in names, node
        assert re.search(r"# secret: the Redis password.*\(used by redis, redis-exporter\)\nREDISCLI_AUTH=", example)


def test_borrowed_secret_must_name_a_secret_of_what_it_watches(workspace: Path) -> None:
    set_fleet(workspace, "source: REDISCLI_AUTH,", "source: REDIS_URL,")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert re.search(r"fleet.yaml:\d+:\d+: error\[secret-literal\] redis-exporter: REDIS_PASSWORD: source "
                     r"'REDIS_URL' must be a \{secret: true\} variable of a service it needs or sits beside "
                     r"\(redis\)", result.stderr), result.stderr


def test_borrowed_secret_must_be_secret(workspace: Path) -> None:
    set_fleet(workspace, "{secret: true, source: REDISCLI_AUTH,", "{source: REDISCLI_AUTH,")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1
    assert "error[schema] redis-exporter: REDIS_PASSWORD: source is for secrets only" in result.stderr
