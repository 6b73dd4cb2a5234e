"""`nodegen diff`: what render would change, as a unified diff."""

from __future__ import annotations

import click

from nodegen.commands.common import Ctx, Drift, all_opt, nodes_arg, pass_ctx
from nodegen.output import unified_diff


@click.command("diff")
@nodes_arg
@all_opt
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool) -> None:
    """Show what render would change (--all: every node and the fleet-wide files); exit 1 on differences."""
    if not nodes and not all_nodes:
        raise click.UsageError("Missing argument 'NODE...' (or --all for every node and the fleet-wide files).")
    fleet = c.fleet()
    out = fleet.workspace.output_dir
    text = "".join(unified_diff(out / n, fleet.render(n), n) for n in fleet.select(nodes, all_nodes))
    if all_nodes:
        text += unified_diff(out, fleet.render_root(), "output", recurse=False)
    if text:
        click.echo(text, nl=False)
        raise Drift("")
