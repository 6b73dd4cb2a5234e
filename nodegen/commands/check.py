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
    from nodegen.handedits import explain

    lines: list[str] = []
    edits: list[str] = []
    target = " ".join(nodes) if nodes else "--all"
    for node_id, files in fleet.render_many(chosen).items():
        cmp = compare(out / node_id, files, node_id)
        lines += drift_lines(cmp)
        edits += [explain(node_id, r, out / node_id / r, files.get(r), node=node_id) for r in cmp.edited]
    if not nodes:
        lines += [f"{o}/: extra (no manifest)" for o in orphans(fleet)]
        root_files = fleet.render_root()
        cmp = compare(out, root_files, "output", recurse=False)
        lines += drift_lines(cmp)
        edits += [explain("output", r, out / r, root_files.get(r), node="--all") for r in cmp.edited]
    if lines:
        hint = "\nrun: nodegen render " + target
        if edits:
            hint = "\nhand edits (render refuses them until they are in the manifests or dropped):\n" + "\n".join(
                f"  {e}" for e in edits) + hint
        raise Drift("\n".join(lines) + hint)
    if not nodes and key:
        cache.store(ws, key, cache.snapshot(ws, chosen))
    click.echo(f"ok: output/ is current for {', '.join(chosen)}")
