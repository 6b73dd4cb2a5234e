"""What every subcommand shares: the context object, node arguments, and drift reporting."""

from __future__ import annotations

from pathlib import Path

import click

from nodegen.errors import NodegenError
from nodegen.output import Comparison
from nodegen.pipeline import Fleet, load_fleet
from nodegen.problems import format_problems
from nodegen.render import SUM_FILE
from nodegen.workspace import find_workspace


class Ctx:
    """Global options, and the validated fleet loaded on demand."""

    def __init__(self, workspace: Path | None, fmt: str) -> None:
        self.workspace = workspace
        self.format = fmt

    def fleet(self) -> Fleet:
        fleet = load_fleet(find_workspace(explicit=self.workspace))
        if fleet.warnings:
            click.echo(format_problems(fleet.warnings, self.format), err=True)
        return fleet


class Drift(NodegenError):
    """output/ differs from what the manifests render (exit 1)."""


pass_ctx = click.make_pass_decorator(Ctx)
nodes_arg = click.argument("nodes", nargs=-1, metavar="[NODE]...")
all_opt = click.option("--all", "all_nodes", is_flag=True, help="every node of the fleet")


def orphans(fleet: Fleet) -> list[str]:
    """Output folders nodegen wrote for nodes that no longer have a manifest."""
    out = fleet.workspace.output_dir
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir()
                  if p.is_dir() and (p / SUM_FILE).is_file() and p.name not in fleet.manifests.nodes)


def drift_lines(cmp: Comparison) -> list[str]:
    lines = [f"{cmp.folder}/{r}: stale" for r in cmp.stale]
    lines += [f"{cmp.folder}/{r}: missing" for r in cmp.missing]
    lines += [f"{cmp.folder}/{r}: extra" for r in cmp.extra]
    return lines
