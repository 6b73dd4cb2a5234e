"""The fixture fleet the end-to-end tests render: one node, a few services, every port free on 127.0.0.1.

Ports are picked when the test starts (inside each class's range) so that a busy port on the machine
does not fail the run; the node's `gateway:` block is the documented way to run the gateway outside
Docker: listen on 127.0.0.1, unprivileged ports, a resolver on loopback, the test's own certificate
and log folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness import LOOPBACK, PortPicker

NODE = "edge"
PROJECT = "e2e"
DOMAIN = "gateway.e2e.test"
# Client addresses on loopback (Linux routes all of 127.0.0.0/8 to lo): the node's own address is LOOPBACK,
# a fleet peer; an admin network; a load balancer in front of the gateway; anyone else is the internet.
ADMIN = "127.0.0.4"
LOAD_BALANCER = "127.0.0.5"
PUBLIC = "127.0.0.2"
ORIGIN = "https://app.e2e.test"  # the one origin city-service allows (CORS)


@dataclass(frozen=True)
class StubSpec:
    """One stub standing in for a service of the node."""

    name: str
    port: int
    metrics_port: int | None = None
    route: str | None = None
    channels: tuple[str, ...] = ()
    tier: str = "backend"
    spa: bool = False
    proxy: tuple[tuple[str, Any], ...] = ()

    @property
    def scrape_port(self) -> int:
        return self.metrics_port or self.port


@dataclass(frozen=True)
class Layout:
    """Where everything of one rendered fixture fleet listens and lives."""

    root: Path
    stubs: tuple[StubSpec, ...]
    http_port: int
    https_port: int
    dns_port: int
    certificate: Path
    certificate_key: Path
    log_dir: Path

    @property
    def out(self) -> Path:
        return self.root / "output" / NODE

    def stub(self, name: str) -> StubSpec:
        return next(s for s in self.stubs if s.name == name)

    @property
    def routed(self) -> tuple[StubSpec, ...]:
        return tuple(s for s in self.stubs if s.route)


def plan(root: Path, ports: PortPicker, certificate: Path, certificate_key: Path) -> Layout:
    stubs = (
        StubSpec("city-service", ports.in_range(7000, 7999), route="city", channels=("rooms", "presence"),
                 proxy=(("strip_prefix", False), ("cors", [ORIGIN]))),
        StubSpec("agents-service", ports.in_range(7000, 7999), route="agents", channels=("events",),
                 proxy=(("max_body", "1m"),)),
        StubSpec("frontend", ports.in_range(8000, 8999), tier="frontend", spa=True),
        StubSpec("swapper", ports.in_range(8000, 8999), ports.in_range(8000, 8999), route="swapper"),
        StubSpec("worker", ports.in_range(9000, 9999), tier="infra"),
    )
    log_dir = root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return Layout(root, stubs, ports.any(), ports.any(), ports.any(), certificate, certificate_key, log_dir)


def _service(stub: StubSpec) -> dict[str, Any]:
    klass = {7: "mvp", 8: "utility", 9: "dagi"}[stub.port // 1000]
    svc: dict[str, Any] = {
        "description": f"{stub.name} (stub)",
        "class": klass,
        "tier": stub.tier,
        "build": f"services/{stub.name}",
        "port": stub.port,
        "protocol": "http+ws" if stub.channels else "http",
    }
    if stub.metrics_port:
        svc["metrics"] = {"port": stub.metrics_port}
    if stub.route:
        svc["route"] = stub.route
    if stub.channels:
        svc["websocket"] = list(stub.channels)
    if stub.spa:
        svc["spa"] = True
        svc["visibility"] = "public"
    if stub.proxy:
        svc["proxy"] = dict(stub.proxy)
    return svc


def manifests(layout: Layout) -> tuple[dict[str, Any], dict[str, Any]]:
    """fleet.yaml and <node>.yaml of the fixture fleet."""
    services: dict[str, Any] = {
        "gateway-nginx": {
            "description": "nginx gateway", "class": "core", "tier": "gateway", "gateway": True,
            "image": "nginx:1.27.3-alpine", "port": 443, "metrics": {"enabled": False},
        },
        "prometheus": {
            "description": "Prometheus", "class": "core", "tier": "monitoring", "phase": "monitor",
            "image": "prom/prometheus:v2.55.1", "port": 9090,
            "health": {"path": "/-/healthy", "command": ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/healthy"]},
        },
    }
    services.update({s.name: _service(s) for s in layout.stubs})
    services["agents-service"]["needs"] = ["city-service"]
    # The runtime is Debian's nginx 1.22: the config is written for it (no `http2 on;`).
    fleet = {"project": PROJECT, "domain": "e2e.test", "admin_networks": [ADMIN],
             "target_versions": {"nginx": "1.22"}, "services": services}
    node = {
        "node": NODE, "name": "E2E", "role": "production", "uptime": "24/7",
        "domain": DOMAIN, "address": LOOPBACK,
        "services": sorted(services),
        "gateway": {
            "listen": LOOPBACK,
            "http_port": layout.http_port,
            "https_port": layout.https_port,
            "resolver": f"{LOOPBACK}:{layout.dns_port}",
            "certificate": str(layout.certificate),
            "certificate_key": str(layout.certificate_key),
            "log_dir": str(layout.log_dir),
            "load_balancers": [LOAD_BALANCER],
        },
    }
    return fleet, node


def write(layout: Layout) -> None:
    fleet, node = manifests(layout)
    nodes = layout.root / "nodes"
    nodes.mkdir(parents=True, exist_ok=True)
    (nodes / "fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (nodes / f"{NODE}.yaml").write_text(yaml.safe_dump(node, sort_keys=False, allow_unicode=True), encoding="utf-8")
