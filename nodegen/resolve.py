"""The frozen, fully derived view of a node that templates render: defaults merged, names computed."""

from __future__ import annotations

from dataclasses import dataclass

from nodegen.loader import Manifests
from nodegen.model import EnvVar, GatewaySettings, Service, ServiceOverride, Standard
from nodegen.validate import node_service_entries, parse_bind, short_name, use_of

ROLE_LOG_LEVEL = {"dev": "DEBUG"}
ALERTMANAGER = "alertmanager"  # the catalog service `alertmanager: true` places beside Prometheus


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
class Remote:
    """A service this node uses from another node."""

    service: str
    node: str
    url: str
    env_name: str
    fallback: str | None
    fallback_url: str | None


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


def resolve_node(m: Manifests, node_id: str) -> NodeView:
    """The node as templates see it; assumes the manifests validated cleanly."""
    node = m.nodes[node_id]
    runs = {name: override for _, name, override in node_service_entries(m, node_id)}
    if m.fleet.alertmanager and "prometheus" in runs and ALERTMANAGER in m.fleet.services:
        runs.setdefault(ALERTMANAGER, None)  # Phase MONITOR: beside every Prometheus
    remotes = tuple(_remote(m, node_id, name) for name in sorted(node.uses))
    log_level = ROLE_LOG_LEVEL.get(node.role, "INFO")
    services = tuple(
        _service(m, node_id, name, m.fleet.services[name], runs[name], set(runs), remotes)
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
        sources=(m.fleet_doc.path, m.node_docs[node_id].path),
        log_level=log_level,
        network=f"{m.fleet.project}_net",
    )


def _remote(m: Manifests, node_id: str, name: str) -> Remote:
    use = use_of(m.nodes[node_id].uses[name])
    svc = m.fleet.services[name]
    fallback_url = None
    if use.fallback == "local":
        fallback_url = f"http://{name}:{svc.port}"
    elif use.fallback is not None:
        fallback_url = _remote_url(m, use.fallback, svc, use.via)
    url = _remote_url(m, use.node, svc, use.via)
    return Remote(name, use.node, url, env_url_name(name), use.fallback, fallback_url)


def _remote_url(m: Manifests, serving: str, svc: Service, via: str) -> str:
    other = m.nodes[serving]
    if via == "private" or svc.route is None:
        return f"http://{other.address}:{svc.port}"
    return f"https://{other.domain}/api/{svc.route}"


def _service(
    m: Manifests, node_id: str, name: str, svc: Service, override: ServiceOverride | None,
    runs: set[str], remotes: tuple[Remote, ...],
) -> Svc:
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
    publish = override.publish if override is not None and override.publish is not None else svc.publish
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
        websocket=tuple(svc.websocket),
        depends=tuple(sorted(n for n in svc.needs if n in runs)),
        env=_env(m, svc, override, runs, remotes, node.role),
        volume=f"{name}_data" if svc.data else None,
        data=svc.data,
        mounts=tuple(sorted(svc.mounts.items())),
        publish=tuple(b for b in (parse_bind(p) for p in publish) if b is not None),
        labels=labels,
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
    m: Manifests, svc: Service, override: ServiceOverride | None, runs: set[str],
    remotes: tuple[Remote, ...], role: str,
) -> tuple[Env, ...]:
    out: dict[str, Env] = {}
    for need in svc.needs:
        target = m.fleet.services.get(need)
        if target is None or target.protocol == "tcp":
            continue
        remote = next((r for r in remotes if r.service == need), None)
        url = remote.url if remote and need not in runs else f"http://{need}:{target.port}"
        out[env_url_name(need)] = Env(env_url_name(need), url, False, f"{need} base URL")
    if svc.class_ != "core" and not svc.gateway:
        default = ROLE_LOG_LEVEL.get(role, "INFO")
        out["LOG_LEVEL"] = Env("LOG_LEVEL", None, False, "log level: DEBUG only in dev", default)
    merged = dict(svc.env)
    if override is not None:
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
