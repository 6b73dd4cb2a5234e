"""node1, node2 and node3 of the shipped fleet, unedited, on a real Docker Engine: up, healthy, routed, scraped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from nodegen.view.resolve import Svc
from tests.engine.conftest import Node, view

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
