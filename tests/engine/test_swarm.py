"""output/swarm/stack.yml deployed for real: a one-node Swarm on the engine, converged, routed, updated, rolled back.

The fleet is tests/engine/swarm-fleet (a database, one built service, the gateway). The Swarm is initialised
inside the engine's network namespace on an address that exists only there, and left at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodegen.pipeline import load_fleet
from nodegen.view.resolve import NodeView
from nodegen.workspace import Workspace
from tests.conftest import invoke
from tests.engine import images
from tests.engine.conftest import probe, random_env
from tests.engine.daemon import Engine

pytestmark = pytest.mark.engine

FLEET = Path(__file__).resolve().parent / "swarm-fleet"
PROJECT = "swarmy"
NODE = "solo"
# Benchmarking range (RFC 2544): neither private nor public, and added only to the namespace's loopback.
ADVERTISE = "198.19.0.1"
POOL = "198.18.0.0/16"  # overlay subnets, kept off Swarm's default 10.0.0.0/8 (the fleet's addresses)
GOOD = "nodegen-engine/notes-service:1"
BROKEN = "nodegen-engine/notes-service:2"  # a release whose health check cannot pass (no curl in it)
CONVERGE_TIMEOUT = 300.0
POLL = 2.0


@dataclass
class Swarm:
    """The fleet's workspace and the one-node Swarm it is deployed on."""

    engine: Engine
    workspace: Path
    env: dict[str, str]

    def docker(self, *args: str, timeout: int = 120, check: bool = True) -> str:
        proc = subprocess.run(["docker", *args], env=self.engine.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert not check or proc.returncode == 0, f"docker {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    @property
    def stack_file(self) -> Path:
        return self.workspace / "output" / "swarm" / "stack.yml"

    def stack(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(self.stack_file.read_text(encoding="utf-8"))
        return data

    def render(self, image: str = GOOD, rate: str = "10r/s") -> None:
        """The fleet as shipped in swarm-fleet, with the built service's cluster image and the rate limit set."""
        text = (FLEET / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
        assert f'image: "{GOOD}"' in text and "rate: 10r/s" in text
        text = text.replace(f'image: "{GOOD}"', f'image: "{image}"').replace("rate: 10r/s", f"rate: {rate}")
        (self.workspace / "nodes" / "fleet.yaml").write_text(text, encoding="utf-8")
        result = invoke("-C", str(self.workspace), "render", "--all")
        assert result.code == 0, result.stderr

    def deploy(self) -> str:
        return self.docker("stack", "deploy", "--detach=true", "--resolve-image", "never", "-c",
                           str(self.stack_file), PROJECT, timeout=300)

    def service(self, key: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.docker("service", "inspect", f"{PROJECT}_{key}"))
        return data[0]

    def containers(self, key: str) -> list[dict[str, Any]]:
        ids = self.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={PROJECT}_{key}").split()
        data: list[dict[str, Any]] = json.loads(self.docker("inspect", *ids)) if ids else []
        return data

    def probe(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return probe(self.engine, steps)

    def view(self) -> NodeView:
        return load_fleet(Workspace(self.workspace)).view(NODE)

    def diagnose(self) -> str:
        tasks = self.docker("stack", "ps", "--no-trunc", PROJECT, check=False)
        return f"{self.docker('service', 'ls', check=False)}\n{tasks}"


def wait_for(what: str, done: Callable[[], bool], swarm: Swarm, timeout: float = CONVERGE_TIMEOUT) -> None:
    """Poll `done` every POLL seconds, at most `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / POLL) + 1):
        if done():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(POLL)
    pytest.fail(f"{what}: not within {timeout:.0f}s\n{swarm.diagnose()}")


def converged(swarm: Swarm) -> bool:
    """Every service runs its replicas, each task's container healthy (where it has a health check)."""
    for key, spec in swarm.stack()["services"].items():
        want = spec["deploy"]["replicas"]
        running = [c for c in swarm.containers(key) if c["State"]["Status"] == "running"]
        if len(running) != want:
            return False
        if spec["healthcheck"]["test"][0] != "NONE" and any(
                c["State"].get("Health", {}).get("Status") != "healthy" for c in running):
            return False
    return True


def update_state(swarm: Swarm, key: str) -> str | None:
    status = swarm.service(key).get("UpdateStatus") or {}
    state: str | None = status.get("State")
    return state


def build_releases(engine: Engine) -> None:
    """The built service's cluster images: a good release, and one whose health check cannot pass."""
    for tag, body in ((GOOD, ""), (BROKEN, "USER root\nRUN rm -f /usr/bin/curl\nUSER nobody\n")):
        dockerfile = f"FROM {images.STUB}\n{body}ENV STUB_SERVICE=notes-service\n"
        subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, env=engine.env, text=True,
                       capture_output=True, timeout=600, check=True)


def self_signed(folder: Path, domain: str) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={domain}", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    return cert, key


def create_secrets(swarm: Swarm, tls: tuple[Path, Path]) -> None:
    """What the operator does once: every external secret of the stack, from .env and the certificate."""
    view = swarm.view()
    wanted = {f"{PROJECT}_{NODE}_{e.secret_name}": swarm.env[e.name].encode()
              for s in view.services for e in s.env if e.secret}
    wanted[f"{PROJECT}_{NODE}_tls_fullchain"] = tls[0].read_bytes()
    wanted[f"{PROJECT}_{NODE}_tls_privkey"] = tls[1].read_bytes()
    declared = {s["name"] for s in swarm.stack()["secrets"].values()}
    assert declared == set(wanted), "the stack's secrets are the .env secrets and the TLS pair"
    text = swarm.stack_file.read_text(encoding="utf-8")
    hints = [f'printf %s "${e.name}" | docker secret create {PROJECT}_{NODE}_{e.secret_name} -'
             for s in view.services for e in s.env if e.secret]
    assert all(hint in text for hint in hints)  # the stack tells the operator where each value comes from
    for name, value in sorted(wanted.items()):
        subprocess.run(["docker", "secret", "create", name, "-"], input=value, env=swarm.engine.env,
                       capture_output=True, timeout=60, check=True)


@pytest.fixture(scope="module")
def swarm(bare_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    engine = bare_engine
    workspace = tmp_path_factory.mktemp("swarm") / "fleet"
    shutil.copytree(FLEET, workspace, ignore=shutil.ignore_patterns("output", ".nodegen-cache"))
    ip = ["ip", "addr", "add", f"{ADVERTISE}/32", "dev", "lo"]
    subprocess.run(engine.inside(*ip), check=True, timeout=30)
    sw = Swarm(engine, workspace, {})
    try:
        sw.render()
        sw.env = random_env(workspace / "output" / NODE / ".env.example")
        images.build_all(["docker"], engine.env, images.compose_images(
            sorted((workspace / "output").glob("*/docker-compose*.yml"))), engine.root.parent)
        build_releases(engine)
        sw.docker("swarm", "init", "--advertise-addr", ADVERTISE, "--listen-addr", f"{ADVERTISE}:2377",
                  "--default-addr-pool", POOL, "--default-addr-pool-mask-length", "24")
        node_id = sw.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
        sw.docker("node", "update", "--label-add", f"{PROJECT}.node={NODE}", node_id)
        create_secrets(sw, self_signed(workspace, sw.view().domain))
        sw.deploy()
        wait_for("the stack converges", lambda: converged(sw), sw)
        yield sw
    finally:
        sw.docker("stack", "rm", PROJECT, check=False)
        deadline = time.monotonic() + 120
        while sw.docker("ps", "-aq", "--filter", "label=com.docker.stack.namespace=" + PROJECT,
                        check=False).strip() and time.monotonic() < deadline:
            time.sleep(POLL)
        sw.docker("swarm", "leave", "--force", check=False)
        # Named like the Compose volume (a node keeps its data): it must not reach a later Compose test.
        volumes = sw.stack().get("volumes") or {} if sw.stack_file.exists() else {}
        for volume in volumes.values():
            sw.docker("volume", "rm", "-f", volume["name"], check=False)
        subprocess.run(engine.inside("ip", "addr", "del", f"{ADVERTISE}/32", "dev", "lo"), timeout=30,
                       check=False)


def test_every_service_converges_to_its_replicas_and_is_healthy(swarm: Swarm) -> None:
    assert converged(swarm)
    for key in swarm.stack()["services"]:
        (container,) = swarm.containers(key)
        assert container["RestartCount"] == 0, key
        tasks = swarm.docker("service", "ps", "-q", f"{PROJECT}_{key}").split()
        assert len(tasks) == 1, f"{key} needed {len(tasks)} tasks to converge"


def test_tasks_run_on_the_labelled_node(swarm: Swarm) -> None:
    for key in swarm.stack()["services"]:
        constraints = swarm.service(key)["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        assert constraints == [f"node.labels.{PROJECT}.node == {NODE}"], key


def test_secrets_arrive_as_files_the_services_read(swarm: Swarm) -> None:
    """PostgreSQL took its password from the secret file: the password from .env logs in over the overlay
    network (its own address there: loopback is trusted by the image's pg_hba.conf)."""
    (pg,) = swarm.containers(f"{NODE}-postgres")
    password = swarm.env["POSTGRES_PASSWORD"]
    address = pg["NetworkSettings"]["Networks"][f"{PROJECT}_{NODE}_net"]["IPAddress"]
    url = f"postgresql://postgres:{password}@{address}:5432/postgres"
    out = swarm.docker("exec", pg["Id"], "psql", url, "-Atc", "select 42")
    assert out.strip() == "42"
    wrong = subprocess.run(["docker", "exec", pg["Id"], "psql", url.replace(password, "wrong"), "-Atc", "select 1"],
                           env=swarm.engine.env, capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    assert "POSTGRES_PASSWORD" not in " ".join(pg["Config"]["Env"]).replace("POSTGRES_PASSWORD_FILE", "")


def test_gateway_publishes_in_host_mode_and_routes_to_the_built_service(swarm: Swarm) -> None:
    ports = swarm.service(f"{NODE}-gateway-nginx")["Endpoint"]["Ports"]
    assert {(p["PublishedPort"], p["PublishMode"]) for p in ports} == {(80, "host"), (443, "host")}
    notes = next(s for s in swarm.view().services if s.name == "notes-service")
    kept = "" if notes.proxy.strip_prefix else "/api/notes"
    health, routed = swarm.probe([
        {"kind": "http", "url": "https://127.0.0.1/health"},
        {"kind": "http", "url": "https://127.0.0.1/api/notes/items/42?q=1", "host": swarm.view().domain},
    ])
    assert health["status"] == 200 and '"status":"healthy"' in health["body"], health
    assert routed["status"] == 200, routed
    seen = json.loads(routed["body"])
    assert (seen["service"], seen["port"], seen["path"]) == ("notes-service", 7001, f"{kept}/items/42?q=1")


def test_a_release_with_a_broken_health_check_rolls_back_by_itself(swarm: Swarm) -> None:
    key = f"{NODE}-notes-service"
    before = swarm.service(key)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert before.startswith(GOOD)
    try:
        swarm.render(image=BROKEN)
        swarm.deploy()
        wait_for("the update ends", lambda: update_state(swarm, key) in {
            "completed", "paused", "rollback_completed", "rollback_paused"}, swarm)
        status = swarm.service(key)["UpdateStatus"]
        assert status["State"] == "rollback_completed", status
        assert swarm.service(key)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == before
        wait_for("the old release serves again", lambda: converged(swarm), swarm)
        (container,) = swarm.containers(key)
        assert container["Config"]["Image"].startswith(GOOD)
    finally:
        swarm.render()
        swarm.deploy()  # the manifest back at the good release: the spec already is, nothing rolls
    assert swarm.service(key)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == before


def _config_names(swarm: Swarm, key: str) -> set[str]:
    refs = swarm.service(key)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Configs") or []
    return {c["ConfigName"] for c in refs}


def test_a_changed_nginx_config_is_deployed_under_a_new_name(swarm: Swarm) -> None:
    key = f"{NODE}-gateway-nginx"
    old = _config_names(swarm, key)
    assert len(old) == 1
    swarm.render(rate="12r/s")
    swarm.deploy()  # would fail ("only updates to Labels are allowed") if the name were reused
    new = _config_names(swarm, key)
    assert len(new) == 1 and new != old
    wait_for("the gateway update completes", lambda: update_state(swarm, key) == "completed", swarm)
    wait_for("the stack converges again", lambda: converged(swarm), swarm)
    (container,) = swarm.containers(key)
    conf = swarm.docker("exec", container["Id"], "cat", "/etc/nginx/nginx.conf")
    assert "rate=12r/s" in conf and "rate=10r/s" not in conf
    (old_name,) = old
    swarm.docker("config", "rm", old_name)  # refused while any service still uses it
    (routed,) = swarm.probe([{"kind": "http", "url": "https://127.0.0.1/api/notes/items/1",
                              "host": swarm.view().domain}])
    assert routed["status"] == 200, routed


def test_the_compose_hardening_and_limits_reach_the_containers(swarm: Swarm) -> None:
    """What the stack asks for is what the engine enforces (stack deploy drops what it does not support)."""
    for key, spec in swarm.stack()["services"].items():
        (container,) = swarm.containers(key)
        host = container["HostConfig"]
        assert host["CapDrop"] == ["ALL"], key
        added = sorted(c.removeprefix("CAP_") for c in host["CapAdd"] or [])  # the engine spells CAP_CHOWN
        assert added == sorted(spec.get("cap_add", [])), key
        assert host["ReadonlyRootfs"] is spec.get("read_only", False), key
        if "user" in spec:
            assert container["Config"]["User"] == spec["user"], key
        limits = spec["deploy"]["resources"]["limits"]
        assert host["PidsLimit"] == limits["pids"], key
        assert host["Memory"] == int(limits["memory"][:-1]) * 1024 ** "KMG".index(limits["memory"][-1]) * 1024, key
        assert host["NanoCpus"] == int(float(limits["cpus"]) * 1e9), key
        tmpfs = sorted(m["Destination"] for m in container["Mounts"] if m["Type"] == "tmpfs")
        assert tmpfs == sorted(v["target"] for v in spec.get("volumes", []) if isinstance(v, dict)), key
