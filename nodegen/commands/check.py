"""`nodegen check`: the CI gate; exit 1 when output/ is not what the manifests render."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from nodegen import cache
from nodegen.checksums import Files
from nodegen.commands.common import Ctx, Drift, all_opt, drift_lines, nodes_arg, orphans, pass_ctx
from nodegen.problems import Problem


@click.command("check")
@nodes_arg
@all_opt
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool) -> None:
    """Exit 1 if output/ differs from what the manifests render (stale, missing or extra files).

    A clean result is cached in .nodegen-cache/ (set NODEGEN_NO_CACHE=1 to always render).
    """
    if c.format != "json":
        c.reports()
    ws = c.find()
    key = cache.fingerprint(ws) if cache.enabled() else ""
    fast = None if all_nodes and nodes else cache.clean_by_cache(ws, list(nodes) or None, key)
    if fast is not None:
        _clean(c, fast)
        return
    from nodegen.output import compare

    fleet = c.fleet()
    chosen = fleet.select(nodes, all_nodes, default_all=True)
    out = fleet.workspace.output_dir
    lines: list[str] = []
    edits: list[str] = []
    target = " ".join(nodes) if nodes else "--all"
    covered = list(chosen)
    rendering = fleet.render_all(chosen)  # each node compared as it arrives, then let go
    for node_id, files in rendering.nodes:
        cmp = compare(out / node_id, files, node_id)
        lines += drift_lines(cmp)
        edits += _explained(node_id, out / node_id, cmp.edited, files, node_id)
    if not nodes:
        for name in fleet.targets():  # the cluster targets, each a folder of its own
            target_files = fleet.render_target(name)
            cmp = compare(out / name, target_files, name)
            lines += drift_lines(cmp)
            edits += _explained(name, out / name, cmp.edited, target_files, "--all")
            covered.append(name)
        lines += [f"{o}/: extra (no manifest)" for o in orphans(fleet)]
        root_files = rendering.fleet_files()  # rendered by a worker beside the nodes, when there are workers
        cmp = compare(out, root_files, "output", recurse=False)
        lines += drift_lines(cmp)
        edits += _explained("output", out, cmp.edited, root_files, "--all")
    found = _as_problems(lines, edits, target)
    if lines:
        _machine(c, chosen, found)
        hint = "\nrun: nodegen render " + target
        if edits:
            hint = "\nhand edits (render refuses them until they are in the manifests or dropped):\n" + "\n".join(
                f"  {e}" for e in edits) + hint
        raise Drift("\n".join(lines) + hint)
    if not nodes and key:
        cache.store(ws, key, cache.snapshot(ws, covered))
    _clean(c, sorted(covered))  # in the order the cache lists them


def _explained(name: str, folder: Path, edited: list[str], files: Files, node: str) -> list[str]:
    """Each hand-edited file of folder, explained (handedits is imported only when there is one)."""
    if not edited:
        return []
    from nodegen.handedits import explain

    return [explain(name, rel, folder / rel, files.get(rel), node=node) for rel in edited]


def _clean(c: Ctx, chosen: list[str]) -> None:
    _machine(c, chosen, [])
    c.echo(f"ok: output/ is current for {', '.join(chosen)}")


def _output_path(shown: str) -> str:
    """node1/x -> output/node1/x; output/FLEET.md stays as it is."""
    return shown if shown.startswith("output/") else f"output/{shown}"


def _as_problems(lines: list[str], edits: list[str], target: str) -> list[Problem]:
    """Drift lines ('node1/x: stale') and hand-edit explanations as located problems."""
    found = []
    for line in lines:
        shown, state = line.rsplit(": ", 1)
        found.append(Problem(_output_path(shown), 1, 1, "output-drift", f"{state}; run nodegen render {target}"))
    for edit in edits:
        shown, message = edit.split(": ", 1)
        at = re.search(r"\(lines? (\d+)", message)
        found.append(Problem(_output_path(shown), int(at.group(1)) if at else 1, 1, "hand-edit", message))
    return found


def _machine(c: Ctx, chosen: list[str], found: list[Problem]) -> None:
    """JSON: one document with every file's state; the other machine formats: the problems."""
    if c.format == "json":
        files = [{"path": p.path, "state": p.message.split(";", 1)[0]} for p in found if p.rule == "output-drift"]
        edits = [{"path": p.path, "message": p.message} for p in found if p.rule == "hand-edit"]
        from nodegen.rules.checks import RESERVED_NODE_IDS

        nodes = [n for n in chosen if n not in RESERVED_NODE_IDS]  # the cluster targets are not nodes
        click.echo(json.dumps({"clean": not files, "nodes": nodes, "files": files, "hand_edits": edits},
                              ensure_ascii=False, indent=2))
    elif c.machine:
        c.problems(found)
