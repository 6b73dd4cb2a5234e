"""nodegen/topology.py: who runs what and the cross-node edges, computed once and indexed both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodegen.load.manifests import Manifests, load_manifests
from nodegen.topology import Edge, node_runs, topology
from nodegen.workspace import Workspace
from tests.conftest import ROOT


def shipped() -> Manifests:
    manifests, problems = load_manifests(Workspace(ROOT))
    assert manifests is not None and not problems
    return manifests


def test_the_shipped_fleet_edges_and_their_indexes() -> None:
    topo = topology(shipped())
    expected = tuple(Edge("node1", s, "node2", "gateway", "primary")
                     for s in ("ocr-service", "stt-service", "vector-db", "web-search"))
    assert topo.edges == expected
    assert topo.edges_from("node1") == expected and topo.edges_to("node2") == expected
    assert topo.edges_from("node2") == () and topo.edges_to("node3") == ()
    assert topo.scrapers == ("node1",)


def test_related_nodes_follow_edges_and_scrapers() -> None:
    topo = topology(shipped())
    assert topo.related_nodes("node1") == ["node2", "node3"]  # it uses node2 and scrapes every node
    assert topo.related_nodes("node3") == ["node1"]  # scraped by node1's Prometheus


def test_runs_keep_the_manifest_order() -> None:
    m = shipped()
    assert topology(m).runs["node2"] == node_runs(m, "node2")
    assert node_runs(m, "node2")[:3] == ("postgres", "redis", "nats")


def test_private_use_is_indexed_by_provider_and_service(workspace: Path) -> None:
    node1 = workspace / "nodes" / "node1.yaml"
    node1.write_text(node1.read_text(encoding="utf-8").replace(
        "  web-search: node2\n", "  web-search: {node: node2, via: private}\n"), encoding="utf-8")
    manifests, _ = load_manifests(Workspace(workspace))
    assert manifests is not None
    topo = topology(manifests)
    assert topo.private_consumers("node2", "web-search") == ("node1",)
    assert topo.private_consumers("node2", "stt-service") == ()


def test_fleet_peers_are_parsed_once_per_fleet_not_once_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node's view carries the same peers; parsing them for each node made resolving quadratic."""
    from nodegen.topology import fleet_peers
    from nodegen.view import resolve

    calls: list[object] = []

    def counted(m: Manifests) -> tuple[str, ...]:
        calls.append(m)
        return fleet_peers(m)

    monkeypatch.setattr(resolve, "fleet_peers", counted)
    m = shipped()
    view = resolve.resolve_fleet(m)
    assert len(calls) == 1 and len(view.nodes) == 3
    assert {node.fleet_peers for node in view.nodes} == {fleet_peers(m)}
