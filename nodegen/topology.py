"""The fleet as one system: which node runs which service and uses which from which node, derived from the manifests.

Tolerant of manifests that did not validate (unknown nodes and services are skipped), so the port
ledger can still be drawn for a fleet whose only problems are port conflicts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from nodegen.load.manifests import Manifests
from nodegen.load.model import ServiceOverride
from nodegen.record import record
from nodegen.standard import PROMETHEUS, class_of, ip_network_of, is_ip, role_of, use_of


@record(order=True)
class Edge:
    """One cross-node use: consumer reaches service on provider, as its primary or its fallback."""

    consumer: str
    service: str
    provider: str
    via: str  # gateway | private
    kind: str  # primary | fallback


def node_service_entries(m: Manifests, node_id: str) -> Iterator[tuple[int, str, ServiceOverride | None]]:
    """(index, service name, override) for each entry of a node's services list."""
    for i, entry in enumerate(m.nodes[node_id].services):
        if isinstance(entry, str):
            yield i, entry, None
        else:
            for name, override in entry.items():
                yield i, name, override


def node_runs(m: Manifests, node_id: str) -> tuple[str, ...]:
    """The services a node lists, in its manifest's order."""
    return tuple(name for _, name, _ in node_service_entries(m, node_id))


VISIBILITY_ORDER = {"none": 0, "fleet": 1, "public": 2}


def route_visibility(m: Manifests, node_id: str, name: str, override: ServiceOverride | None) -> str:
    """Who reaches the service's gateway route on this node: public, fleet or none."""
    svc = m.fleet.services[name]
    if svc.route is None and not svc.spa:
        return "none"
    if override is not None and override.visibility is not None:
        return override.visibility
    node = m.nodes[node_id]
    std = m.fleet.standard
    ceiling = node.visibility or ("fleet" if role_of(std, node.role).dev else "public")
    own = svc.visibility or class_of(std, svc.class_).visibility  # docs/decisions.md
    return min(own, ceiling, key=VISIBILITY_ORDER.__getitem__)


def fleet_peers(m: Manifests) -> tuple[str, ...]:
    """The nodes' private addresses and the admin networks, sorted: what a fleet route allows."""
    def key(text: str) -> tuple[int, Any, int]:
        net = ipaddress.ip_network(text, strict=False)
        return (net.version, net.network_address, net.prefixlen)
    found = {n.address for n in m.nodes.values() if is_ip(n.address)}
    found.update(a for a in m.fleet.admin_networks if ip_network_of(a) is not None)
    return tuple(sorted(found, key=key))


@record
class Topology:
    """Who runs what and every cross-node edge, indexed both ways; computed once from the manifests."""

    runs: Mapping[str, tuple[str, ...]]
    edges: tuple[Edge, ...]  # sorted; 'local' fallbacks stay on their node and are left out
    scrapers: tuple[str, ...]  # nodes that run Prometheus: each scrapes every node of the fleet
    by_consumer: Mapping[str, tuple[Edge, ...]]
    by_provider: Mapping[str, tuple[Edge, ...]]
    private: Mapping[tuple[str, str], tuple[str, ...]]  # (provider, service) -> consumers via private

    def edges_from(self, consumer: str) -> tuple[Edge, ...]:
        return self.by_consumer.get(consumer, ())

    def edges_to(self, provider: str) -> tuple[Edge, ...]:
        return self.by_provider.get(provider, ())

    def private_consumers(self, provider: str, service: str) -> tuple[str, ...]:
        """Nodes that reach service on provider's private address (so provider binds it there)."""
        return self.private.get((provider, service), ())

    def related_nodes(self, node_id: str) -> list[str]:
        """Other nodes whose manifests shape this node's files (addresses, domains, who uses what)."""
        related = {e.provider for e in self.edges_from(node_id)} | {e.consumer for e in self.edges_to(node_id)}
        related.update(self.scrapers)
        if node_id in self.scrapers:
            related.update(self.runs)
        related.discard(node_id)
        return sorted(related)


def topology(m: Manifests) -> Topology:
    """The fleet's topology, in one pass over the manifests."""
    runs = {node_id: node_runs(m, node_id) for node_id in sorted(m.nodes)}
    edges = tuple(sorted(_edges(m)))
    by_consumer: dict[str, list[Edge]] = {}
    by_provider: dict[str, list[Edge]] = {}
    private: dict[tuple[str, str], set[str]] = {}
    for e in edges:
        by_consumer.setdefault(e.consumer, []).append(e)
        by_provider.setdefault(e.provider, []).append(e)
        if e.via == "private":
            private.setdefault((e.provider, e.service), set()).add(e.consumer)
    return Topology(
        runs=runs,
        edges=edges,
        scrapers=tuple(n for n, names in runs.items() if PROMETHEUS in names),
        by_consumer={k: tuple(v) for k, v in by_consumer.items()},
        by_provider={k: tuple(v) for k, v in by_provider.items()},
        private={k: tuple(sorted(v)) for k, v in private.items()},
    )


def _edges(m: Manifests) -> Iterator[Edge]:
    for consumer, node in m.nodes.items():
        for service, raw in node.uses.items():
            use = use_of(raw)
            for provider, kind in ((use.node, "primary"), (use.fallback, "fallback")):
                if provider in m.nodes and provider != consumer and service in m.fleet.services:
                    yield Edge(consumer, service, provider, use.via, kind)
