"""`nodegen diff`: what render would change, as a unified diff."""

from __future__ import annotations

import click

from nodegen.commands.common import Ctx, Drift, pass_ctx
from nodegen.output import unified_diff


@click.command("diff")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...]) -> None:
    """Show what render would change; exit 1 when there are differences."""
    fleet = c.fleet()
    text = "".join(unified_diff(fleet.workspace.output_dir / n, fleet.render(n), n) for n in fleet.select(nodes, False))
    if text:
        click.echo(text, nl=False)
        raise Drift("")
