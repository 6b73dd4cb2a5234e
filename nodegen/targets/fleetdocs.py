"""output/FLEET.md: every node, the cross-node edges, the fleet's port ledger and a Mermaid diagram."""

from __future__ import annotations

from nodegen.templating import template
from nodegen.view.diagram import fleet_diagram
from nodegen.view.ports import fleet_rows, fleet_tables, node_rows
from nodegen.view.resolve import FleetView

PATH = "FLEET.md"


def render(fleet: FleetView) -> dict[str, str]:
    rows = fleet_rows(r for view in fleet.nodes for r in node_rows(view))
    tables = fleet.nodes[0].standard.port_tables if fleet.nodes else None  # every node shares the fleet's standard
    return {PATH: template("FLEET.md.j2", f=fleet, ports=fleet_tables(rows, tables=tables),
                           diagram=fleet_diagram(fleet))}
