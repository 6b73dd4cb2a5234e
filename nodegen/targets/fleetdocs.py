"""output/FLEET.md: every node, the cross-node edges, the fleet's port ledger and a Mermaid diagram."""

from __future__ import annotations

from nodegen.load.model import Standard
from nodegen.templating import template
from nodegen.view.diagram import fleet_diagram
from nodegen.view.ports import fleet_rows, fleet_tables, node_rows
from nodegen.view.resolve import FleetView

PATH = "FLEET.md"


def render(fleet: FleetView) -> dict[str, str]:
    rows = fleet_rows(r for view in fleet.nodes for r in node_rows(view))
    std = fleet.nodes[0].standard if fleet.nodes else Standard()  # every node shares the fleet's standard
    return {PATH: template("FLEET.md.j2", f=fleet, ports=fleet_tables(rows, std),
                           diagram=fleet_diagram(fleet))}
