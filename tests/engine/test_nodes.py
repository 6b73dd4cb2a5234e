"""node1, node2 and node3 of the shipped fleet, unedited, on a real Docker Engine: up, healthy, routed, scraped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from nodegen.verify import compose_binary
from nodegen.view.resolve import Svc
from tests.engine import images
from tests.engine.conftest import Node, gateway_paths, view

pytestmark = pytest.mark.engine

HTTPS = "https://127.0.0.1"
HTTP = "http://127.0.0.1"
SCRAPE_WAIT = 90.0


def built(svc: Svc) -> bool:
    return svc.build is not None


def test_every_service_runs_healthy_and_never_restarted(node: Node) -> None:
    model = node.model()
    containers = {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in node.containers()}
    assert sorted(containers) == sorted(model["services"])
    for name, info in containers.items():
        state = info["State"]
        assert state["Status"] == "running", f"{name}: {state}"
        assert info["RestartCount"] == 0, f"{name} restarted {info['RestartCount']} times"
        check = model["services"][name].get("healthcheck") or {}
        if check.get("disable") or not check.get("test") or check["test"][0] == "NONE":
            assert "Health" not in state, f"{name} has a health check compose does not declare"
            continue
        assert state.get("Health", {}).get("Status") == "healthy", f"{name}: {state.get('Health')}"


def test_gateway_health_over_http_and_https(node: Node) -> None:
    for reply in node.probe([{"kind": "http", "url": f"{base}/health"} for base in (HTTP, HTTPS)]):
        assert reply["status"] == 200, reply
        assert '"status":"healthy"' in reply["body"]


def test_http_redirects_to_https(node: Node) -> None:
    (reply,) = node.probe([{"kind": "http", "url": f"{HTTP}/api/anything/x?y=1", "host": view(node.name).domain}])
    assert reply["status"] == 301, reply
    assert reply["headers"]["location"] == f"https://{view(node.name).domain}/api/anything/x?y=1"


def public(svc: Svc) -> bool:
    """Routes for the internet; `fleet` routes answer 403 to the probe, which is no fleet peer's address."""
    return svc.visibility == "public"


def test_every_route_reaches_its_service_by_docker_dns(node: Node) -> None:
    routed = list(view(node.name).routed)
    assert routed, f"{node.name} routes nothing"
    steps = [{"kind": "http", "url": f"{HTTPS}/api/{s.route}/items/42?q=a%20b", "host": view(node.name).domain}
             if built(s) else {"kind": "http", "url": f"{HTTPS}/api/{s.route}{s.health_path}"} for s in routed]
    for svc, reply in zip(routed, node.probe(steps), strict=True):
        if not public(svc):
            assert reply["status"] == 403, (svc.name, reply)
            continue
        assert reply["status"] == 200, (svc.name, reply)
        if built(svc):
            seen = _json(reply)
            kept = "" if svc.proxy.strip_prefix else f"/api/{svc.route}"
            assert (seen["service"], seen["port"], seen["path"]) == (svc.name, svc.port, f"{kept}/items/42?q=a%20b")
            assert seen["headers"]["x-forwarded-proto"] == "https"


def test_every_websocket_channel_upgrades_and_echoes(node: Node) -> None:
    channels = [(s, c) for s in view(node.name).routed if public(s) for c in s.websocket]
    if not channels:
        pytest.skip(f"{node.name} declares no websocket channel")
    steps = [{"kind": "ws", "url": f"wss://127.0.0.1/ws/{s.route}/{c}/room-1", "message": f"hello {s.name} {c}"}
             for s, c in channels]
    for (svc, channel), reply in zip(channels, node.probe(steps), strict=True):
        assert "error" not in reply, (svc.name, channel, reply)
        assert reply["greeting"]["service"] == svc.name
        kept = "" if svc.proxy.strip_prefix else f"/{svc.route}"
        assert reply["greeting"]["path"] == f"/ws{kept}/{channel}/room-1"
        assert reply["echo"] == f"hello {svc.name} {channel}"


def test_services_metrics_are_not_reachable_through_the_gateway(node: Node) -> None:
    routed = view(node.name).routed
    paths = [f"/api/{s.route}/metrics" for s in routed] + [f"/api/{s.route}/metrics/" for s in routed]
    paths += [f"/metrics/{s.name}" for s in view(node.name).scraped]
    for path, reply in zip(paths, node.probe([{"kind": "http", "url": f"{HTTPS}{p}"} for p in paths]), strict=True):
        # Refused, or answered by the frontend served at / (an SPA's page, never the service's metrics).
        # 401: the gateway's /metrics/<service> asks the fleet's scraping Prometheus for its password.
        assert reply["status"] in (200, 401, 403, 404), (path, reply)
        assert "stub_requests_total" not in reply.get("body", ""), (path, reply)
        if reply["status"] == 200:
            spa = view(node.name).spa
            assert spa is not None and _json(reply)["service"] == spa.name, (path, reply)


def test_prometheus_reports_every_local_job_up(node: Node) -> None:
    if not view(node.name).runs_prometheus:
        pytest.skip(f"{node.name} runs no Prometheus")
    address = _address(node, "prometheus")
    remote = {r.job for r in view(node.name).scrape_remote}
    deadline = time.monotonic() + SCRAPE_WAIT
    while True:
        (reply,) = node.probe([{"kind": "http", "url": f"http://{address}:9090/api/v1/targets"}])
        targets = _json(reply)["data"]["activeTargets"]
        jobs = {t["labels"]["job"]: t for t in targets}
        local = {job: t for job, t in jobs.items() if job not in remote}
        down = {job: t.get("lastError") for job, t in local.items() if t["health"] != "up"}
        if not down or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert remote <= set(jobs), f"remote jobs missing: {remote - set(jobs)}"
    assert {s.name for s in view(node.name).scraped} <= set(local)
    assert not down, f"local jobs not up: {down}"


def _json(reply: dict[str, Any]) -> Any:
    return json.loads(reply["body"])


def _address(node: Node, service: str) -> str:
    info = next(c for c in node.containers() if c["Config"]["Labels"]["com.docker.compose.service"] == service)
    networks = info["NetworkSettings"]["Networks"]
    return str(next(iter(networks.values()))["IPAddress"])


def test_matrix_is_served_by_synapse_through_the_gateway(node: Node) -> None:
    if view(node.name).service("matrix-synapse") is None:
        pytest.skip(f"{node.name} runs no Synapse")
    token = node.env["MATRIX_BRIDGE_TOKEN"]
    versions, well_known, whoami = node.probe([
        {"kind": "http", "url": f"{HTTPS}/_matrix/client/versions"},
        {"kind": "http", "url": f"{HTTPS}/.well-known/matrix/server"},
        {"kind": "http", "url": f"{HTTPS}/_matrix/client/v3/account/whoami",
         "headers": {"Authorization": f"Bearer {token}"}},
    ])
    assert versions["status"] == 200 and "versions" in _json(versions), versions
    server = next(e.value for e in view(node.name).service("matrix-synapse").env  # type: ignore[union-attr]
                  if e.name == "SYNAPSE_SERVER_NAME")
    assert well_known["status"] == 200 and _json(well_known)["m.server"].startswith(server), well_known
    # The bridge's registration is loaded: its as_token from .env authenticates as the bridge's user.
    assert whoami["status"] == 200, whoami
    assert _json(whoami)["user_id"] == f"@matrix-bridge:{server}"


def test_synapse_metrics_listener_is_the_catalogs(node: Node) -> None:
    synapse = view(node.name).service("matrix-synapse")
    if synapse is None:
        pytest.skip(f"{node.name} runs no Synapse")
    url = f"http://{_address(node, synapse.name)}:{synapse.metrics_port}{synapse.metrics_path}"
    (reply,) = node.probe([{"kind": "http", "url": url}])
    assert reply["status"] == 200, reply
    assert "synapse_" in reply["body"]


def test_synapse_database_has_c_collation(node: Node) -> None:
    if view(node.name).service("matrix-synapse") is None:
        pytest.skip(f"{node.name} runs no Synapse")
    query = "SELECT datcollate, datctype, pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'synapse'"
    proc = node.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-tAc", query)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "C|C|synapse"


def test_health_check_script_passes(node: Node) -> None:
    proc = node.run_script("health-check.sh")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    probed = [s for s in view(node.name).services if s.health_test != ("NONE",)]  # no probe: Prometheus' up
    for svc in probed:
        assert svc.name in proc.stdout
    assert f"{len(probed)} of {len(probed)} services healthy" in proc.stdout


def test_backup_then_restore_brings_back_a_dropped_row(node: Node, tmp_path: Path) -> None:
    if view(node.name).service("postgres") is None:
        pytest.skip(f"{node.name} runs no PostgreSQL")
    database = _postgres_db(node)
    psql = ("exec", "-T", "postgres", "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", database, "-tAc")
    setup = node.compose(*psql, "CREATE TABLE engine_probe (id int PRIMARY KEY, note text);"
                                "INSERT INTO engine_probe VALUES (1, 'kept by the backup')")
    assert setup.returncode == 0, setup.stderr
    # --no-ship: the backup node is another host, out of this namespace's reach.
    backup = node.run_script("backup-db.sh", "--no-prune", "--no-ship", env={"BACKUP_DIR": str(tmp_path)})
    assert backup.returncode == 0, backup.stdout + backup.stderr
    dumps = sorted(tmp_path.glob("*.sql"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 0, backup.stdout
    drop = node.compose(*psql, "DELETE FROM engine_probe WHERE id = 1")
    assert drop.returncode == 0, drop.stderr
    assert node.compose(*psql, "SELECT count(*) FROM engine_probe").stdout.strip() == "0"
    restore = node.run_script("backup-db.sh", "--restore", str(dumps[0]), "--yes", env={"BACKUP_DIR": str(tmp_path)})
    assert restore.returncode == 0, restore.stdout + restore.stderr
    row = node.compose(*psql, "SELECT note FROM engine_probe WHERE id = 1")
    assert row.stdout.strip() == "kept by the backup", row.stdout + row.stderr


def test_rate_limit_answers_429_after_the_burst(node: Node) -> None:
    routed = [s for s in view(node.name).routed if public(s)]
    if not routed:
        pytest.skip(f"{node.name} has no public route")
    (reply,) = node.probe([{"kind": "burst", "count": 80, "url": f"{HTTPS}/api/{routed[0].route}/"}])
    statuses = reply["statuses"]
    assert len(statuses) == 80, statuses
    assert statuses[0] == 200, statuses
    assert 429 in statuses, statuses


def _psql_as(node: Node, role: str, password: str, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    """psql inside the postgres container as `role`, over the network by its service name (password
    authentication, as a service connects: the image trusts only local and 127.0.0.1 connections)."""
    return node.compose("exec", "-T", "-e", f"PGPASSWORD={password}", "postgres", "psql", "-v", "ON_ERROR_STOP=1",
                        "--no-psqlrc", "-h", "postgres", "-U", role, "-d", database, "-tAc", sql)


def _container(node: Node, service: str) -> dict[str, Any]:
    return next(c for c in node.containers() if c["Config"]["Labels"]["com.docker.compose.service"] == service)


def test_each_service_role_writes_its_own_schema_and_cannot_read_another(node: Node) -> None:
    v = view(node.name)
    owners = [r for r in v.pg_roles if r.rights == "schema"]
    if len(owners) < 2:
        pytest.skip(f"{node.name} has fewer than two services with a role of their own")
    mine, other = owners[0], owners[1]
    db = v.pg_database
    wrote = _psql_as(node, mine.name, node.env[mine.password_env], db,
                     "CREATE TABLE engine_owned (id int); INSERT INTO engine_owned VALUES (1);"
                     "SELECT schemaname || ':' || (SELECT count(*) FROM engine_owned) FROM pg_tables "
                     "WHERE tablename = 'engine_owned'")
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout.strip().splitlines()[-1] == f"{mine.name}:1", wrote.stdout  # created in its own schema
    read = _psql_as(node, other.name, node.env[other.password_env], db, f'SELECT * FROM "{mine.name}".engine_owned')
    assert read.returncode != 0 and f"permission denied for schema {mine.name}" in read.stderr, read.stderr
    public_table = _psql_as(node, other.name, node.env[other.password_env], db, "CREATE TABLE public.engine_x (i int)")
    assert public_table.returncode != 0 and "permission denied for schema public" in public_table.stderr
    for elsewhere in ("postgres", *(("synapse",) if v.service("matrix-synapse") else ())):
        denied = _psql_as(node, mine.name, node.env[mine.password_env], elsewhere, "SELECT 1")
        assert denied.returncode != 0 and "permission denied for database" in denied.stderr, (elsewhere, denied.stderr)
    superuser = node.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-tAc",
                             "SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolsuper")
    assert superuser.stdout.strip() == "postgres", superuser.stdout + superuser.stderr


def test_each_service_database_url_logs_in_as_its_own_role(node: Node) -> None:
    roles = [r for r in view(node.name).pg_roles if r.rights == "schema"]
    if not roles:
        pytest.skip(f"{node.name} has no service with a role of its own")
    for role in roles:
        env = dict(e.split("=", 1) for e in _container(node, role.service)["Config"]["Env"])
        # From the postgres container, where `postgres` resolves too: the service's very URL.
        who = node.compose("exec", "-T", "postgres", "psql", "--no-psqlrc", env["DATABASE_URL"], "-tAc",
                           "SELECT current_user || ':' || current_schema()")
        assert who.returncode == 0, who.stderr
        assert who.stdout.strip() == f"{role.name}:{role.name}"


def test_postgres_exporter_reports_pg_up_with_its_own_role(node: Node) -> None:
    role = next((r for r in view(node.name).pg_roles if r.rights == "monitor"), None)
    if role is None:
        pytest.skip(f"{node.name} runs no PostgreSQL exporter")
    info = _container(node, role.service)
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    assert env["DATA_SOURCE_USER"] == role.name
    networks = info["NetworkSettings"]["Networks"]
    address = networks[f"{view(node.name).network}"]["IPAddress"]
    deadline = time.monotonic() + SCRAPE_WAIT
    while True:
        (reply,) = node.probe([{"kind": "http", "url": f"http://{address}:9187/metrics"}])
        up = re.search(r"^pg_up (\S+)$", reply.get("body", ""), re.M)
        if (up and up[1] == "1") or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert up and up[1] == "1", reply.get("body", "")[-2000:]
    member = node.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-tAc",
                          f"SELECT rolsuper, pg_has_role('{role.name}', 'pg_monitor', 'member') FROM pg_roles "
                          f"WHERE rolname = '{role.name}'")
    assert member.stdout.strip() == "f|t", member.stdout + member.stderr


CONNECT = """\
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
except OSError as exc:
    print(repr(exc))
    sys.exit(1)
"""


def _tcp_from(container: dict[str, Any], address: str, port: int) -> subprocess.CompletedProcess[str]:
    """A TCP connect from inside the container's own network namespace (its interfaces, its routes)."""
    pid = str(container["State"]["Pid"])
    return subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", CONNECT, address, str(port)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_data_services_are_unreachable_from_the_gateway(node: Node) -> None:
    v = view(node.name)
    running = {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in node.containers()}
    gateway = running[v.gateway_service.name]
    data = [s for s in v.services if s.protocol == "tcp" and not s.gateway]
    assert {s.name for s in data} >= {"redis", "nats"} & {s.name for s in v.services}
    for svc in data:
        address = running[svc.name]["NetworkSettings"]["Networks"][v.data_network]["IPAddress"]
        assert node.docker("exec", gateway["Name"].lstrip("/"), "getent", "hosts",
                           svc.name).returncode != 0, f"{svc.name} resolves on the gateway"
        blocked = _tcp_from(gateway, address, svc.port)
        assert blocked.returncode == 1, f"the gateway reaches {svc.name}: {blocked.stdout}{blocked.stderr}"
        dependants = [s for s in v.services if svc.name in s.depends]
        assert dependants, svc.name
        for dep in dependants[:2]:
            assert node.docker("exec", running[dep.name]["Name"].lstrip("/"), "getent", "hosts",
                               svc.name).returncode == 0, (dep.name, svc.name)
            reached = _tcp_from(running[dep.name], address, svc.port)
            assert reached.returncode == 0, (dep.name, svc.name, reached.stdout, reached.stderr)


def _caps(values: list[str] | None) -> list[str]:
    return sorted(c.removeprefix("CAP_") for c in values or [])


def test_every_container_runs_with_the_hardening_compose_declares(node: Node) -> None:
    model = node.model()["services"]
    for info in node.containers():
        name = info["Config"]["Labels"]["com.docker.compose.service"]
        declared, host = model[name], info["HostConfig"]
        assert _caps(host["CapDrop"]) == ["ALL"], name
        assert _caps(host["CapAdd"]) == _caps(declared.get("cap_add")), name
        assert host["ReadonlyRootfs"] is bool(declared.get("read_only")), name
        assert "no-new-privileges:true" in host["SecurityOpt"], name
        if declared.get("user"):  # otherwise the image's own user (its entrypoint drops root itself)
            assert info["Config"]["User"] == declared["user"], name
        assert sorted(host.get("Tmpfs") or {}) == sorted(declared.get("tmpfs") or []), name
        limits = declared["deploy"]["resources"]["limits"]
        assert host["Memory"] == int(limits["memory"]), name
        assert host["NanoCpus"] == round(float(limits["cpus"]) * 1e9), name
        assert host["PidsLimit"] == int(limits["pids"]), name
        assert host["Memory"] > 0 and host["PidsLimit"] > 0, name
# Each exporter's own word on its backend (its target being up says only that the exporter answers).
# The NATS and nginx exporters are stand-ins reporting <kind>_up (docs/decisions.md, engine tests).
LIVENESS = {"postgres-exporter": "pg_up", "redis-exporter": "redis_up", "nats-exporter": "nats_up",
            "nginx-exporter": "nginx_up", "node-exporter": "node_exporter_build_info"}


def _query(node: Node, address: str, expr: str) -> list[dict[str, Any]]:
    (reply,) = node.probe([{"kind": "http", "url": f"http://{address}:9090/api/v1/query?query={quote(expr)}"}])
    assert reply["status"] == 200, reply
    result: list[dict[str, Any]] = _json(reply)["data"]["result"]
    return result


def _values(node: Node, address: str, expr: str) -> list[str]:
    return [str(r["value"][1]) for r in _query(node, address, expr)]


def test_every_exporter_says_its_backend_is_reachable(node: Node) -> None:
    if not view(node.name).runs_prometheus:
        pytest.skip(f"{node.name} runs no Prometheus")
    exporters = [s.name for s in view(node.name).services if s.name in LIVENESS]
    assert exporters, f"{node.name} runs no exporter"
    address = _address(node, "prometheus")
    deadline = time.monotonic() + SCRAPE_WAIT
    while True:
        seen = {name: _values(node, address, f'{LIVENESS[name]}{{job="{name}"}}') for name in exporters}
        bad = {name: values for name, values in seen.items() if values != ["1"]}
        if not bad or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not bad, f"exporters whose backend is not reachable (value of their liveness metric): {bad}"


ENGINE_OVERRIDE = "docker-compose.engine.yml"


def _probe_from_inside(node: Node) -> None:
    """What the namespace lacks for the blackbox probes of this node's own routes: DNS of its domain (an alias
    of the gateway on its network) and trust in the test's certificate (the blackbox exporter's CA bundle).
    A test-only override file; the generated files stay as rendered."""
    model = node.model()
    gateway = view(node.name).gateway_service.name
    network = next(iter(model["services"][gateway]["networks"]))
    cert = gateway_paths(node.folder, model)["ssl_certificate"]
    override = {"services": {
        gateway: {"networks": {network: {"aliases": [view(node.name).domain]}}},
        "blackbox-exporter": {"volumes": [{"type": "bind", "source": str(cert), "read_only": True,
                                           "target": "/etc/ssl/certs/ca-certificates.crt"}]}}}
    (node.folder / ENGINE_OVERRIDE).write_text(json.dumps(override), encoding="utf-8")
    binary = compose_binary()
    assert binary is not None
    up = subprocess.run([binary, "-f", "docker-compose.all.yml", "-f", ENGINE_OVERRIDE, "--env-file", ".env",
                         "up", "-d", "--no-deps", "--wait", gateway, "blackbox-exporter"], cwd=node.folder,
                        env=node.engine.env, capture_output=True, text=True, timeout=300, check=False)
    assert up.returncode == 0, up.stderr


def test_blackbox_probes_of_the_nodes_public_routes_succeed(node: Node) -> None:
    v = view(node.name)
    if not (v.runs_prometheus and v.service("blackbox-exporter")):
        pytest.skip(f"{node.name} runs no blackbox exporter")
    _probe_from_inside(node)
    public_routes = [f"https://{v.domain}/api/{s.route}/" for s in v.routed if public(s)]
    assert public_routes, f"{node.name} has no public route"
    address = _address(node, "prometheus")
    deadline = time.monotonic() + SCRAPE_WAIT
    while True:
        probes = {r["metric"]["instance"]: str(r["value"][1]) for r in _query(
            node, address, f'probe_success{{job=~"probe-routes|probe-gateways", node="{node.name}"}}')}
        ours = {i: ok for i, ok in probes.items()
                if i.startswith(tuple(public_routes)) or i == f"https://{v.domain}/health"}
        if (ours and all(ok == "1" for ok in ours.values())) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert len(ours) == len(public_routes) + 1, f"probes of {node.name}'s public routes and gateway: {probes}"
    assert all(ok == "1" for ok in ours.values()), f"failed probes: {ours}"
    expiry = _values(node, address, f'probe_ssl_earliest_cert_expiry{{job="probe-gateways", node="{node.name}"}}')
    assert expiry and float(expiry[0]) > time.time(), expiry  # the certificate the gateway really serves


def _shorten(folder: Path) -> None:
    """The deployed copy waits seconds, not minutes: rules evaluated every 5s, PostgresDown `for: 10s`,
    Alertmanager's group_wait 1s; scrapes every 30s with a 28s timeout. Only these numbers change; routes and
    receivers do not."""
    prom = folder / "infra" / "prometheus" / "prometheus.yml"
    text = prom.read_text(encoding="utf-8")
    assert "  scrape_interval: 15s\n  evaluation_interval: 15s\n" in text
    # A scrape of postgres-exporter while PostgreSQL is down waits on its connection retries: a long timeout.
    prom.write_text(text.replace("  scrape_interval: 15s\n  evaluation_interval: 15s\n",
                                 "  scrape_interval: 30s\n  scrape_timeout: 28s\n  evaluation_interval: 5s\n"),
                    encoding="utf-8")
    rules = folder / "infra" / "prometheus" / "alerts.yml"
    text = rules.read_text(encoding="utf-8")
    block = re.compile(r"(- alert: PostgresDown\n\s+expr: [^\n]+\n\s+)for: \S+")
    assert len(block.findall(text)) == 2, "PostgresDown: one rule for always-on and one for on-demand nodes"
    rules.write_text(block.sub(r"\1for: 10s", text), encoding="utf-8")
    manager = folder / "infra" / "alertmanager" / "alertmanager.yml"
    text = manager.read_text(encoding="utf-8")
    assert text.count("  group_wait: 30s\n") == 1
    manager.write_text(text.replace("  group_wait: 30s\n", "  group_wait: 1s\n"), encoding="utf-8")


RECEIVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        print("POST", self.path, body.replace("\\n", " "), flush=True)
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def _receiver(node: Node) -> str:
    """A stub webhook receiver on the node's network (inside the namespace): it prints every POST."""
    name = f"engine-receiver-{node.name}"
    network = next(iter(next(c for c in node.containers() if c["Config"]["Labels"]["com.docker.compose.service"]
                             == "alertmanager")["NetworkSettings"]["Networks"]))
    node.docker("rm", "-f", name)
    run = node.docker("run", "-d", "--name", name, "--network", network, "--user", "nobody", images.BASE,
                      "python3", "-u", "-c", RECEIVER)
    assert run.returncode == 0, run.stderr
    return name


def _alert_state(node: Node, address: str, alert: str) -> str | None:
    (reply,) = node.probe([{"kind": "http", "url": f"http://{address}:9090/api/v1/alerts"}])
    states = [a["state"] for a in _json(reply)["data"]["alerts"] if a["labels"]["alertname"] == alert
              and a["labels"].get("node") == node.name]
    return "firing" if "firing" in states else (states[0] if states else None)


def test_stopped_postgres_pages_through_alertmanager(node: Node) -> None:
    """PostgreSQL stops; PostgresDown goes pending, then firing, and Alertmanager posts it to the receiver
    its route names (page for an always-on production node, notify for a dev one)."""
    v = view(node.name)
    if not (v.runs_prometheus and v.service("postgres-exporter") and v.service("alertmanager")):
        pytest.skip(f"{node.name} runs no Prometheus, PostgreSQL exporter and Alertmanager together")
    postgres = next(c["Name"].lstrip("/") for c in node.containers()
                    if c["Config"]["Labels"]["com.docker.compose.service"] == "postgres")
    receiver = _receiver(node)
    expected = "notify" if v.role == "dev" or v.uptime == "on-demand" else "page"
    try:
        _shorten(node.folder)
        for var, path in (("ALERTMANAGER_PAGE_WEBHOOK_URL", "page"), ("ALERTMANAGER_NOTIFY_WEBHOOK_URL", "notify")):
            node.env[var] = f"http://{receiver}:8080/{path}"
        (node.folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in node.env.items()), encoding="utf-8")
        # A changed .env reaches Alertmanager's secret files only in a new container; Prometheus re-reads on HUP.
        up = node.compose("up", "-d", "--no-deps", "--force-recreate", "--wait", "alertmanager")
        assert up.returncode == 0, up.stderr
        hup = node.compose("kill", "-s", "HUP", "prometheus")
        assert hup.returncode == 0, hup.stderr
        address = _address(node, "prometheus")
        _wait(lambda: _values(node, address, 'pg_up{job="postgres-exporter"}') == ["1"], "pg_up 1 before the stop")
        # PostgreSQL's container alone stops, as in a crash: `compose stop postgres` would stop the exporter
        # that depends on it too, and an exporter that is gone reports no pg_up at all (ServiceDown instead).
        stop = node.docker("stop", postgres)
        assert stop.returncode == 0, stop.stderr
        states: list[str | None] = []
        deadline = time.monotonic() + ALERT_WAIT
        while (state := _alert_state(node, address, "PostgresDown")) != "firing":
            states.append(state)
            assert time.monotonic() < deadline, (
                f"PostgresDown not firing after {ALERT_WAIT:.0f}s: states {states}, "
                f"pg_up {_values(node, address, 'pg_up')}, exporter up {_values(node, address, EXPORTER_UP)}, "
                f"scrape error {_scrape_error(node, address)}")
            time.sleep(3)
        assert "pending" in states, f"PostgresDown went firing without being pending first: {states}"
        posts: list[str] = []
        _wait(lambda: _posted(node, receiver, posts), "a PostgresDown notification at the receiver")
        line = posts[0]
        assert line.startswith(f"POST /{expected} "), line
        assert "[FIRING] PostgresDown on " + node.name in line and "runbooks/PostgresDown.md" in line, line
    finally:
        node.docker("rm", "-f", receiver)
        node.docker("start", postgres)


def _scrape_error(node: Node, address: str) -> str:
    (reply,) = node.probe([{"kind": "http", "url": f"http://{address}:9090/api/v1/targets"}])
    return next((f"{t.get('lastError')} ({t.get('lastScrapeDuration')}s)" for t in _json(reply)["data"]["activeTargets"]
                 if t["labels"]["job"] == "postgres-exporter"), "no such target")


def _posted(node: Node, receiver: str, posts: list[str]) -> bool:
    posts[:] = [line for line in node.docker("logs", receiver).stdout.splitlines() if "PostgresDown" in line]
    return bool(posts)


ALERT_WAIT = 240.0
EXPORTER_UP = 'up{job="postgres-exporter"}'


def _wait(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + ALERT_WAIT
    while not ready():
        assert time.monotonic() < deadline, f"gave up waiting {ALERT_WAIT:.0f}s for {what}"
        time.sleep(3)


def test_health_check_script_fails_on_a_stopped_service(node: Node) -> None:
    victim = next(s.name for s in view(node.name).services if s.name in ("redis", "nats"))
    stop = node.compose("stop", victim)
    assert stop.returncode == 0, stop.stderr
    proc = node.run_script("health-check.sh", "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert victim in proc.stdout


def _postgres_db(node: Node) -> str:
    pg = view(node.name).service("postgres")
    assert pg is not None
    return next(e.value for e in pg.env if e.name == "POSTGRES_DB" and e.value)
