"""The fleet as one system: which node uses which service from which node, derived from the manifests.

Tolerant of manifests that did not validate (unknown nodes and services are skipped), so the port
ledger can still be drawn for a fleet whose only problems are port conflicts.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodegen.loader import Manifests
from nodegen.validate import node_runs, use_of

PROMETHEUS = "prometheus"


@dataclass(frozen=True, order=True)
class Edge:
    """One cross-node use: consumer reaches service on provider, as its primary or its fallback."""

    consumer: str
    service: str
    provider: str
    via: str  # gateway | private
    kind: str  # primary | fallback


def edges(m: Manifests) -> list[Edge]:
    """Every cross-node use of the fleet, sorted; 'local' fallbacks stay on their node and are left out."""
    return list(m.once("edges", lambda: tuple(_edges(m))))


def _edges(m: Manifests) -> list[Edge]:
    out: list[Edge] = []
    for consumer, node in m.nodes.items():
        for service, raw in node.uses.items():
            use = use_of(raw)
            for provider, kind in ((use.node, "primary"), (use.fallback, "fallback")):
                if provider in m.nodes and provider != consumer and service in m.fleet.services:
                    out.append(Edge(consumer, service, provider, use.via, kind))
    return sorted(out)


def edges_from(m: Manifests, consumer: str) -> list[Edge]:
    return [e for e in edges(m) if e.consumer == consumer]


def edges_to(m: Manifests, provider: str) -> list[Edge]:
    return [e for e in edges(m) if e.provider == provider]


def private_consumers(m: Manifests, provider: str, service: str) -> tuple[str, ...]:
    """Nodes that reach service on provider's private address (so provider binds it there)."""
    return m.once("private_consumers", lambda: _private_consumers(m)).get((provider, service), ())


def _private_consumers(m: Manifests) -> dict[tuple[str, str], tuple[str, ...]]:
    found: dict[tuple[str, str], set[str]] = {}
    for e in edges(m):
        if e.via == "private":
            found.setdefault((e.provider, e.service), set()).add(e.consumer)
    return {key: tuple(sorted(consumers)) for key, consumers in found.items()}


def prometheus_nodes(m: Manifests) -> list[str]:
    """Nodes that run Prometheus: each scrapes every node of the fleet."""
    return list(m.once("prometheus_nodes", lambda: sorted(n for n in m.nodes if PROMETHEUS in node_runs(m, n))))


def related_nodes(m: Manifests, node_id: str) -> list[str]:
    """Other nodes whose manifests shape this node's files (addresses, domains, who uses what)."""
    related: set[str] = set()
    for edge in edges(m):
        if edge.consumer == node_id:
            related.add(edge.provider)
        if edge.provider == node_id:
            related.add(edge.consumer)
    scrapers = prometheus_nodes(m)
    related.update(scrapers)
    if node_id in scrapers:
        related.update(m.nodes)
    related.discard(node_id)
    return sorted(related)


def host_port(address: str, port: int) -> str:
    """address:port, with an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

