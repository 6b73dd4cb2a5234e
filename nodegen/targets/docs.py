"""docs/INFRASTRUCTURE.md: one node described for reviewers (services, ports, routes, cross-node use, diagram)."""

from __future__ import annotations

from nodegen.templating import template
from nodegen.view.diagram import node_diagram
from nodegen.view.ports import node_rows, node_tables
from nodegen.view.resolve import NodeView

PATH = "docs/INFRASTRUCTURE.md"


def render(view: NodeView) -> dict[str, str]:
    https_port = "" if view.gateway.https_port == 443 else f":{view.gateway.https_port}"
    text = template(
        "INFRASTRUCTURE.md.j2", v=view, https_port=https_port,
        ports=node_tables(node_rows(view), view.standard), diagram=node_diagram(view),
    )
    return {PATH: text}
