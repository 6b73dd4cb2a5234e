"""The port ledger: every port the fleet takes, read from the manifests, its conflicts as located problems.

One ledger, two readers: the port-conflict rule (validate) and `nodegen ports` (its conflicts and
the next free port of a class).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from nodegen.load.manifests import Manifests
from nodegen.load.model import Service, ServiceOverride
from nodegen.load.yamlio import Document, Loc
from nodegen.problems import Problem
from nodegen.record import record
from nodegen.standard import class_of, is_ip, parse_bind, parse_range, publish_of, service_ports
from nodegen.topology import Topology, node_service_entries, topology

RULE = "port-conflict"


@record
class Bind:
    """One host port a node's files take, on one address (None: every address), and where it is written."""

    address: Any  # an ipaddress address, or None for every address
    port: int
    owner: str
    doc: Document
    loc: Loc


def _publish_loc(i: int, name: str, override: ServiceOverride | None, j: int) -> Loc:
    if override is not None and override.publish is not None:
        return ("services", i, name, "publish", j)
    return ("services", i)


def host_binds(m: Manifests, topo: Topology, node_id: str) -> Iterator[Bind]:
    """The gateway's ports, every publish and every bind on the private address for another node."""
    node, doc = m.nodes[node_id], m.node_docs[node_id]
    # A host port is taken per address: 127.0.0.1:3000 and [::1]:3000 can both be bound. The gateway
    # listens on every address unless `listen` says otherwise.
    listen = node.gateway.listen
    gw_addr = ipaddress.ip_address(listen) if listen is not None and is_ip(listen) else None
    for key in ("http_port", "https_port"):
        yield Bind(gw_addr, getattr(node.gateway, key), "the gateway", doc, ("gateway", key))
    address = ipaddress.ip_address(node.address) if is_ip(node.address) else None
    for i, name, override in node_service_entries(m, node_id):
        svc = m.fleet.services.get(name)
        if svc is None:
            continue
        for j, bind in enumerate(publish_of(svc, override)):
            parsed = parse_bind(bind)
            if parsed is not None:
                at = ipaddress.ip_address(parsed[0].strip("[]"))
                yield Bind(at, parsed[1], name, doc, _publish_loc(i, name, override, j))
        for consumer in topo.private_consumers(node_id, name):
            if address is not None:
                yield Bind(address, svc.port, f"{name} for {consumer}", m.node_docs[consumer], ("uses", name, "via"))


def host_conflicts(m: Manifests, topo: Topology, node_id: str) -> Iterator[Problem]:
    """Two binds of one node on the same host port and overlapping addresses."""
    gw = m.nodes[node_id].gateway
    if gw.http_port == gw.https_port:
        yield m.node_docs[node_id].problem(("gateway", "https_port"), RULE,
                                           f"gateway http_port and https_port are both {gw.http_port}")
    taken: dict[tuple[Any, int], Bind] = {}
    for i, bind in enumerate(host_binds(m, topo, node_id)):
        first = taken.get((None, bind.port)) or taken.get((bind.address, bind.port))
        if first is not None and i >= 2:  # the gateway's own two ports are compared above
            yield bind.doc.problem(bind.loc, RULE, f"{bind.owner}: host port {bind.port} is already published by "
                                   + _located(first))
        taken.setdefault((bind.address, bind.port), bind)


def _located(bind: Bind) -> str:
    """The first owner of a port, with where its bind is written (the gateway's ports are its node's settings)."""
    if bind.owner == "the gateway":
        return bind.owner
    line, col = bind.doc.where(bind.loc)
    return f"{bind.owner} ({bind.doc.path}:{line}:{col})"


def catalog_conflicts(m: Manifests) -> Iterator[Problem]:
    """Two catalog services listening on the same port (the gateway's 80/443 are per-node settings)."""
    fd = m.fleet_doc
    owner: dict[int, tuple[str, Loc]] = {}
    known: dict[str, int | None] = {}
    for name, svc in m.fleet.services.items():
        if svc.gateway:
            continue
        for loc, port in service_ports(svc):
            if port in owner and owner[port][0] != name:
                other, other_loc = owner[port]
                line, col = fd.where(("services", other, *other_loc))
                yield fd.problem(("services", name, *loc), RULE,
                                 f"{name}: port {port} is already used by {other} ({fd.path}:{line}:{col})"
                                 + _next_free_hint(m, svc, known))
            owner.setdefault(port, (name, loc))


def _next_free_hint(m: Manifests, svc: Service, known: dict[str, int | None]) -> str:
    """'; the next free mvp port is 7007' for a service whose port clashes (empty for core services);
    known remembers each class's answer, so a fleet with many clashes stays linear."""
    if class_of(m.fleet.standard, svc.class_).range is None:
        return ""
    klass = svc.class_
    if klass not in known:
        known[klass] = next_free(m, klass)
    port = known[klass]
    return f"; the next free {klass} port is {port} (nodegen ports --next {klass})" if port else ""


def check_port_conflicts(m: Manifests) -> Iterator[Problem]:
    """The port-conflict rule: the catalog's ports, then every node's host ports."""
    yield from catalog_conflicts(m)
    topo = topology(m)
    for node_id in sorted(m.nodes):
        yield from host_conflicts(m, topo, node_id)


def taken_ports(m: Manifests) -> set[int]:
    """Every port the fleet uses anywhere: catalog services (placed or not), core ports, gateways, host binds."""
    taken = set(m.fleet.standard.core_ports)
    for svc in m.fleet.services.values():
        taken.update(port for _, port in service_ports(svc))
    topo = topology(m)
    for node_id, node in m.nodes.items():
        taken.add(node.gateway.internal_port)
        taken.update(b.port for b in host_binds(m, topo, node_id))
    return taken


def next_free(m: Manifests, klass: str) -> int | None:
    """The first free port after the highest one of the class, within the class's range (wrapping to its start)."""
    std = m.fleet.standard
    rng = parse_range(std.port_classes.get(class_of(std, klass).range or "", ""))
    if rng is None:
        return None
    low, high = rng
    taken = taken_ports(m)
    own: list[int] = [p for svc in m.fleet.services.values() if svc.class_ == klass
                      for _, p in service_ports(svc) if low <= p <= high]
    start: int = max(own) + 1 if own else low
    return next((p for p in [*range(start, high + 1), *range(low, start)] if p not in taken), None)
