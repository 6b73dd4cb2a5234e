"""`nodegen verify`: the real tools' verdict on the rendered files."""

from __future__ import annotations

import click

from nodegen.commands.common import Ctx, all_opt, nodes_arg, pass_ctx
from nodegen.errors import NodegenError
from nodegen.verify import verify_node


@click.command("verify")
@nodes_arg
@all_opt
@click.option("--strict", is_flag=True, help="a tool that is not installed is a failure")
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool, strict: bool) -> None:
    """Run Docker Compose config -q, nginx -t, promtool, amtool and shellcheck on the rendered files."""
    fleet = c.fleet()
    bad = 0
    for node_id in fleet.select(nodes, all_nodes, default_all=True):
        for r in verify_node(fleet.view(node_id)):
            failed = r.status == "failed" or (strict and r.status == "skipped")
            click.echo(f"{r.node}  {r.tool:<10} {'FAILED' if failed else r.status}")
            if r.detail and (failed or r.status == "skipped"):
                click.echo("    " + r.detail.replace("\n", "\n    "))
            bad += failed
    if bad:
        raise NodegenError(f"{bad} check(s) failed")
