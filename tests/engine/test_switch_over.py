"""Switch-over on the real engine: node1's data in volumes the hand-written stack created, then switch-over.sh.

The old stack is the hand-written compose file (tests/fixtures/real/) cut down to its data services and its
gateway, started the way it runs today: from a folder named microdao-daarion without a `name:`, so Compose
names its project and volumes after the folder. A row goes into its PostgreSQL; node1 is rendered with
`adopt_volumes` naming those volumes, and switch-over.sh replaces the old stack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodegen.verify import compose_binary
from tests.conftest import FIXTURES, ROOT, invoke
from tests.engine.conftest import view
from tests.engine.daemon import Engine
from tests.engine.operator import DEPLOY_TIMEOUT, Operated, log_of, node_root

pytestmark = pytest.mark.engine

OLD = "microdao-daarion"
KEPT = ("postgres", "redis", "nats", "gateway")  # the data services, and the public entry
DATA = ("postgres", "redis", "nats")
OLD_DB = "daarion"
ROW = "written by the hand-written stack"
OLD_GATEWAY_CONF = "server {\n    listen 80;\n    location = /health { return 200 'old stack'; }\n}\n"


def old_compose() -> dict[str, Any]:
    """The real compose file with only the services kept; the gateway gets a config of its own (the real one
    names upstreams that are not kept) and loses its depends_on."""
    real: dict[str, Any] = yaml.safe_load((FIXTURES / "real" / "docker-compose.all.yml").read_text(encoding="utf-8"))
    services = {name: svc for name, svc in real["services"].items() if name in KEPT}
    assert sorted(services) == sorted(KEPT), "the real compose file changed: update this test"
    services["gateway"].pop("depends_on", None)
    assert services["gateway"]["volumes"] == ["./nginx/all-in-one.conf:/etc/nginx/conf.d/default.conf:ro"]
    volumes = {key: value for key, value in real["volumes"].items()
               if any(str(v).startswith(f"{key}:") for s in services.values() for v in s.get("volumes", []))}
    assert "name" not in real
    return {"networks": real["networks"], "volumes": volumes, "services": services}


def repository(ref: str) -> str:
    return ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref


class OldStack:
    """The hand-written stack, as `docker compose up -d` in /opt/microdao-daarion runs it."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine, self.folder = engine, folder

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        binary = compose_binary()
        assert binary is not None
        return subprocess.run([binary, "-f", "docker-compose.all.yml", *args], cwd=self.folder, env=self.engine.env,
                              capture_output=True, text=True, timeout=600, check=False)

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env=self.engine.env, capture_output=True, text=True, timeout=120,
                              check=False)


def tag_standins(old: OldStack, model: dict[str, Any], new: dict[str, Any]) -> None:
    """The old file's images (`postgres:15-alpine`, `nats:latest`, ...) are the same stand-ins as the new one's."""
    built = {repository(s["image"]): s["image"] for s in new["services"].values() if s.get("image")}
    for svc in model["services"].values():
        proc = old.docker("tag", built[repository(svc["image"])], svc["image"])
        assert proc.returncode == 0, proc.stderr


def adopting_render(tmp: Path, volumes: dict[str, str]) -> Path:
    workspace = tmp / "ws"
    shutil.copytree(ROOT / "nodes", workspace / "nodes")
    manifest = workspace / "nodes" / "node1.yaml"
    lines = "".join(f"  {service}: {volume}\n" for service, volume in volumes.items())
    manifest.write_text(manifest.read_text(encoding="utf-8") + "adopt_volumes:\n" + lines, encoding="utf-8")
    result = invoke("-C", str(workspace), "render", "node1")
    assert result.code == 0, result.stderr
    return workspace / "output" / "node1"


@pytest.fixture(scope="module")
def switched(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Operated, OldStack]]:
    tmp = tmp_path_factory.mktemp("switch")
    folder = tmp / OLD
    (folder / "nginx").mkdir(parents=True)
    (folder / "nginx" / "all-in-one.conf").write_text(OLD_GATEWAY_CONF, encoding="utf-8")
    model = old_compose()
    (folder / "docker-compose.all.yml").write_text(yaml.safe_dump(model, sort_keys=False), encoding="utf-8")
    old = OldStack(engine, folder)
    node = node_root(engine, "node1", adopting_render(tmp, {s: f"{OLD}_{s}_data" for s in DATA}), tmp)
    try:
        tag_standins(old, model, node.model())
        yield node, old
    finally:
        old.compose("down", "--remove-orphans")
        node.compose("down", "--remove-orphans", timeout=300)
        for service in DATA:
            old.docker("volume", "rm", f"{OLD}_{service}_data")


class StopWatch:
    """The old project's containers in the order the engine stops them, from its event stream (followed
    live: the daemon keeps only its last few hundred events, and a deploy's health checks make more)."""

    def __init__(self, old: OldStack) -> None:
        self.process = subprocess.Popen(
            ["docker", "events", "--filter", "event=stop", "--filter", f"label=com.docker.compose.project={OLD}",
             "--format", "{{.Actor.Attributes.name}}"], env=old.engine.env, stdout=subprocess.PIPE, text=True)

    def stopped(self) -> list[str]:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return out.split()


def test_switch_over_keeps_the_old_stack_s_data_and_stops_it_in_order(
        switched: tuple[Operated, OldStack]) -> None:
    node, old = switched
    # Its nats never turns healthy, with the official image too: `command:` replaces the image's
    # `--config nats-server.conf`, which is what enables the monitoring port its health check asks.
    up = old.compose("up", "-d", "--wait", *(s for s in KEPT if s != "nats"))
    assert up.returncode == 0, up.stderr
    nats = old.compose("up", "-d", "nats")
    assert nats.returncode == 0, nats.stderr
    names = sorted(old.docker("ps", "--filter", f"label=com.docker.compose.project={OLD}", "--format",
                              "{{.Names}}").stdout.split())
    assert names == sorted(f"daarion-{s}" for s in KEPT)
    psql = ("exec", "daarion-postgres", "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", OLD_DB, "-tAc")
    setup = old.docker(*psql, f"CREATE TABLE engine_probe (id int PRIMARY KEY, note text); "
                              f"INSERT INTO engine_probe VALUES (1, '{ROW}')")
    assert setup.returncode == 0, setup.stderr
    volume = json.loads(old.docker("volume", "inspect", f"{OLD}_postgres_data").stdout)[0]
    assert volume["Labels"]["com.docker.compose.project"] == OLD  # created the old way, by the old project

    watch = StopWatch(old)
    time.sleep(2)  # the stream is open before the first stop (the CLI connects in milliseconds)
    try:
        proc = node.script("switch-over.sh", "--old-project", OLD, "--database-from", OLD_DB, "--yes", "--",
                           "--insecure", timeout=DEPLOY_TIMEOUT)
    finally:
        stopped = watch.stopped()
    assert proc.returncode == 0, log_of(proc)

    assert sorted(stopped) == sorted(f"daarion-{s}" for s in KEPT), stopped
    assert stopped[0] == "daarion-gateway"  # the public entry first: no new request reaches the old stack
    assert set(stopped[1:]) == {f"daarion-{s}" for s in DATA}  # the data services last
    assert old.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={OLD}").stdout.split() == []
    assert [d for d in (node.folder / "backups").glob("switch-over-*.sql") if d.stat().st_size > 0]

    pg = next(c for c in node.containers() if c["Config"]["Labels"]["com.docker.compose.service"] == "postgres")
    assert pg["Config"]["Labels"]["com.docker.compose.project"] == "daarion"
    assert [m["Name"] for m in pg["Mounts"] if m["Type"] == "volume"] == [f"{OLD}_postgres_data"]
    row = node.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "daarion_memory", "-tAc",
                       "SELECT note FROM engine_probe WHERE id = 1")
    assert row.returncode == 0, row.stderr
    assert row.stdout.strip() == ROW
    assert node.record(node.current(), "status") == "deployed"
    health = node.script("health-check.sh", timeout=300)
    assert health.returncode == 0, log_of(health)


def _psql_as(node: Operated, role: str, password: str, sql: str) -> subprocess.CompletedProcess[str]:
    """psql in the postgres container as `role`, over TCP with its password, as a service connects: to the
    container's network address (`postgres`), since the image trusts 127.0.0.1 without a password."""
    return node.compose("exec", "-T", "-e", f"PGPASSWORD={password}", "postgres", "psql", "-v", "ON_ERROR_STOP=1",
                        "--no-psqlrc", "-h", "postgres", "-U", role, "-d", "daarion_memory", "-tAc", sql)


def test_after_switch_over_each_service_role_logs_in_to_its_schema(switched: tuple[Operated, OldStack]) -> None:
    """The adopted data directory was not empty, so the postgres image ran no initdb script: deploy.sh ran it."""
    node, _ = switched
    roles = view("node1").pg_roles
    owners = [r for r in roles if r.rights == "schema"]
    assert owners and any(r.rights == "monitor" for r in roles)
    for role in owners:
        who = _psql_as(node, role.name, node.env[role.password_env],
                       "CREATE TABLE engine_adopted (id int); SELECT current_user || ':' || current_schema()")
        assert who.returncode == 0, who.stderr
        assert who.stdout.strip().splitlines()[-1] == f"{role.name}:{role.name}", who.stdout
    for role in (r for r in roles if r.rights == "monitor"):
        monitor = _psql_as(node, role.name, node.env[role.password_env],
                           f"SELECT pg_has_role('{role.name}', 'pg_monitor', 'member'), "
                           f"(SELECT rolsuper FROM pg_roles WHERE rolname = '{role.name}')")
        assert monitor.returncode == 0, monitor.stderr
        assert monitor.stdout.strip() == "t|f", monitor.stdout


def test_the_roles_script_runs_again_and_applies_a_rotated_password(switched: tuple[Operated, OldStack]) -> None:
    node, _ = switched
    role = next(r for r in view("node1").pg_roles if r.rights == "schema")
    script = "/docker-entrypoint-initdb.d/10-databases.sh"
    again = node.compose("exec", "-T", "-e", f"{role.password_env}=rotated-pw-1", "postgres", "sh", script)
    assert again.returncode == 0, again.stderr
    assert _psql_as(node, role.name, "rotated-pw-1", "SELECT 1").returncode == 0
    assert _psql_as(node, role.name, node.env[role.password_env], "SELECT 1").returncode != 0
    back = node.compose("exec", "-T", "postgres", "sh", script)  # and once more, with .env's
    assert back.returncode == 0, back.stderr
    kept = _psql_as(node, role.name, node.env[role.password_env], "SELECT count(*) FROM engine_adopted")
    assert kept.returncode == 0 and kept.stdout.strip() == "0", kept.stdout + kept.stderr  # the schema kept its table
