"""The port ledger: every port the fleet takes, from the manifests, its conflicts located, and the next free one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from nodegen.load.manifests import Manifests
from nodegen.load.yamlio import Document, Loc
from nodegen.standard import CLASS_RANGE, parse_bind, parse_range, service_ports
from nodegen.topology import Topology, node_service_entries, topology

NEXT_CLASSES = ("mvp", "utility", "multimodal", "dagi")


@dataclass(frozen=True)
class Conflict:
    """Two owners of one port, each with where it is written."""

    port: int
    scope: str  # "catalog" or a node id
    first: str
    second: str

    def __str__(self) -> str:
        return f"port {self.port} ({self.scope}): {self.first} and {self.second}"



# --- conflicts --------------------------------------------------------------------------------------

def _at(doc: Document, loc: Loc, what: str) -> str:
    line, col = doc.where(loc)
    return f"{what} ({doc.path}:{line}:{col})"


def catalog_conflicts(m: Manifests) -> list[Conflict]:
    """Two catalog services listening on the same port."""
    fd = m.fleet_doc
    owner: dict[int, str] = {}
    out: list[Conflict] = []
    for name, svc in m.fleet.services.items():
        if svc.gateway:
            continue
        for loc, port in service_ports(svc):
            here = _at(fd, ("services", name, *loc), name)
            if port in owner and not owner[port].startswith(f"{name} ("):
                out.append(Conflict(port, "catalog", owner[port], here))
            owner.setdefault(port, here)
    return out


def _binds(m: Manifests, topo: Topology, node_id: str) -> Iterator[tuple[str | None, int, str]]:
    """(address or None for every address, host port, owner with location) of every host bind of a node."""
    node, doc, fd = m.nodes[node_id], m.node_docs[node_id], m.fleet_doc
    for key in ("http_port", "https_port"):
        yield node.gateway.listen, getattr(node.gateway, key), _at(doc, ("gateway", key), "the gateway")
    for i, name, override in node_service_entries(m, node_id):
        svc = m.fleet.services.get(name)
        if svc is None or svc.gateway:
            continue
        publish: list[tuple[str, Document, Loc]]
        if override is not None and override.publish is not None:
            publish = [(bind, doc, ("services", i, name, "publish", j)) for j, bind in enumerate(override.publish)]
        else:
            publish = [(bind, fd, ("services", name, "publish", j)) for j, bind in enumerate(svc.publish)]
        for bind, where_doc, loc in publish:
            parsed = parse_bind(bind)
            if parsed is not None:
                yield parsed[0].strip("[]"), parsed[1], _at(where_doc, loc, name)
        for consumer in topo.private_consumers(node_id, name):
            yield node.address, svc.port, _at(m.node_docs[consumer], ("uses", name, "via"), f"{name} for {consumer}")


def host_conflicts(m: Manifests, topo: Topology, node_id: str) -> list[Conflict]:
    """Two binds of one node on the same host port and overlapping addresses."""
    seen: list[tuple[str | None, int, str]] = []
    out: list[Conflict] = []
    for address, port, where in _binds(m, topo, node_id):
        for other_address, other_port, other_where in seen:
            if port == other_port and (address is None or other_address is None or address == other_address):
                out.append(Conflict(port, node_id, other_where, where))
                break
        seen.append((address, port, where))
    return out


def conflicts(m: Manifests) -> list[Conflict]:
    found = catalog_conflicts(m)
    topo = topology(m)
    for node_id in sorted(m.nodes):
        found += host_conflicts(m, topo, node_id)
    return found


# --- next free port ---------------------------------------------------------------------------------

def taken_ports(m: Manifests) -> set[int]:
    """Every port the fleet uses anywhere: catalog services (placed or not), core ports, gateways, host binds."""
    taken = set(m.fleet.standard.core_ports)
    topo = topology(m)
    for svc in m.fleet.services.values():
        taken.update(port for _, port in service_ports(svc))
    for node_id, node in m.nodes.items():
        taken.update((node.gateway.http_port, node.gateway.https_port, node.gateway.internal_port))
        taken.update(port for _, port, _ in _binds(m, topo, node_id))
    return taken


def next_free(m: Manifests, klass: str) -> int | None:
    """The first free port after the highest one of the class, within the class's range (wrapping to its start)."""
    ranges = {str(k): v for k, v in m.fleet.standard.port_classes.items()}
    rng = parse_range(ranges.get(CLASS_RANGE[klass], ""))
    if rng is None:
        return None
    low, high = rng
    taken = taken_ports(m)
    own: list[int] = [p for svc in m.fleet.services.values() if svc.class_ == klass
                      for _, p in service_ports(svc) if low <= p <= high]
    start: int = max(own) + 1 if own else low
    return next((p for p in [*range(start, high + 1), *range(low, start)] if p not in taken), None)
