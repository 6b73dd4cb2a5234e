"""`nodegen graph`: the Mermaid source of the fleet's diagram, or of one node's."""

from __future__ import annotations

import click

from nodegen.commands.common import Ctx, pass_ctx
from nodegen.helptext import complete_nodes


@click.command("graph")
@click.argument("node", required=False, metavar="[NODE]", shell_complete=complete_nodes)
@pass_ctx
def command(c: Ctx, node: str | None) -> None:
    """Print Mermaid flowchart source: the whole fleet, or one node (as in FLEET.md and INFRASTRUCTURE.md)."""
    from nodegen.view.diagram import fleet_diagram, node_diagram

    fleet = c.fleet()
    if node is None:
        click.echo(fleet_diagram(fleet.resolved), nl=False)
        return
    (chosen,) = fleet.select((node,), False)
    click.echo(node_diagram(fleet.view(chosen)), nl=False)
