"""`nodegen render`: write output/<node>/ atomically."""

from __future__ import annotations

import click

from nodegen.commands.common import Ctx, all_opt, nodes_arg, orphans, pass_ctx
from nodegen.output import (
    OutputError,
    Staged,
    clean_staging,
    commit_staged,
    remove_folder,
    stage_folders,
    write_root_files,
)


@click.command("render")
@nodes_arg
@all_opt
@click.option("--force", is_flag=True, help="overwrite files edited by hand since nodegen wrote them")
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool, force: bool) -> None:
    """Write output/<node>/ for the given nodes (nothing is written if any manifest has a problem)."""
    fleet = c.fleet()
    chosen = fleet.select(nodes, all_nodes)
    out = fleet.workspace.output_dir
    clean_staging(out)
    failures: list[str] = []
    staged: list[Staged] = []
    # Each node is staged beside output/ as soon as it is rendered; nothing is swapped in before
    # every node has rendered and staged (a failed render removes the staging folders).
    rendering = fleet.render_all(chosen)
    folders = ((out / node_id, files) for node_id, files in rendering.nodes)
    for folder, result in stage_folders(folders, force=force):
        if isinstance(result, OutputError):
            failures.append(f"{folder.name}: {result}")
        else:
            staged.append(result)
    commit_staged(staged)
    for item in staged:
        changed = item.before.changed
        click.echo(f"{item.folder.name}: " + (f"{changed} file(s) written or removed" if changed else "up to date"))
    # Fleet-wide files describe every node, and every manifest was validated: keep them current
    # whichever nodes were named, so a partial render does not leave FLEET.md stale.
    try:
        root = write_root_files(out, rendering.fleet_files(), force=force)
        changed = root.changed
        click.echo("output: " + (f"{changed} fleet-wide file(s) written or removed" if changed else "up to date"))
    except OutputError as exc:
        failures.append(f"output: {exc}")
    if all_nodes:
        for orphan in orphans(fleet):
            try:
                remove_folder(out / orphan, force=force)
                click.echo(f"{orphan}: removed (no manifest)")
            except OutputError as exc:
                failures.append(f"{orphan}: {exc}")
    if failures:
        raise OutputError("\n".join(failures))
