"""Fallback, end to end: the rendered gateway of a consumer node, run by the real nginx, fails over and back.

A three-node fleet is rendered by the CLI: `edge` uses `echo-service` from `primary`, with `backup` as the
fallback, both through their gateways. Those two gateways are stand-ins (tests/e2e/tls_stub.py) on
127.0.0.1 with a certificate the edge gateway is told to trust (gateway.upstream_ca); a loopback dnsmasq
answers every name with 127.0.0.1. Nothing in the rendered files is edited: the node's `gateway:` block
puts the gateway on loopback.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import invoke, require_tool
from tests.e2e.harness import LOOPBACK, PortPicker, Proc, listening, wait_until

pytestmark = pytest.mark.e2e

TLS_STUB = Path(__file__).with_name("tls_stub.py")
DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
DOMAIN = "fallback.test"
WAIT = 15.0


@dataclass
class Fleet:
    """Where the rendered fixture fleet lives and listens."""

    root: Path
    http_port: int
    https_port: int
    internal_port: int
    dns_port: int
    node_ports: dict[str, int]  # the stand-in gateways of primary and backup
    certificate: Path
    key: Path

    @property
    def conf(self) -> Path:
        return self.root / "output" / "edge" / "infra" / "nginx" / "nginx.conf"


def certificate(folder: Path) -> tuple[Path, Path]:
    """One self-signed certificate for both stand-in gateways (and the edge gateway's own TLS)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    names = ",".join(f"DNS:{n}.{DOMAIN}" for n in ("primary", "backup", "edge"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=e2e",
                    "-addext", f"subjectAltName={names}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def manifests(f: Fleet) -> dict[str, dict[str, Any]]:
    image = {"class": "utility", "tier": "backend", "metrics": {"enabled": False}}
    fleet = {
        "project": "e2e", "domain": DOMAIN,
        "target_versions": {"nginx": "1.22"},  # run by Debian's nginx 1.22
        "services": {
            "gateway-nginx": {"class": "core", "tier": "gateway", "gateway": True, "image": "nginx:1.27.3-alpine",
                              "port": 443, "metrics": {"enabled": False}},
            "echo-service": {**image, "image": "e2e/echo:1.0", "port": 8950, "route": "echo"},
            "caller": {**image, "image": "e2e/caller:1.0", "port": 8951, "needs": ["echo-service"]},
        },
    }
    nodes: dict[str, dict[str, Any]] = {"fleet": fleet}
    for i, name in enumerate(("primary", "backup"), 2):
        nodes[name] = {"node": name, "name": name.upper(), "role": "dev", "uptime": "on-demand",
                       "domain": f"{name}.{DOMAIN}", "address": f"10.9.0.{i}",
                       "services": ["gateway-nginx", "echo-service"],
                       "gateway": {"https_port": f.node_ports[name]}}
    nodes["edge"] = {
        "node": "edge", "name": "EDGE", "role": "production", "uptime": "24/7", "domain": f"edge.{DOMAIN}",
        "address": "10.9.0.1", "services": ["gateway-nginx", "caller"],
        "uses": {"echo-service": {"node": "primary", "fallback": "backup"}},
        "gateway": {
            "listen": LOOPBACK, "http_port": f.http_port, "https_port": f.https_port,
            "internal_port": f.internal_port, "resolver": f"{LOOPBACK}:{f.dns_port}",
            "certificate": str(f.certificate), "certificate_key": str(f.key), "upstream_ca": str(f.certificate),
            "log_dir": str(f.root / "logs"),
        },
    }
    return nodes


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    require_tool("openssl", shutil.which("openssl") is not None)
    root = tmp_path_factory.mktemp("fallback")
    (root / "nodes").mkdir()
    (root / "logs").mkdir()
    ports = PortPicker()
    cert, key = certificate(root)
    f = Fleet(root, ports.any(), ports.any(), ports.any(), ports.any(),
              {"primary": ports.any(), "backup": ports.any()}, cert, key)
    for name, data in manifests(f).items():
        (root / "nodes" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = invoke("-C", str(root), "render", "--all")
    assert result.code == 0, result.stderr
    return f


class Node:
    """A stand-in gateway of another node, stopped and started like the node itself."""

    def __init__(self, f: Fleet, name: str) -> None:
        self.name, self.port, self.fleet = name, f.node_ports[name], f
        self.proc: Proc | None = None

    def start(self, status: int = 200) -> None:
        cmd = [sys.executable, str(TLS_STUB), "--name", self.name, "--port", str(self.port),
               "--cert", str(self.fleet.certificate), "--key", str(self.fleet.key), "--status", str(status)]
        self.proc = Proc(self.name, cmd, self.fleet.root / f"{self.name}.log").start()
        self.proc.wait_port(self.port, WAIT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        wait_until(f"{self.name} to stop listening", lambda: not listening(self.port), WAIT)


@pytest.fixture(scope="module")
def nodes(fleet: Fleet) -> Iterator[dict[str, Node]]:
    running = {name: Node(fleet, name) for name in ("primary", "backup")}
    try:
        yield running
    finally:
        for node in running.values():
            node.stop()


@pytest.fixture(scope="module")
def dns(fleet: Fleet) -> Iterator[Proc]:
    require_tool("dnsmasq (Debian dnsmasq-base)", DNSMASQ is not None)
    assert DNSMASQ is not None
    proc = Proc("dnsmasq", [
        DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        f"--listen-address={LOOPBACK}", "--bind-interfaces", f"--port={fleet.dns_port}", "--address=/#/127.0.0.1",
        f"--pid-file={fleet.root / 'dnsmasq.pid'}", "--user=root", "--log-facility=-",
    ], fleet.root / "dnsmasq.log")
    try:
        proc.start().wait_port(fleet.dns_port, WAIT)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def gateway(fleet: Fleet, nodes: dict[str, Node], dns: Proc) -> Iterator[Proc]:
    """The edge node's rendered gateway, started while the primary is down and only the fallback is up."""
    require_tool("nginx", shutil.which("nginx") is not None)
    nodes["backup"].start()
    prefix = fleet.root / "nginx-prefix"
    prefix.mkdir(exist_ok=True)
    proc = Proc("nginx", ["nginx", "-p", str(prefix), "-e", str(fleet.root / "logs" / "startup.log"),
                          "-c", str(fleet.conf), "-g", f"daemon off; pid {fleet.root / 'nginx.pid'};"],
                fleet.root / "nginx.log")
    try:
        proc.start()
        for port in (fleet.internal_port, fleet.https_port):
            proc.wait_port(port, WAIT)
        yield proc
    finally:
        proc.stop()


def call(f: Fleet, path: str, body: str | None = None) -> tuple[int, dict[str, Any]]:
    """One request to the edge gateway's internal listener, as a service of the edge node makes it."""
    conn = http.client.HTTPConnection(LOOPBACK, f.internal_port, timeout=WAIT)
    try:
        conn.request("GET" if body is None else "POST", path, body=body,
                     headers={"Host": "gateway-nginx", "Content-Type": "text/plain"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if resp.getheader("Content-Type") == "application/json" else {}
    finally:
        conn.close()


def served_by(f: Fleet, name: str) -> None:
    """Wait (bounded) until requests are answered by the named node; a stub needs a moment to come and go."""
    wait_until(f"requests to be served by {name}", lambda: call(f, "/api/echo/ping")[1].get("node") == name, WAIT)


def test_the_consumer_gets_the_gateway_local_route(fleet: Fleet) -> None:
    compose = yaml.safe_load((fleet.root / "output" / "edge" / "docker-compose.all.yml").read_text(encoding="utf-8"))
    env = compose["services"]["caller"]["environment"]
    assert env["ECHO_SERVICE_URL"] == f"http://gateway-nginx:{fleet.internal_port}/api/echo"
    assert f"{fleet.internal_port}" not in " ".join(compose["services"]["gateway-nginx"]["ports"])


def test_a_primary_that_is_down_does_not_stop_the_gateway(fleet: Fleet, gateway: Proc) -> None:
    assert gateway.running
    status, reply = call(fleet, "/api/echo/hello?x=1")
    assert (status, reply["node"], reply["path"]) == (200, "backup", "/api/echo/hello?x=1")
    assert reply["host"] == f"backup.{DOMAIN}:{fleet.node_ports['backup']}"


def test_traffic_goes_to_the_primary_when_it_is_up(fleet: Fleet, gateway: Proc, nodes: dict[str, Node]) -> None:
    nodes["primary"].start()
    served_by(fleet, "primary")
    status, reply = call(fleet, "/api/echo/a/b?q=%C3%A9")
    assert (status, reply["node"], reply["path"]) == (200, "primary", "/api/echo/a/b?q=%C3%A9")


def test_primary_stopped_then_back(fleet: Fleet, gateway: Proc, nodes: dict[str, Node]) -> None:
    nodes["primary"].stop()
    status, reply = call(fleet, "/api/echo/after-stop", body="audio bytes")
    assert (status, reply["node"], reply["method"], reply["body"]) == (200, "backup", "POST", "audio bytes")
    nodes["primary"].start()
    served_by(fleet, "primary")
    assert call(fleet, "/api/echo/back")[1]["node"] == "primary"


def test_a_primary_answering_503_is_failed_over(fleet: Fleet, gateway: Proc, nodes: dict[str, Node]) -> None:
    nodes["primary"].stop()
    nodes["primary"].start(status=503)
    status, reply = call(fleet, "/api/echo/busy")
    assert (status, reply["node"]) == (200, "backup")
    nodes["primary"].stop()
    nodes["primary"].start()
    served_by(fleet, "primary")


def test_with_both_down_the_gateway_answers_502(fleet: Fleet, gateway: Proc, nodes: dict[str, Node]) -> None:
    nodes["primary"].stop()
    nodes["backup"].stop()
    status, _ = call(fleet, "/api/echo/nobody")
    assert status == 502
    assert gateway.running
