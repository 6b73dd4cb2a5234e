"""The frozen, fully derived view of the fleet and each node that targets render: defaults merged, names computed.

Built once per run, eagerly, after the manifests validated (resolve_fleet); nothing below is computed later.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from nodegen.load.manifests import Manifests
from nodegen.load.model import EnvVar, GatewaySettings, Service, ServiceOverride, Standard
from nodegen.standard import ALERTMANAGER, host_port, parse_bind, publish_of, short_name, use_of
from nodegen.topology import Edge, Topology, node_service_entries, topology

ROLE_LOG_LEVEL = {"dev": "DEBUG"}


@dataclass(frozen=True)
class Env:
    """One environment variable of a service, as compose will set it."""

    name: str
    value: str | None  # literal value; None for secrets and .env-driven settings
    secret: bool
    description: str
    default: str | None = None  # for ${NAME:-default}
    file: bool = False  # a secret handed over as /run/secrets/<name in lowercase>, not in the environment

    @property
    def secret_name(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Svc:
    """A service as it runs on one node."""

    name: str
    short: str
    container: str
    description: str
    klass: str
    stack: str | None
    tier: str
    phase: str
    image: str | None
    build: str | None
    command: tuple[str, ...] | None
    port: int
    protocol: str
    gateway: bool
    health_test: tuple[str, ...]
    health_path: str
    health_port: int
    metrics: bool
    metrics_path: str
    metrics_port: int
    route: str | None
    websocket: tuple[str, ...]
    depends: tuple[str, ...]
    env: tuple[Env, ...]
    volume: str | None
    data: str | None
    mounts: tuple[tuple[str, str], ...]
    publish: tuple[tuple[str, int], ...]
    labels: tuple[tuple[str, str], ...]
    title: str = ""
    note: str = ""
    private_for: tuple[str, ...] = ()  # nodes that use it `via: private`: bound on the node's private address
    private_bind: str = ""  # address:port it is bound on for them (IPv6 in brackets), when private_for
    remote_needs: tuple[str, ...] = ()  # needs served by another node (or through a fallback route)

    @property
    def http(self) -> bool:
        return self.protocol != "tcp"

    @property
    def environment(self) -> tuple[Env, ...]:
        """The variables compose puts in the container's environment (file secrets excluded)."""
        return tuple(e for e in self.env if not e.file)

    @property
    def secret_files(self) -> tuple[Env, ...]:
        return tuple(e for e in self.env if e.file)


@dataclass(frozen=True)
class Endpoint:
    """Where one instance of a used service answers: another node's gateway or private address, or locally."""

    node: str  # serving node id, or "local"
    scheme: str
    host: str
    port: int
    prefix: str  # /api/<route> at a gateway; "" at the service itself
    tls_name: str | None = None  # name the other gateway's certificate is checked against

    @property
    def authority(self) -> str:
        default = {"http": 80, "https": 443}[self.scheme]
        return self.host if self.port == default else host_port(self.host, self.port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.prefix}"


@dataclass(frozen=True)
class Remote:
    """A service this node uses from another node."""

    service: str
    node: str
    url: str
    env_name: str
    fallback: str | None
    fallback_url: str | None
    via: str = "gateway"
    route: str | None = None
    primary: Endpoint | None = None
    fallback_endpoint: Endpoint | None = None
    relay_url: str | None = None  # the gateway-local route that fails over, when there is a fallback

    @property
    def env_url(self) -> str:
        """What the consumer's <SERVICE>_URL points at."""
        return self.relay_url or self.url


@dataclass(frozen=True)
class User:
    """Another node that uses one of this node's services."""

    node: str
    service: str
    via: str
    kind: str  # primary | fallback


@dataclass(frozen=True)
class RemoteScrape:
    """A service of another node that this node's Prometheus scrapes through that node's gateway."""

    node: str
    name: str
    role: str
    uptime: str
    target: str  # private address : gateway https port
    tls_name: str
    service: Svc

    @property
    def job(self) -> str:
        return f"{self.node}/{self.service.name}"


@dataclass(frozen=True)
class NodeView:
    """Everything the templates of one node need."""

    project: str
    fleet_domain: str
    id: str
    name: str
    role: str
    uptime: str
    domain: str
    address: str
    services: tuple[Svc, ...]
    remotes: tuple[Remote, ...]
    gateway: GatewaySettings
    standard: Standard
    sources: tuple[str, ...]
    log_level: str
    network: str
    users: tuple[User, ...] = ()
    scrape_remote: tuple[RemoteScrape, ...] = ()
    metrics_allow: tuple[str, ...] = ()  # private addresses of the Prometheus nodes that scrape this node
    dev_overrides: bool = False
    manifest: str = ""  # the node's own manifest, as problems name it

    @property
    def regenerate(self) -> str:
        return f"nodegen render {self.id}"

    @property
    def gateway_service(self) -> Svc:
        return next(s for s in self.services if s.gateway)

    @property
    def relays(self) -> tuple[Remote, ...]:
        """Used services with a fallback: the gateway's internal listener fails them over."""
        return tuple(r for r in self.remotes if r.relay_url is not None)

    def service(self, name: str) -> Svc | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def routed(self) -> tuple[Svc, ...]:
        return tuple(s for s in self.services if s.route is not None)

    @property
    def scraped(self) -> tuple[Svc, ...]:
        return tuple(s for s in self.services if s.metrics)

    @property
    def runs_prometheus(self) -> bool:
        return self.service("prometheus") is not None

    @property
    def secrets(self) -> tuple[Env, ...]:
        return tuple(e for s in self.services for e in s.env if e.secret)

    @property
    def secret_files(self) -> tuple[str, ...]:
        """Names of the compose secrets (from .env) that some service reads as a file."""
        return tuple(sorted({e.secret_name for s in self.services for e in s.secret_files}))


def env_url_name(service: str) -> str:
    return service.upper().replace("-", "_") + "_URL"


@dataclass
class _Build:
    """What building every node's view shares: the manifests, their topology, the catalog's env, once each."""

    m: Manifests
    topo: Topology
    catalog_env: dict[str, dict[str, Env]] = dataclasses.field(default_factory=dict)

    def env_of(self, name: str, svc: Service) -> dict[str, Env]:
        """The catalog's own variables of a service: the same on every node, so built once."""
        if name not in self.catalog_env:
            self.catalog_env[name] = {var: _env_entry(var, raw) for var, raw in svc.env.items()}
        return self.catalog_env[name]


def _resolve_node(b: _Build, node_id: str) -> NodeView:
    """One node's view, without the other nodes' services it scrapes (added by resolve_fleet)."""
    m = b.m
    node = m.nodes[node_id]
    runs = {name: override for _, name, override in node_service_entries(m, node_id)}
    if m.fleet.alertmanager and "prometheus" in runs and ALERTMANAGER in m.fleet.services:
        runs.setdefault(ALERTMANAGER, None)  # Phase MONITOR: beside every Prometheus
    gateway_name = next((n for n in runs if n in m.fleet.services and m.fleet.services[n].gateway), "gateway")
    remotes = tuple(_remote(m, node_id, name, gateway_name) for name in sorted(node.uses))
    log_level = ROLE_LOG_LEVEL.get(node.role, "INFO")
    services = tuple(
        _service(b, node_id, name, m.fleet.services[name], runs[name], set(runs), remotes)
        for name in sorted(runs)
    )
    return NodeView(
        project=m.fleet.project,
        fleet_domain=m.fleet.domain,
        id=node_id,
        name=node.name,
        role=node.role,
        uptime=node.uptime,
        domain=node.domain,
        address=node.address,
        services=services,
        remotes=remotes,
        gateway=node.gateway,
        standard=m.fleet.standard,
        sources=(m.fleet_doc.path, *(m.node_docs[n].path for n in sorted({node_id, *b.topo.related_nodes(node_id)}))),
        log_level=log_level,
        network=f"{m.fleet.project}_net",
        users=tuple(User(e.consumer, e.service, e.via, e.kind) for e in b.topo.edges_to(node_id)),
        metrics_allow=tuple(m.nodes[n].address for n in b.topo.scrapers if n != node_id),
        dev_overrides=node.role == "dev" if node.dev_overrides is None else node.dev_overrides,
        manifest=m.node_docs[node_id].path,
    )


def _remote(m: Manifests, node_id: str, name: str, gateway_name: str) -> Remote:
    use = use_of(m.nodes[node_id].uses[name])
    svc = m.fleet.services[name]
    primary = _endpoint(m, use.node, svc, use.via)
    fallback = None
    if use.fallback == "local":
        fallback = Endpoint("local", "http", name, svc.port, "")
    elif use.fallback is not None:
        fallback = _endpoint(m, use.fallback, svc, use.via)
    relay_url = None
    if fallback is not None and svc.route is not None:
        relay = Endpoint(node_id, "http", gateway_name, m.nodes[node_id].gateway.internal_port, f"/api/{svc.route}")
        relay_url = relay.url
    return Remote(
        name, use.node, primary.url, env_url_name(name), use.fallback, fallback.url if fallback else None,
        via=use.via, route=svc.route, primary=primary, fallback_endpoint=fallback, relay_url=relay_url,
    )


def _endpoint(m: Manifests, serving: str, svc: Service, via: str) -> Endpoint:
    """The serving node's gateway route (HTTPS, its certificate checked) or its private address."""
    other = m.nodes[serving]
    if via == "private" or svc.route is None:
        return Endpoint(serving, "http", other.address, svc.port, "")
    return Endpoint(serving, "https", other.domain, other.gateway.https_port, f"/api/{svc.route}", other.domain)


def _scrape_remote(m: Manifests, node_id: str, views: Mapping[str, NodeView]) -> tuple[RemoteScrape, ...]:
    """Every other node's scraped services, for a node that runs Prometheus (through their gateways)."""
    out: list[RemoteScrape] = []
    for other_id in sorted(m.nodes):
        if other_id == node_id:
            continue
        other = m.nodes[other_id]
        target = host_port(other.address, other.gateway.https_port)
        for svc in views[other_id].scraped:
            out.append(RemoteScrape(other_id, other.name, other.role, other.uptime, target, other.domain, svc))
    return tuple(out)


def _service(
    b: _Build, node_id: str, name: str, svc: Service, override: ServiceOverride | None,
    runs: set[str], remotes: tuple[Remote, ...],
) -> Svc:
    m = b.m
    project = m.fleet.project
    node = m.nodes[node_id]
    phase = svc.phase or svc.class_
    short = short_name(name)
    labels = (
        (f"com.{project}.node", node_id),
        (f"com.{project}.phase", phase),
        (f"com.{project}.service", short),
        (f"com.{project}.tier", svc.tier),
    )
    publish = publish_of(svc, override)
    private_for = b.topo.private_consumers(node_id, name)
    return Svc(
        name=name,
        short=short,
        container=f"{project}-{name}",
        description=svc.description,
        klass=svc.class_,
        stack=svc.stack,
        tier=svc.tier,
        phase=phase,
        image=(override.image if override and override.image else svc.image),
        build=svc.build,
        command=tuple(override.command if override and override.command else svc.command or ()) or None,
        port=svc.port,
        protocol=svc.protocol,
        gateway=svc.gateway,
        health_test=_health_test(svc, node.gateway),
        health_path=svc.health.path,
        health_port=svc.health.port or (node.gateway.http_port if svc.gateway else svc.port),
        metrics=svc.metrics.enabled and svc.protocol != "tcp",
        metrics_path=svc.metrics.path,
        metrics_port=svc.metrics.port or svc.port,
        route=svc.route,
        websocket=tuple(sorted(svc.websocket)),  # the output must not depend on manifest order
        depends=tuple(sorted(n for n in svc.needs if n in runs)),
        env=_env(b, name, svc, override, runs, remotes, node.role),
        volume=f"{name}_data" if svc.data else None,
        data=svc.data,
        mounts=tuple(sorted(svc.mounts.items())),
        publish=tuple(b for b in (parse_bind(p) for p in publish) if b is not None),
        labels=labels,
        title=svc.title or name,
        note=svc.note if svc.note is not None else svc.description,
        private_for=private_for,
        private_bind=host_port(node.address, svc.port) if private_for else "",
        remote_needs=tuple(sorted(n for n in svc.needs if any(r.service == n for r in remotes))),
    )


def _health_test(svc: Service, gw: GatewaySettings) -> tuple[str, ...]:
    if svc.health.command:
        return ("CMD", *svc.health.command)
    if svc.gateway:
        return ("CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{gw.http_port}{svc.health.path}")
    port = svc.health.port or svc.port
    # The standard's probe: services we build ship curl in their image.
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", f"http://localhost:{port}{svc.health.path}")


def _env(
    b: _Build, name: str, svc: Service, override: ServiceOverride | None, runs: set[str],
    remotes: tuple[Remote, ...], role: str,
) -> tuple[Env, ...]:
    out: dict[str, Env] = {}
    for need in svc.needs:
        target = b.m.fleet.services.get(need)
        if target is None or target.protocol == "tcp":
            continue
        remote = next((r for r in remotes if r.service == need), None)
        # A fallback goes through the gateway's relay even when the fallback is the local instance.
        url = remote.env_url if remote and (need not in runs or remote.relay_url) else f"http://{need}:{target.port}"
        out[env_url_name(need)] = Env(env_url_name(need), url, False, f"{need} base URL")
    if svc.class_ != "core" and not svc.gateway:
        default = ROLE_LOG_LEVEL.get(role, "INFO")
        out["LOG_LEVEL"] = Env("LOG_LEVEL", None, False, "log level: DEBUG only in dev", default)
    if override is None:  # the catalog's own variables are the same on every node: built once
        out.update(b.env_of(name, svc))
    else:
        merged = dict(svc.env)
        merged.update(override.env)
        for var, raw in merged.items():
            out[var] = _env_entry(var, raw)
    return tuple(out[k] for k in sorted(out))


def _env_entry(var: str, raw: str | int | bool | EnvVar) -> Env:
    if isinstance(raw, EnvVar):
        return Env(var, raw.value, raw.secret, raw.description or "", file=raw.secret and raw.file)
    if isinstance(raw, bool):
        return Env(var, "true" if raw else "false", False, "")
    return Env(var, str(raw), False, "")


@dataclass(frozen=True)
class FleetView:
    """The whole validated fleet as targets see it: every node's view and the edges between nodes."""

    project: str
    domain: str
    nodes: tuple[NodeView, ...]  # sorted by id
    edges: tuple[Edge, ...]
    sources: tuple[str, ...]
    regenerate: str = "nodegen render --all"

    @functools.cached_property
    def _by_id(self) -> dict[str, NodeView]:
        return {n.id: n for n in self.nodes}

    def node(self, node_id: str) -> NodeView:
        return self._by_id[node_id]

    @property
    def node_ids(self) -> list[str]:
        return [n.id for n in self.nodes]


def resolve_fleet(m: Manifests) -> FleetView:
    """The fleet and every node as templates see them, built once; assumes the manifests validated cleanly."""
    b = _Build(m, topology(m))
    views = {node_id: _resolve_node(b, node_id) for node_id in sorted(m.nodes)}
    for node_id in b.topo.scrapers:
        views[node_id] = dataclasses.replace(views[node_id], scrape_remote=_scrape_remote(m, node_id, views))
    return FleetView(
        project=m.fleet.project,
        domain=m.fleet.domain,
        nodes=tuple(views.values()),
        edges=b.topo.edges,
        sources=(m.fleet_doc.path, *(m.node_docs[n].path for n in sorted(m.nodes))),
    )
