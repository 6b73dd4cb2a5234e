"""`nodegen render`: write output/<node>/ atomically, every named node or none."""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nodegen.checksums import Files
from nodegen.commands.common import Ctx, all_opt, nodes_arg, orphans, pass_ctx, target_opt
from nodegen.output import (
    Comparison,
    OutputError,
    Staged,
    check_root_files,
    clean_staging,
    commit_staged,
    discard_staged,
    os_error,
    removable,
    remove_folder,
    stage_folders,
    write_root_files,
)

if TYPE_CHECKING:
    from nodegen.pipeline import Fleet

@click.command("render")
@nodes_arg
@all_opt
@target_opt
@click.option("--force", is_flag=True, help="overwrite files edited by hand since nodegen wrote them")
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool, targets: tuple[str, ...], force: bool) -> None:
    """Write output/<node>/ for the given nodes (nothing is written if any manifest has a problem,
    or if any node's folder cannot be written).

    --all also writes the cluster targets of fleet.yaml `targets` (and those already in output/);
    --target writes one more, with every node folder its files refer to.
    """
    fleet = c.fleet()
    if targets and nodes:
        raise click.UsageError("--target renders every node: give no node names")
    chosen = fleet.select(nodes, all_nodes or bool(targets))
    out = fleet.workspace.output_dir
    cluster = {t: fleet.render_target(t) for t in fleet.targets(targets)} if all_nodes or targets else {}
    try:
        _render(fleet, chosen, out, cluster, all_nodes=all_nodes, force=force)
    except OSError as exc:
        raise os_error(exc) from None


def _render(
    fleet: Fleet, chosen: list[str], out: Path, cluster: dict[str, Files], *, all_nodes: bool, force: bool
) -> None:
    clean_staging(out)
    root_files: Files = {}
    staged, root, gone = _prepare(fleet, chosen, out, root_files, cluster, all_nodes=all_nodes, force=force)
    if force:
        _announce_forced(staged, root)
    commit_staged(staged)
    for item in staged:
        changed = item.before.changed
        click.echo(f"{item.folder.name}: " + (f"{changed} file(s) written or removed" if changed else "up to date"))
    written = write_root_files(out, root_files, force=force)
    click.echo("output: " + (f"{written.changed} fleet-wide file(s) written or removed" if written.changed
                             else "up to date"))
    for orphan in gone:
        remove_folder(out / orphan, force=force)
        click.echo(f"{orphan}: removed (no manifest)")


def _prepare(
    fleet: Fleet, chosen: list[str], out: Path, root_files: Files, cluster: dict[str, Files], *,
    all_nodes: bool, force: bool,
) -> tuple[list[Staged], Comparison, list[str]]:
    """Stage every node beside output/ and check the fleet-wide files and orphans; on any refusal,
    remove what was staged and raise with every reason (nothing has been written)."""
    failures: list[str] = []
    staged: list[Staged] = []
    # Each node is staged as soon as it is rendered, so file creation overlaps the rendering.
    rendering = fleet.render_all(chosen)
    folders = chain(((out / node_id, files) for node_id, files in rendering.nodes),
                    ((out / name, files) for name, files in cluster.items()))  # the cluster targets' folders

    try:
        for folder, result in stage_folders(folders, force=force):
            if isinstance(result, OutputError):
                failures.append(f"{folder.name}: {result}")
            else:
                staged.append(result)
        # Fleet-wide files describe every node, and every manifest was validated: keep them current
        # whichever nodes were named, so a partial render does not leave FLEET.md stale.
        root = Comparison("output")
        try:
            root_files.update(rendering.fleet_files())
            root = check_root_files(out, root_files, force=force)
        except OutputError as exc:
            failures.append(f"output: {exc}")
        gone = orphans(fleet) if all_nodes else []
        for orphan in gone:
            try:
                removable(out / orphan, force=force)
            except OutputError as exc:
                failures.append(f"{orphan}: {exc}")
    except BaseException:
        discard_staged(staged)
        raise
    if failures:
        discard_staged(staged)
        raise OutputError("\n".join(failures) + "\nnothing written")
    return staged, root, gone


def _announce_forced(staged: list[Staged], root: Comparison) -> None:
    """--force names every hand edit it overwrites and every file it removes, before it writes."""
    comparisons = [*(s.before for s in staged), root]
    for cmp in comparisons:
        for rel in cmp.edited:
            what = "removing (not written by nodegen)" if rel in cmp.extra else "overwriting a hand edit"
            click.echo(f"--force: {what}: {cmp.folder}/{rel}")
