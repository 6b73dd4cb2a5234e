"""output/swarm/stack.yml: the whole fleet as one Docker Swarm stack (`docker stack deploy`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping

from nodegen.checksums import Files
from nodegen.record import record
from nodegen.templating import compose_str, template
from nodegen.view.resolve import Env, FleetView, NodeView, Svc

NAME = "swarm"
PATH = "stack.yml"
OBJECT_LIMIT = 64  # config and secret names
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_DURATION = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


@record
class Config:
    """A generated file handed to a task as a Swarm config; named by its content, as configs are immutable."""

    key: str
    file: str  # relative to the stack file
    target: str


@record
class Secret:
    """A Swarm secret the operator creates (`docker secret create`); the stack names it, never holds it."""

    key: str
    name: str
    target: str
    origin: str  # how the operator creates it


@record
class Grant:
    """Who may read one secret file in a task: Swarm mounts secrets owned by root, mode 0444, by default."""

    secret: Secret
    uid: str | None  # None: root
    gid: str | None
    mode: str


@record
class Task:
    """One node's service as a Swarm service."""

    key: str
    node: str
    svc: Svc
    image: str
    network: str
    environment: tuple[tuple[str, str], ...]  # name -> rendered YAML value
    secrets: tuple[Grant, ...]
    configs: tuple[Config, ...]
    volume: str | None  # stack volume key
    ports: tuple[int, ...]  # published in host mode (the gateway's)
    unpublished: tuple[str, ...]  # Compose binds Swarm cannot express, named in a comment
    order: str  # start-first, or stop-first when two tasks cannot coexist
    monitor: str


@record
class Stack:
    """What stack.yml.j2 renders."""

    fleet: FleetView
    tasks: tuple[Task, ...]
    networks: tuple[tuple[str, str], ...]  # key -> name
    volumes: tuple[tuple[str, str], ...]
    configs: tuple[Config, ...]
    secrets: tuple[Secret, ...]
    constraint_label: str

    @property
    def sources(self) -> tuple[str, ...]:
        return self.fleet.sources

    @property
    def regenerate(self) -> str:
        return f"nodegen render --target {NAME}"


def seconds(duration: str) -> float:
    unit = "ms" if duration.endswith("ms") else duration[-1]
    return float(duration[: -len(unit)]) * _DURATION[unit]


def _monitor(view: NodeView) -> str:
    """How long an updated task must stay healthy: start period plus every retry of the health check."""
    hc = view.standard.healthcheck
    total = seconds(hc.start_period) + (seconds(hc.interval) + seconds(hc.timeout)) * hc.retries
    return f"{int(total)}s"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _config_key(project: str, node: str, rel: str, text: str) -> str:
    stem = _UNSAFE.sub("-", rel.rsplit("/", 1)[-1])
    head = f"{project}_{node}_"
    tail = f"_{_digest(text)}"
    return head + stem[: OBJECT_LIMIT - len(head) - len(tail)] + tail


def _configs(view: NodeView, s: Svc, files: Files) -> tuple[Config, ...]:
    """Every generated file below the service's mounts (and the gateway's nginx.conf)."""
    mounts = list(s.mounts)
    if s.gateway:
        mounts.append(("infra/nginx/nginx.conf", "/etc/nginx/nginx.conf"))
    out: list[Config] = []
    for src, dst in mounts:
        for rel in sorted(files):
            if rel == src or rel.startswith(src + "/"):
                target = dst + rel[len(src):]
                out.append(Config(_config_key(view.project, view.id, rel, files[rel]), f"../{view.id}/{rel}", target))
    return tuple(out)


def secret_file_var(name: str) -> str:
    """The variable that names a secret's file: Grafana reads GF_*__FILE, the official images NAME_FILE."""
    return f"{name}__FILE" if name.startswith("GF_") else f"{name}_FILE"


def _secret(view: NodeView, e: Env) -> Secret:
    key = f"{view.id}_{e.secret_name}"
    name = f"{view.project}_{key}"
    origin = f'{e.name} of {view.id}\'s .env: printf %s "${e.name}" | docker secret create {name} -'
    return Secret(key, name, e.secret_name, origin)


def _tls_secrets(view: NodeView) -> tuple[Secret, ...]:
    gw = view.gateway
    return tuple(
        Secret(f"{view.id}_tls_{kind}", f"{view.project}_{view.id}_tls_{kind}", path,
               f"{view.id}'s file for {path}: docker secret create {view.project}_{view.id}_tls_{kind} FILE")
        for kind, path in (("fullchain", gw.certificate), ("privkey", gw.certificate_key))
    )


def _grants(view: NodeView, s: Svc) -> tuple[Grant, ...]:
    """The service's user alone reads its secrets when the manifest or the build names that user. An image
    that picks its own user (Prometheus runs as nobody, nginx workers read the htpasswd file) gets Swarm's
    default 0444, as it could not read a root-only file. The TLS key is read by nginx's master, as root."""
    uid, _, gid = (s.user or "").partition(":")
    grants = [Grant(_secret(view, e), uid or None, (gid or uid) or None, "0400" if uid else "0444")
              for e in s.env if e.secret]
    if s.gateway:
        grants += [Grant(x, None, None, "0400") for x in _tls_secrets(view)]
    return tuple(grants)


def _environment(s: Svc) -> Iterator[tuple[str, str]]:
    for e in s.environment:
        if e.secret:
            yield secret_file_var(e.name), compose_str(f"/run/secrets/{e.secret_name}")
        elif e.value is None:
            yield e.name, f'"${{{e.name}:-{e.default or ""}}}"'
        else:
            yield e.name, compose_str(e.value)


def _unpublished(view: NodeView, s: Svc) -> tuple[str, ...]:
    binds = [f"{addr}:{port}" for addr, port in s.publish]
    if s.gateway and view.gateway.listen:
        binds += [f"{view.gateway.listen}:{p}" for p in (view.gateway.http_port, view.gateway.https_port)]
    return tuple(binds)


def _task(view: NodeView, s: Svc, files: Files) -> Task:
    return Task(
        key=f"{view.id}-{s.name}",
        node=view.id,
        svc=s,
        image=s.cluster.image or s.image or "",
        network=f"{view.id}_net",
        environment=tuple(_environment(s)),
        secrets=_grants(view, s),
        configs=_configs(view, s, files),
        volume=f"{view.id}-{s.volume}" if s.volume else None,
        ports=(view.gateway.http_port, view.gateway.https_port) if s.gateway else (),
        unpublished=_unpublished(view, s),
        order="stop-first" if s.gateway or s.volume else "start-first",
        monitor=_monitor(view),
    )


def stack(fleet: FleetView, node_files: Mapping[str, Files]) -> Stack:
    tasks = tuple(_task(v, s, node_files[v.id]) for v in fleet.nodes for s in v.services)
    configs = {c.key: c for t in tasks for c in t.configs}
    secrets = {g.secret.key: g.secret for t in tasks for g in t.secrets}
    return Stack(
        fleet=fleet,
        tasks=tasks,
        networks=tuple((f"{v.id}_net", f"{fleet.project}_{v.id}_net") for v in fleet.nodes),
        volumes=tuple((t.volume, t.svc.volume) for t in tasks if t.volume and t.svc.volume),
        configs=tuple(configs[k] for k in sorted(configs)),
        secrets=tuple(secrets[k] for k in sorted(secrets)),
        constraint_label=f"node.labels.{fleet.project}.node",
    )


def render(fleet: FleetView, node_files: Mapping[str, Files]) -> Files:
    """The stack file, from the fleet and every node's rendered files (configs are named by their content)."""
    return {PATH: template("docker-stack.yml.j2", st=stack(fleet, node_files))}
