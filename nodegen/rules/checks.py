"""Rules of the standard that look across services and nodes; each returns located problems."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nodegen.load.defaults import OTHER_TABLE
from nodegen.load.manifests import Manifests
from nodegen.load.model import EnvVar, Service, Standard, Use
from nodegen.load.yamlio import Document, Loc
from nodegen.problems import Problem
from nodegen.rules.ports import check_port_conflicts
from nodegen.standard import (
    ABS_PATH,
    ALERTMANAGER_RECEIVER_ENV,
    CONTROL,
    ENV_NAME,
    GATEWAY_STATUS_PORT,
    HOSTNAME,
    HTTP_PATH,
    IMAGE,
    NODE_ID,
    ORIGIN,
    PG_IDENT,
    POSTGRES,
    PROJECT_NAME,
    REL_PATH,
    RESERVED_ROLES,
    ROUTE,
    SECRET_NAME,
    SECRET_REF,
    SERVICE_NAME,
    TELEGRAM_TOKEN_ENV,
    WEBHOOK_NAME,
    WEBHOOK_URL,
    class_of,
    ip_network_of,
    is_ip,
    is_ipv4,
    parse_bind,
    parse_range,
    pg_role_name,
    secret_kind,
    service_ports,
    short_name,
    use_of,
    webhook_token_env,
)
from nodegen.topology import node_runs, node_service_entries, route_visibility

RESERVED_NODE_IDS = ("swarm", "kubernetes")  # output/<target>/ folders beside the node folders

Rule = Callable[[Manifests], Iterator[Problem]]


def _svc(name: str, *rest: str | int) -> Loc:
    return ("services", name, *rest)


# --- name-format --------------------------------------------------------------------------

def check_names(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    if not PROJECT_NAME.fullmatch(m.fleet.project):
        yield fd.problem(("project",), "name-format",
                         f"project {m.fleet.project!r} must be lowercase ASCII letters and digits (2-31)")
    shorts: dict[str, str] = {}
    for name, svc in m.fleet.services.items():
        if not SERVICE_NAME.fullmatch(name):
            yield fd.problem(_svc(name), "name-format",
                             f"service name {name!r} must match ^[a-z][a-z0-9-]{{1,38}}$ (ASCII only)", key=True)
            continue
        short = short_name(name)
        if short in shorts:
            yield fd.problem(_svc(name), "name-format",
                             f"{name}: label name {short!r} collides with service {shorts[short]!r}", key=True)
        shorts.setdefault(short, name)
        for var in svc.env:
            if not ENV_NAME.fullmatch(var):
                yield fd.problem(_svc(name, "env", var), "name-format",
                                 f"{name}: environment variable {var!r} must match ^[A-Z_][A-Z0-9_]*$", key=True)
    for node_id, doc in m.node_docs.items():
        if not NODE_ID.fullmatch(node_id):
            yield doc.problem(("node",), "name-format", f"node id {node_id!r} must match ^[a-z][a-z0-9-]{{1,30}}$")
        elif node_id in RESERVED_NODE_IDS:
            yield doc.problem(("node",), "name-format",
                              f"node id {node_id!r} is reserved: output/{node_id}/ holds the {node_id} target")


# --- port-class (port-conflict: rules/ports.py) --------------------------------------------------------------

def check_port_classes(m: Manifests) -> Iterator[Problem]:
    fd, std = m.fleet_doc, m.fleet.standard
    ranges: dict[str, tuple[int, int]] = {}
    for cls, text in std.port_classes.items():
        parsed = parse_range(text)
        if parsed is None:
            yield fd.problem(("standard", "port_classes", cls), "port-class",
                             f"port class {cls}: {text!r} is not a range LOW-HIGH within 1-65535")
        else:
            ranges[cls] = parsed
    core = set(std.core_ports)
    for name, svc in m.fleet.services.items():
        if svc.class_ not in std.classes:  # the vocabulary rule says so; its ports have no class to lie in
            continue
        for loc, port in service_ports(svc):
            yield from _port_class_problem(fd, name, svc, loc, port, ranges, core, class_of(std, svc.class_).range)


def _port_class_problem(
    fd: Document, name: str, svc: Service, loc: Loc, port: int, ranges: dict[str, tuple[int, int]], core: set[int],
    cls: str | None,
) -> Iterator[Problem]:
    where = _svc(name, *loc)
    if not 1 <= port <= 65535:
        yield fd.problem(where, "port-class", f"{name}: port {port} is not in 1-65535")
        return
    if cls is None:  # infrastructure: the well-known ports
        if port not in core:
            yield fd.problem(where, "port-class",
                             f"{name}: {svc.class_} service port {port} is not a well-known core port "
                             f"({', '.join(map(str, sorted(core)))})")
        return
    if port in core:
        yield fd.problem(where, "port-class", f"{name}: port {port} is reserved for core infrastructure")
        return
    if cls in ranges and not ranges[cls][0] <= port <= ranges[cls][1]:
        low, high = ranges[cls]
        yield fd.problem(where, "port-class", f"{name}: port {port} is outside the {svc.class_} range {low}-{high}")


# --- vocabulary --------------------------------------------------------------------------------------

def _not_in(what: str, word: str, where: str, names: Iterable[str]) -> str:
    listed = list(names)
    hint = _did_you_mean(word, listed)
    starting = [n for n in listed if n.startswith(word)]
    if not hint and len(starting) == 1:  # prod -> production
        hint = f"; did you mean {starting[0]!r}?"
    return f"{what} {word!r} is not in {where} ({', '.join(listed) or 'empty'}){hint}"


def check_vocabulary(m: Manifests) -> Iterator[Problem]:
    """Classes, roles and uptimes are names the fleet's standard declares, and its references resolve."""
    fd, std = m.fleet_doc, m.fleet.standard
    for cls, spec in std.classes.items():
        if ("standard", "classes", cls) not in fd.keys:  # the standard's own classes: the defaults fit together
            continue
        if spec.range is not None and spec.range not in std.port_classes:
            yield fd.problem(("standard", "classes", cls, "range"), "vocabulary",
                             _not_in(f"class {cls}: range", spec.range, "standard.port_classes", std.port_classes))
        if spec.table is not None and spec.table not in std.port_tables and spec.table != OTHER_TABLE:
            yield fd.problem(("standard", "classes", cls, "table"), "vocabulary",
                             _not_in(f"class {cls}: table", spec.table, "standard.port_tables", std.port_tables))
    for cls in std.limits:
        if cls not in std.classes and ("standard", "limits", cls) in fd.keys:  # the defaults cover every class
            yield fd.problem(("standard", "limits", cls), "vocabulary",
                             _not_in("limits of class", cls, "standard.classes", std.classes), key=True)
    for name, svc in m.fleet.services.items():
        if svc.class_ not in std.classes:
            yield fd.problem(_svc(name, "class"), "vocabulary",
                             _not_in(f"{name}: class", svc.class_, "standard.classes", std.classes))
    for node_id, node in sorted(m.nodes.items()):
        doc = m.node_docs[node_id]
        if node.role not in std.roles:
            yield doc.problem(("role",), "vocabulary", _not_in("role", node.role, "standard.roles", std.roles))
        if node.uptime not in std.uptimes:
            yield doc.problem(("uptime",), "vocabulary",
                              _not_in("uptime", node.uptime, "standard.uptimes", std.uptimes))


# --- health / metrics --------------------------------------------------------------------------

def check_endpoints(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        for loc, path in (("health", "path"), svc.health.path), (("metrics", "path"), svc.metrics.path):
            if not HTTP_PATH.fullmatch(path):
                yield fd.problem(_svc(name, *loc), "value-syntax", f"{name}: {path!r} is not a plain URL path")
        if svc.protocol == "tcp":
            if not svc.health.command and not svc.gateway:
                yield fd.problem(_svc(name), "health-endpoint",
                                 f"{name}: a tcp service needs health.command (a probe that exists in its image)",
                                 key=True)
            continue
        if svc.build is None:
            continue  # pinned third-party images declare their real endpoints
        if svc.health.path != "/health":
            yield fd.problem(_svc(name, "health", "path"), "health-endpoint",
                             f"{name}: services we build answer GET /health, not {svc.health.path}")
        if not svc.metrics.enabled or svc.metrics.path != "/metrics":
            where = _svc(name, "metrics", "path" if svc.metrics.enabled else "enabled")
            yield fd.problem(where, "metrics-endpoint", f"{name}: services we build expose GET /metrics")


# --- public-port ------------------------------------------------------------------------------

def check_public_ports(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        for j, bind in enumerate(svc.publish):
            yield from _bind_problem(fd, _svc(name, "publish", j), name, bind, svc.gateway)
    for node_id, doc in m.node_docs.items():
        for i, name, override in node_service_entries(m, node_id):
            found = m.fleet.services.get(name)
            if override is None or override.publish is None or found is None:
                continue
            for j, bind in enumerate(override.publish):
                yield from _bind_problem(doc, ("services", i, name, "publish", j), name, bind, found.gateway)
    for node_id, node in m.nodes.items():
        listen = node.gateway.listen
        if listen is not None and not is_ipv4(listen):
            yield m.node_docs[node_id].problem(("gateway", "listen"), "value-syntax",
                                               f"gateway listen {listen!r} is not an IPv4 address")


def _bind_problem(doc: Document, loc: Loc, name: str, bind: str, gateway: bool) -> Iterator[Problem]:
    if gateway:
        yield doc.problem(loc, "public-port", f"{name}: the gateway's ports come from the node's gateway settings")
        return
    parsed = parse_bind(bind)
    if parsed is None:
        yield doc.problem(loc, "public-port", f"{name}: publish {bind!r} must be ADDRESS:PORT, e.g. 127.0.0.1:3000")
        return
    if not ipaddress.ip_address(parsed[0].strip("[]")).is_loopback:
        yield doc.problem(loc, "public-port",
                          f"{name}: only the gateway publishes ports; {bind!r} must bind a loopback address")


# --- dependencies -----------------------------------------------------------------------------

def check_dependencies(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        for j, need in enumerate(svc.needs):
            if need not in m.fleet.services:
                yield fd.problem(_svc(name, "needs", j), "unknown-dependency", _unknown_need(m, name, need))
            elif need == name:
                yield fd.problem(_svc(name, "needs", j), "dependency-cycle", f"{name} needs itself")
    yield from _cycles(m)
    yield from _node_dependencies(m)


def _unknown_need(m: Manifests, name: str, need: str) -> str:
    return f"{name} needs {need!r}, which is not in the catalog" + _did_you_mean(need, m.fleet.services)


def _node_dependencies(m: Manifests) -> Iterator[Problem]:
    for node_id, node in m.nodes.items():
        runs = set(node_runs(m, node_id))
        for i, name, _ in node_service_entries(m, node_id):
            placed = m.fleet.services.get(name)
            for need in placed.needs if placed else []:
                if need in m.fleet.services and need not in runs and need not in node.uses:
                    yield m.node_docs[node_id].problem(("services", i), "unknown-dependency",
                                                       f"{name} needs {need}, which {node_id} neither runs nor uses")


def _cycles(m: Manifests) -> Iterator[Problem]:
    graph = {n: [d for d in s.needs if d in m.fleet.services and d != n] for n, s in m.fleet.services.items()}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(node: str, stack: list[str]) -> Iterator[list[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                yield [*stack[stack.index(nxt):], nxt]
            elif nxt not in state:
                yield from visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for start in sorted(graph):
        if start in state:
            continue
        for cycle in visit(start, []):
            if frozenset(cycle) in reported:
                continue
            reported.add(frozenset(cycle))
            fd = m.fleet_doc
            steps = " -> ".join(f"{n} ({fd.path}:{fd.where(_svc(n, 'needs'))[0]})" for n in cycle)
            yield fd.problem(_svc(cycle[0], "needs"), "dependency-cycle", f"dependency cycle: {steps}")


# --- node distribution ----------------------------------------------------------------------

def check_distribution(m: Manifests) -> Iterator[Problem]:
    for node_id, node in m.nodes.items():
        doc = m.node_docs[node_id]
        seen: set[str] = set()
        gateways = 0
        for i, name, _ in node_service_entries(m, node_id):
            if name not in m.fleet.services:
                yield doc.problem(("services", i), "node-distribution", f"{node_id}: unknown service {name!r}"
                                  + _did_you_mean(name, m.fleet.services))
            elif name in seen:
                yield doc.problem(("services", i), "node-distribution", f"{node_id}: {name} is listed twice")
            else:
                gateways += m.fleet.services[name].gateway
            seen.add(name)
        if gateways != 1:
            yield doc.problem(("services",), "node-distribution",
                              f"{node_id}: a node runs exactly one gateway service, not {gateways}", key=True)
        for name, raw in node.uses.items():
            yield from _check_use(m, node_id, name, use_of(raw), seen)


def _check_use(m: Manifests, node_id: str, name: str, use: Use, runs: set[str]) -> Iterator[Problem]:
    doc = m.node_docs[node_id]
    loc: Loc = ("uses", name)
    if name not in m.fleet.services:
        hint = _did_you_mean(name, m.fleet.services)
        yield doc.problem(loc, "node-distribution", f"uses unknown service {name!r}{hint}", key=True)
        return
    for target, where in ((use.node, loc), (use.fallback, (*loc, "fallback"))):
        if target is None or (target == "local" and where != loc):
            continue
        if target == node_id:
            yield doc.problem(where, "node-distribution", f"{name}: a node cannot use a service from itself")
        elif target in m.unreadable:
            continue  # that manifest's own problem is reported; what it runs is unknown
        elif target not in m.nodes:
            hint = _did_you_mean(target, [n for n in m.nodes if n != node_id])
            yield doc.problem(where, "node-distribution", f"{name}: no node {target!r}{hint}")
        elif name not in node_runs(m, target):
            yield doc.problem(where, "node-distribution", f"{name}: node {target} does not run it")
    if use.fallback == "local" and name not in runs:
        yield doc.problem((*loc, "fallback"), "node-distribution",
                          f"{name}: fallback 'local' needs {name} in this node's services")
    if use.fallback != "local" and name in runs:
        yield doc.problem(loc, "node-distribution", f"{name}: runs locally and is also used from {use.node}", key=True)
    if use.fallback is not None and m.fleet.services[name].route is None:
        yield doc.problem(loc, "node-distribution", f"{name}: a fallback needs the service to have an API route",
                          key=True)
    yield from _check_use_access(m, node_id, name, use)


def _check_use_access(m: Manifests, node_id: str, name: str, use: Use) -> Iterator[Problem]:
    """How the consumer reaches the service: the serving node's gateway route, or its private address."""
    doc, svc, loc = m.node_docs[node_id], m.fleet.services[name], ("uses", name)
    if use.node not in m.nodes or name not in node_runs(m, use.node):
        return  # the reference itself is wrong, and reported above
    if use.fallback is not None and use.fallback == use.node:
        yield doc.problem((*loc, "fallback"), "node-distribution", f"{name}: the fallback is the primary, {use.node}")
    if use.via == "gateway" and svc.route is None:
        yield doc.problem((*loc, "via"), "node-distribution",
                          f"{name}: has no API route, so no gateway serves it; use via: private")
    if use.fallback is not None and m.nodes[node_id].gateway.internal_port in _gateway_ports(m.nodes[node_id]):
        yield doc.problem(("gateway", "internal_port"), "port-conflict",
                          "gateway internal_port (fallback routes) is also its http_port or https_port")
    if use.via != "private":
        return
    # The one exception to "only the gateway publishes": a bind on the serving node's private address.
    for target, where in ((use.node, (*loc, "via")), (use.fallback, (*loc, "fallback"))):
        serving = m.nodes.get(target) if target is not None else None
        if serving is None or not is_ip(serving.address):
            continue
        ip = ipaddress.ip_address(serving.address)
        if ip.is_global or ip.is_unspecified or ip.is_multicast:
            yield doc.problem(where, "public-port",
                              f"{name}: via private binds port {svc.port} on {target}'s address {serving.address}, "
                              "which is not private; only the gateway publishes (use via: gateway)")


def _gateway_ports(node: Any) -> tuple[int, int]:
    return node.gateway.http_port, node.gateway.https_port


def _did_you_mean(word: str, options: Any) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- routes ---------------------------------------------------------------------------------------

def check_routes(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        if svc.route is not None and not ROUTE.fullmatch(svc.route):
            yield fd.problem(_svc(name, "route"), "route",
                             f"{name}: route {svc.route!r} must be lowercase ASCII letters, digits and '-'")
        if svc.route is not None and svc.protocol == "tcp":
            yield fd.problem(_svc(name, "route"), "route", f"{name}: a tcp service cannot have an HTTP route")
        if svc.websocket and (svc.protocol != "http+ws" or svc.route is None):
            yield fd.problem(_svc(name, "websocket"), "route",
                             f"{name}: websocket channels need protocol http+ws and a route")
        for j, channel in enumerate(svc.websocket):
            if not ROUTE.fullmatch(channel):
                yield fd.problem(_svc(name, "websocket", j), "route", f"{name}: websocket channel {channel!r} "
                                 "must be lowercase ASCII letters, digits and '-'")
            elif channel in svc.websocket[:j]:
                yield fd.problem(_svc(name, "websocket", j), "route", f"{name}: channel {channel!r} is listed twice")
    for node_id in m.nodes:
        owners: dict[str, str] = {}
        for i, name, _ in node_service_entries(m, node_id):
            route = getattr(m.fleet.services.get(name), "route", None)
            if route is None:
                continue
            if route in owners and owners[route] != name:  # a service listed twice is node-distribution's
                message = f"{node_id}: route /api/{route}/ is used by {owners[route]} and {name}"
                yield m.node_docs[node_id].problem(("services", i), "route", message)
            owners.setdefault(route, name)


# --- secrets --------------------------------------------------------------------------------------

def check_secrets(m: Manifests) -> Iterator[Problem]:
    docs = [m.fleet_doc, *m.node_docs.values()]
    for doc in docs:
        yield from _scan_values(doc, doc.data, ())
    for name, svc in m.fleet.services.items():
        yield from _env_secrets(m.fleet_doc, _svc(name, "env"), name, svc.env)
    for node_id in m.nodes:
        for i, name, override in node_service_entries(m, node_id):
            if override is not None:
                yield from _env_secrets(m.node_docs[node_id], ("services", i, name, "env"), name, override.env)


def _env_secrets(doc: Document, base: Loc, name: str, env: dict[str, Any]) -> Iterator[Problem]:
    for var, value in env.items():
        if isinstance(value, EnvVar):
            if value.secret and value.value is not None:
                yield doc.problem((*base, var, "value"), "secret-literal",
                                  f"{name}: {var} is secret and must not have a value in a manifest (set it in .env)")
            # An explicit {secret: false, value: ...} is the way to say PASSWORD_MIN_LENGTH is a setting.
            literal = None if value.secret or "secret" in value.model_fields_set else value.value
        else:
            literal = value
        if literal is not None and SECRET_NAME.search(var) and str(literal) != "":
            yield doc.problem((*base, var), "secret-literal",
                              f"{name}: {var} looks like a secret; write {{secret: true}} and set it in .env "
                              "(or {secret: false, value: ...} for a setting)")


def _scan_values(doc: Document, data: Any, loc: Loc) -> Iterator[Problem]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _scan_values(doc, value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _scan_values(doc, value, (*loc, i))
    elif isinstance(data, str) and (what := secret_kind(data)) is not None:
        yield doc.problem(loc, "secret-literal", f"value looks like {what}; secrets belong in .env")


# --- images and values that reach rendered syntax ---------------------------------------------------

def check_images(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        if (svc.image is None) == (svc.build is None):
            yield fd.problem(_svc(name), "image", f"{name}: give exactly one of image or build", key=True)
        if svc.image is not None:
            yield from _image_problem(fd, _svc(name, "image"), name, svc.image)
        if svc.cluster.image is not None:
            yield from _image_problem(fd, _svc(name, "cluster", "image"), name, svc.cluster.image)
        if svc.build is not None and not REL_PATH.fullmatch(svc.build):
            yield fd.problem(_svc(name, "build"), "value-syntax",
                             f"{name}: build context {svc.build!r} must be a relative path inside the node root")
    for node_id in m.nodes:
        for i, name, override in node_service_entries(m, node_id):
            if override is not None and override.image is not None:
                yield from _image_problem(m.node_docs[node_id], ("services", i, name, "image"), name, override.image)


def _image_problem(doc: Document, loc: Loc, name: str, image: str) -> Iterator[Problem]:
    match = IMAGE.fullmatch(image)
    if match is None:
        yield doc.problem(loc, "image", f"{name}: {image!r} is not a valid image reference")
    elif "@sha256:" not in image and match["tag"] in (None, "latest"):
        yield doc.problem(loc, "image", f"{name}: image {image!r} must be pinned to a version tag, never latest")


ZONE_MIN = 32 * 1024  # nginx: zone "api_limit" is too small below 8 memory pages
LOG_SIZE = re.compile(r"[1-9][0-9]{0,5}[kmg]?", re.ASCII)
LOG_FILES = re.compile(r"[1-9][0-9]{0,2}", re.ASCII)


def _standard_values(fd: Document, std: Standard) -> Iterator[Problem]:
    """Values that pass `config -q` or render fine, and then stop nginx or a container from starting."""
    zone = std.rate_limit.zone_size
    if int(zone[:-1]) * (1024 if zone.endswith("k") else 1024 * 1024) < ZONE_MIN:
        yield fd.problem(("standard", "rate_limit", "zone_size"), "value-syntax",
                         f"rate_limit zone_size {zone} is below nginx's minimum, 32k")
    for key, pattern, what in (("max_size", LOG_SIZE, "a size like 10m"), ("max_file", LOG_FILES, "a count like 3")):
        value = std.log_rotation.get(key)  # type: ignore[call-overload]
        if value is not None and not pattern.fullmatch(value):
            yield fd.problem(("standard", "log_rotation", key), "value-syntax",
                             f"log_rotation {key} {value!r} must be {what}")


def check_values(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    if not HOSTNAME.fullmatch(m.fleet.domain):
        yield fd.problem(("domain",), "value-syntax", f"domain {m.fleet.domain!r} is not a lowercase DNS name")
    for doc in (fd, *m.node_docs.values()):
        yield from _control_chars(doc, doc.data, ())
    yield from _standard_values(fd, m.fleet.standard)
    for name, svc in m.fleet.services.items():
        paths = [(svc.data, _svc(name, "data"))] + [(dst, _svc(name, "mounts", src)) for src, dst in svc.mounts.items()]
        for path, loc in paths:
            if path is not None and not ABS_PATH.fullmatch(path):
                yield fd.problem(loc, "value-syntax", f"{name}: {path!r} must be an absolute container path")
        for src in svc.mounts:
            if not REL_PATH.fullmatch(src):
                yield fd.problem(_svc(name, "mounts", src), "value-syntax",
                                 f"{name}: mount source {src!r} must be a relative path inside the node root", key=True)
        yield from _exporter_values(m, name, svc)
    for node_id, node in m.nodes.items():
        yield from _node_values(m.node_docs[node_id], node)


def _exporter_values(m: Manifests, name: str, svc: Service) -> Iterator[Problem]:
    """host_mounts, beside and health.probe: what exporters use."""
    fd = m.fleet_doc
    for src, dst in svc.host_mounts.items():
        if not (ABS_PATH.fullmatch(src) and ABS_PATH.fullmatch(dst)):
            yield fd.problem(_svc(name, "host_mounts", src), "value-syntax",
                             f"{name}: host mount {src!r} -> {dst!r} needs two absolute paths", key=True)
    if svc.beside is not None and svc.beside != "*" and svc.beside not in m.fleet.services:
        yield fd.problem(_svc(name, "beside"), "unknown-dependency",
                         f"{name}: beside {svc.beside!r} is not a catalog service (or '*': every node)")
    for other, dep in m.fleet.services.items():
        if name in dep.needs and not svc.health.probe:
            yield fd.problem(_svc(other, "needs"), "health-endpoint",
                             f"{other} needs {name}, which has no healthcheck (health.probe: false)")


def _node_values(doc: Document, node: Any) -> Iterator[Problem]:
    if not HOSTNAME.fullmatch(node.domain):
        yield doc.problem(("domain",), "value-syntax", f"domain {node.domain!r} is not a lowercase DNS name")
    if not is_ip(node.address):
        yield doc.problem(("address",), "value-syntax", f"address {node.address!r} is not an IP address")
    resolver = node.gateway.resolver
    if not resolver.split() or not all(_resolver_ok(part) for part in resolver.split()):
        yield doc.problem(("gateway", "resolver"), "value-syntax",
                          f"resolver {resolver!r} must be IPv4[:PORT] addresses (port 1-65535)")
    for key in ("http_port", "https_port", "internal_port"):
        if not 1 <= getattr(node.gateway, key) <= 65535:
            port = getattr(node.gateway, key)
            yield doc.problem(("gateway", key), "port-class", f"gateway {key} {port} is not in 1-65535")
    for key in ("certificate", "certificate_key", "log_dir", "upstream_ca"):
        if not ABS_PATH.fullmatch(getattr(node.gateway, key)):
            yield doc.problem(("gateway", key), "value-syntax", f"gateway {key} must be an absolute path")


def _resolver_ok(part: str) -> bool:
    address, colon, port = part.partition(":")
    if not colon:
        return is_ipv4(address)
    return is_ipv4(address) and re.fullmatch(r"[0-9]{1,5}", port) is not None and 1 <= int(port) <= 65535


def _control_chars(doc: Document, data: Any, loc: Loc) -> Iterator[Problem]:
    if isinstance(data, dict):
        for key, value in data.items():
            if CONTROL.search(key):
                yield doc.problem((*loc, key), "value-syntax", "key contains control characters", key=True)
            yield from _control_chars(doc, value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _control_chars(doc, value, (*loc, i))
    elif isinstance(data, str) and CONTROL.search(data):
        yield doc.problem(loc, "value-syntax", "value contains a newline or control character")


# --- visibility / client-identity ---------------------------------------------------------------------

MIN_PREFIX = {4: 8, 6: 16}  # a wider "fleet" or "load balancer" network is the internet, not a network we run


def check_visibility(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    for j, text in enumerate(m.fleet.admin_networks):
        yield from _network_problem(fd, ("admin_networks", j), "visibility", "admin network", text)
    for name, svc in m.fleet.services.items():
        if svc.visibility not in (None, "none") and svc.route is None and not svc.spa:
            yield fd.problem(_svc(name, "visibility"), "visibility",
                             f"{name}: visibility {svc.visibility} needs a route or spa: true (a service without "
                             "one is never reachable through the gateway)")
    for node_id, node in m.nodes.items():
        doc = m.node_docs[node_id]
        for i, name, override in node_service_entries(m, node_id):
            found = m.fleet.services.get(name)
            if found is not None and override is not None and override.visibility not in (None, "none") \
                    and found.route is None and not found.spa:
                yield doc.problem(("services", i, name, "visibility"), "visibility",
                                  f"{name}: visibility {override.visibility} needs a route in the catalog")
        for j, text in enumerate(node.gateway.load_balancers):
            yield from _network_problem(doc, ("gateway", "load_balancers", j), "client-identity", "load balancer",
                                        text)
        for name, raw in node.uses.items():
            yield from _use_visibility(m, node_id, name, use_of(raw))


def check_hardening(m: Manifests) -> Iterator[Problem]:
    """Container confinement values, and `${NAME}` in a command, which compose fills from .env."""
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        for j, path in enumerate(svc.hardening.tmpfs):
            if not ABS_PATH.fullmatch(path) or path == "/":
                yield fd.problem(_svc(name, "hardening", "tmpfs", j), "value-syntax",
                                 f"{name}: tmpfs {path!r} must be an absolute container path below /")
        yield from _command_refs(fd, _svc(name, "command"), name, svc.command or [], svc.env)
    for node_id in m.nodes:
        for i, name, override in node_service_entries(m, node_id):
            found = m.fleet.services.get(name)
            if override is None or override.command is None or found is None:
                continue
            yield from _command_refs(m.node_docs[node_id], ("services", i, name, "command"), name, override.command,
                                     {**found.env, **override.env})


def _command_refs(doc: Document, base: Loc, name: str, command: list[str], env: dict[str, Any]) -> Iterator[Problem]:
    for j, word in enumerate(command):
        match = SECRET_REF.fullmatch(word)
        if match is None:
            continue
        value = env.get(match[1])
        if not (isinstance(value, EnvVar) and value.secret and not value.file):
            yield doc.problem((*base, j), "value-syntax",
                              f"{name}: {word} in a command must name a secret of the service's env "
                              "({secret: true}, not a file)")


# --- target-version -------------------------------------------------------------------------------

COMPOSE_CONFIGS_CONTENT = (2, 23, 1)  # `configs: {x: {content: ...}}`: how Synapse's configuration is handed over


def check_target_versions(m: Manifests) -> Iterator[Problem]:
    """A tool version the rendered files could not run on: Compose before inline configs, where Synapse runs."""
    compose = m.fleet.target_versions.compose
    if compose is None:
        return
    version = tuple(int(p) for p in compose.split("."))
    synapse = sorted(n for n in m.nodes if "matrix-synapse" in node_runs(m, n))
    if version < COMPOSE_CONFIGS_CONTENT and synapse:
        yield m.fleet_doc.problem(("target_versions", "compose"), "target-version",
                                  f"Compose {compose} cannot run {', '.join(synapse)}: Synapse's configuration is "
                                  "an inline config (configs: content:), which needs Compose 2.23.1 or later")


# --- postgres-role --------------------------------------------------------------------------------

def check_postgres_roles(m: Manifests) -> Iterator[Problem]:
    """A service's own PostgreSQL role (env `postgres:`): nodegen fills the values in, the names reach SQL."""
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        yield from _pg_env(fd, _svc(name, "env"), name, svc, svc.env)
        if "postgres_rights" in svc.model_fields_set and not _pg_entries(svc.env):
            yield fd.problem(_svc(name, "postgres_rights"), "postgres-role",
                             f"{name}: postgres_rights needs an env entry with postgres: (url, user or password)")
        elif _pg_entries(svc.env):
            yield from _pg_role_name(fd, name)
    for node_id in m.nodes:
        for i, name, override in node_service_entries(m, node_id):
            found = m.fleet.services.get(name)
            if override is not None and found is not None:
                yield from _pg_env(m.node_docs[node_id], ("services", i, name, "env"), name, found, override.env)
                if _pg_entries(override.env) and not _pg_entries(found.env):
                    yield from _pg_role_name(fd, name)
    yield from _pg_database(m)


def _pg_entries(env: dict[str, Any]) -> list[str]:
    return [var for var, value in env.items() if isinstance(value, EnvVar) and value.postgres is not None]


def _pg_env(doc: Document, base: Loc, name: str, svc: Service, env: dict[str, Any]) -> Iterator[Problem]:
    for var in _pg_entries(env):
        value = env[var]
        extra = sorted({"secret", "value", "file", "source"} & value.model_fields_set)
        if extra:
            yield doc.problem((*base, var, extra[0]), "postgres-role",
                              f"{name}: {var} is filled in from the service's own PostgreSQL role; drop {extra[0]}")
        elif name == POSTGRES or POSTGRES not in svc.needs:
            yield doc.problem((*base, var, "postgres"), "postgres-role",
                              f"{name}: {var} connects to PostgreSQL as the service's own role; the service "
                              f"must need {POSTGRES} (needs: [{POSTGRES}])")


def _pg_role_name(fd: Document, name: str) -> Iterator[Problem]:
    role = pg_role_name(name)
    if not PG_IDENT.fullmatch(role) or role.startswith("pg_") or role in RESERVED_ROLES:
        yield fd.problem(_svc(name), "postgres-role",
                         f"{name}: its PostgreSQL role would be {role!r}, which is reserved (pg_*, "
                         f"{', '.join(sorted(RESERVED_ROLES))}); rename the service")


def _pg_database(m: Manifests) -> Iterator[Problem]:
    """POSTGRES_DB reaches the init script's SQL and the services' URLs: a plain identifier only."""
    roles = any(_pg_entries(s.env) for s in m.fleet.services.values())
    pg = m.fleet.services.get(POSTGRES)
    if not roles or pg is None:
        return
    value = pg.env.get("POSTGRES_DB")
    if isinstance(value, str) and not PG_IDENT.fullmatch(value):
        yield m.fleet_doc.problem(_svc(POSTGRES, "env", "POSTGRES_DB"), "postgres-role",
                                  f"{POSTGRES}: POSTGRES_DB {value!r} must be a plain PostgreSQL name "
                                  "(lowercase letters, digits, _) where services connect as their own roles")


def check_proxy(m: Manifests) -> Iterator[Problem]:
    """Per-route gateway settings: CORS origins reach nginx quoted, so they are origins or nothing."""
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        cors = svc.proxy.cors
        for j, origin in enumerate(cors):
            if origin == "*" and len(cors) > 1:
                yield fd.problem(_svc(name, "proxy", "cors", j), "route",
                                 f"{name}: cors '*' allows every origin; list it alone")
            elif origin != "*" and not ORIGIN.fullmatch(origin):
                yield fd.problem(_svc(name, "proxy", "cors", j), "route",
                                 f"{name}: cors origin {origin!r} must be '*' or scheme://host[:port], lowercase, "
                                 "no path")
        if svc.spa and svc.protocol == "tcp":
            yield fd.problem(_svc(name, "spa"), "route", f"{name}: a single-page app is served over http")
    for node_id in m.nodes:
        first: str | None = None
        for i, name, _ in node_service_entries(m, node_id):
            placed = m.fleet.services.get(name)
            if placed is None or not placed.spa:
                continue
            if first is not None and first != name:
                yield m.node_docs[node_id].problem(("services", i), "route",
                                                   f"{node_id}: {first} and {name} are both served at / (spa: true)")
            first = first or name


def _network_problem(doc: Document, loc: Loc, rule: str, what: str, text: str) -> Iterator[Problem]:
    net = ip_network_of(text)
    if net is None:
        yield doc.problem(loc, rule, f"{what} {text!r} is not an IP address or network ADDRESS/PREFIX "
                          "(host bits zero)")
    elif net.prefixlen < MIN_PREFIX[net.version]:
        yield doc.problem(loc, rule, f"{what} {text!r} is wider than /{MIN_PREFIX[net.version]}: "
                          "it would trust most of the internet")


def _use_visibility(m: Manifests, node_id: str, name: str, use: Use) -> Iterator[Problem]:
    """A service used through another node's gateway must have a route there."""
    if use.via != "gateway" or name not in m.fleet.services or m.fleet.services[name].route is None:
        return
    doc, loc = m.node_docs[node_id], ("uses", name)
    for target, where in ((use.node, loc), (use.fallback, (*loc, "fallback"))):
        if target is None or target not in m.nodes or target == node_id:
            continue
        override = next((o for _, n, o in node_service_entries(m, target) if n == name), None)
        if name in node_runs(m, target) and route_visibility(m, target, name, override) == "none":
            yield doc.problem(where, "visibility",
                              f"{name}: {target}'s gateway has no route for it (visibility none); "
                              "use via: private, or give it visibility fleet on that node")


# --- alerting and secret files ----------------------------------------------------------------------

def check_alerting(m: Manifests) -> Iterator[Problem]:
    fd = m.fleet_doc
    for node_id, node in m.nodes.items() if "nginx-exporter" in m.fleet.services else ():
        g = node.gateway
        if GATEWAY_STATUS_PORT in (g.http_port, g.https_port, g.internal_port):
            yield m.node_docs[node_id].problem(("gateway",), "port-conflict",
                                               f"gateway port {GATEWAY_STATUS_PORT} is its stub_status listener "
                                               "(nginx-exporter)", key=True)
    am = m.fleet.services.get("alertmanager")
    if m.fleet.alertmanager and am is None:
        yield fd.problem(("alertmanager",), "node-distribution",
                         "alertmanager: true needs an 'alertmanager' service in the catalog")
    wanted = ALERTMANAGER_RECEIVER_ENV + ((TELEGRAM_TOKEN_ENV,) if m.fleet.telegram_chat_id is not None else ())
    wanted += tuple(webhook_token_env(name) for name in m.fleet.alert_webhooks if WEBHOOK_NAME.fullmatch(name))
    yield from _webhooks(m)
    for var in wanted if am is not None else ():
        value = am.env.get(var) if am is not None else None
        if not (isinstance(value, EnvVar) and value.secret and value.file):
            yield fd.problem(_svc("alertmanager", "env"), "secret-literal",
                             f"alertmanager: {var} must be {{secret: true, file: true}} (a receiver reads it)",
                             key=True)
    for name, svc in m.fleet.services.items():
        for var, value in svc.env.items():
            if isinstance(value, EnvVar) and value.file and not value.secret:
                yield fd.problem(_svc(name, "env", var, "file"), "schema",
                                 f"{name}: {var}: file: true is for secrets only (add secret: true)")
            if isinstance(value, EnvVar) and value.source is not None:
                yield from _env_source(m, name, var, value)


def _webhooks(m: Manifests) -> Iterator[Problem]:
    """Generic webhook receivers: a name that makes an .env variable, a URL that holds no secret."""
    fd = m.fleet_doc
    for name, url in m.fleet.alert_webhooks.items():
        if not WEBHOOK_NAME.fullmatch(name):
            yield fd.problem(("alert_webhooks", name), "name-format",
                             f"alert webhook name {name!r} must match ^[a-z][a-z0-9_]{{0,30}}$", key=True)
        if not WEBHOOK_URL.fullmatch(url):
            yield fd.problem(("alert_webhooks", name), "value-syntax",
                             f"alert webhook {name}: {url!r} must be https://host[:port]/path, lowercase host, "
                             "without user, query or fragment (the secret is the bearer token in .env)")
    if m.fleet.alert_webhooks and not m.fleet.alertmanager:
        yield fd.problem(("alert_webhooks",), "node-distribution",
                         "alert_webhooks are Alertmanager receivers: set alertmanager: true", key=True)


def _env_source(m: Manifests, name: str, var: str, value: EnvVar) -> Iterator[Problem]:
    """A borrowed secret names a secret of a service it needs or sits beside: both run on the node."""
    svc = m.fleet.services[name]
    owners = list(dict.fromkeys([*svc.needs, *([svc.beside] if svc.beside and svc.beside != "*" else [])]))
    found = [o for o in owners if o in m.fleet.services
             and isinstance(src := m.fleet.services[o].env.get(value.source or ""), EnvVar) and src.secret]
    if not value.secret:
        yield m.fleet_doc.problem(_svc(name, "env", var, "source"), "schema",
                                  f"{name}: {var}: source is for secrets only (add secret: true)")
    elif not found:
        yield m.fleet_doc.problem(_svc(name, "env", var, "source"), "secret-literal",
                                  f"{name}: {var}: source {value.source!r} must be a {{secret: true}} variable of a "
                                  f"service it needs or sits beside ({', '.join(owners) or 'none'})")


VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_operations(m: Manifests) -> Iterator[Problem]:
    """Where backups are shipped, and the existing volumes a switch-over adopts."""
    fd = m.fleet_doc
    target = m.fleet.standard.backup.ship_to
    if target is not None and target not in m.nodes and target not in m.unreadable:
        yield fd.problem(("standard", "backup", "ship_to"), "node-distribution",
                         f"backup ship_to {target!r} is not a node of the fleet{_did_you_mean(target, m.nodes)}")
    for node_id, node in m.nodes.items():
        doc = m.node_docs[node_id]
        runs = set(node_runs(m, node_id))
        for name, volume in node.adopt_volumes.items():
            svc = m.fleet.services.get(name)
            if name not in runs or svc is None or svc.data is None:
                yield doc.problem(("adopt_volumes", name), "node-distribution",
                                  f"adopt_volumes: {name} is not a service of {node_id} that keeps data", key=True)
            if not VOLUME_NAME.fullmatch(volume):
                yield doc.problem(("adopt_volumes", name), "value-syntax",
                                  f"adopt_volumes: {volume!r} is not a Docker volume name")
def check_cluster(m: Manifests) -> Iterator[Problem]:
    """Replicas that a cluster engine would start and that cannot share their node's resources."""
    fd = m.fleet_doc
    for name, svc in m.fleet.services.items():
        top = svc.cluster.max_replicas
        if top is not None and (svc.data is not None or svc.gateway or top < svc.cluster.replicas):
            yield fd.problem(_svc(name, "cluster", "max_replicas"), "cluster",
                             f"{name}: max_replicas {top} needs a stateless, non-gateway service with "
                             f"replicas ({svc.cluster.replicas}) at most that many")
        if svc.cluster.replicas == 1:
            continue
        if svc.data is not None:
            yield fd.problem(_svc(name, "cluster", "replicas"), "cluster",
                             f"{name}: a service with a data volume runs one replica (two would share {svc.data})")
        elif svc.gateway:
            yield fd.problem(_svc(name, "cluster", "replicas"), "cluster",
                             f"{name}: the gateway runs one replica per node (it publishes the node's ports)")


CHECKS: tuple[Rule, ...] = (
    check_names,
    check_vocabulary,
    check_port_classes,
    check_port_conflicts,
    check_endpoints,
    check_public_ports,
    check_dependencies,
    check_distribution,
    check_routes,
    check_secrets,
    check_images,
    check_values,
    check_alerting,
    check_visibility,
    check_proxy,
    check_postgres_roles,
    check_target_versions,
    check_hardening,
    check_operations,
    check_cluster,
)


def validate(m: Manifests) -> list[Problem]:
    """Every problem the rules find, sorted."""
    return sorted({p for check in CHECKS for p in check(m)})
