"""`nodegen check`: the CI gate; exit 1 when output/ is not what the manifests render."""

from __future__ import annotations

import click

from nodegen import cache
from nodegen.commands.common import Ctx, Drift, all_opt, drift_lines, nodes_arg, orphans, pass_ctx


@click.command("check")
@nodes_arg
@all_opt
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool) -> None:
    """Exit 1 if output/ differs from what the manifests render (stale, missing or extra files).

    A clean result is cached in .nodegen-cache/ (set NODEGEN_NO_CACHE=1 to always render).
    """
    ws = c.find()
    key = cache.fingerprint(ws) if cache.enabled() else ""
    fast = None if all_nodes and nodes else cache.clean_by_cache(ws, list(nodes) or None, key)
    if fast is not None:
        click.echo(f"ok: output/ is current for {', '.join(fast)}")
        return
    from nodegen.output import compare

    fleet = c.fleet()
    chosen = fleet.select(nodes, all_nodes, default_all=True)
    out = fleet.workspace.output_dir
    lines: list[str] = []
    for node_id, files in fleet.render_many(chosen).items():
        lines += drift_lines(compare(out / node_id, files, node_id))
    if not nodes:
        lines += [f"{o}/: extra (no manifest)" for o in orphans(fleet)]
        lines += drift_lines(compare(out, fleet.render_root(), "output", recurse=False))
    if lines:
        raise Drift("\n".join(lines) + "\nrun: nodegen render " + (" ".join(nodes) if nodes else "--all"))
    if not nodes and key:
        cache.store(ws, key, cache.snapshot(ws, chosen))
    click.echo(f"ok: output/ is current for {', '.join(chosen)}")
