"""`nodegen diff`: what render would change, as a unified diff; with --base, a review summary against a Git revision."""

from __future__ import annotations

import json

import click

from nodegen.commands.common import Ctx, Drift, all_opt, nodes_arg, pass_ctx
from nodegen.output import unified_diff


@click.command("diff")
@nodes_arg
@all_opt
@click.option("--base", metavar="REF", help="compare the manifests at this Git revision with the working tree")
@click.option("--format", "style", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True,
              help="with --base: the summary as Markdown (for a pull request) or JSON (for a bot)")
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool, base: str | None, style: str) -> None:
    """Show what render would change (--all: every node, the fleet-wide files and the cluster targets);
    exit 1 on differences.

    With --base REF: render the manifests at REF and in the working tree and print what changes,
    node → service → facet, a one-line plan, then the file diff.
    """
    if base is not None:
        _against(c, base, style)
        return
    if not nodes and not all_nodes:
        raise click.UsageError("Missing argument 'NODE...' (or --all for every node and the fleet-wide files).")
    fleet = c.fleet()
    out = fleet.workspace.output_dir
    text = "".join(unified_diff(out / n, fleet.render(n), n) for n in fleet.select(nodes, all_nodes))
    if all_nodes:
        text += unified_diff(out, fleet.render_root(), "output", recurse=False)
        text += "".join(unified_diff(out / t, fleet.render_target(t), t) for t in fleet.targets())
    if text:
        click.echo(text, nl=False)
        raise Drift("")


def _against(c: Ctx, ref: str, style: str) -> None:
    from nodegen.review import as_json, markdown, plan, review

    fleet = c.fleet()
    result = review(fleet.workspace, ref, fleet)
    if style == "json":
        click.echo(json.dumps(as_json(result, ref), ensure_ascii=False, indent=2))
    else:
        click.echo(markdown(result, ref), nl=False)
    if result.changed:
        raise Drift(plan(result))
