"""`nodegen validate`: check the manifests against the standard."""

from __future__ import annotations

import click

from nodegen.commands.common import Ctx, nodes_arg, pass_ctx


@click.command("validate")
@nodes_arg
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...]) -> None:
    """Check the manifests against the standard; print every problem."""
    c.reports()
    fleet = c.fleet()
    chosen = fleet.select(nodes, False, default_all=True)
    placements = sum(len(fleet.manifests.nodes[n].services) for n in chosen)
    c.echo(f"ok: {len(chosen)} node(s), {placements} service placement(s), "
               f"{len(fleet.manifests.fleet.services)} catalog service(s)")
