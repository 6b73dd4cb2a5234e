"""What every subcommand shares: the context object, node arguments, and drift reporting."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from nodegen.checksums import SUM_FILE
from nodegen.errors import NodegenError
from nodegen.helptext import complete_nodes
from nodegen.problems import format_problems
from nodegen.workspace import Workspace, find_workspace

if TYPE_CHECKING:  # the pipeline is imported only by commands that load the fleet
    from nodegen.output import Comparison
    from nodegen.pipeline import Fleet


class Ctx:
    """Global options, and the validated fleet loaded on demand."""

    def __init__(self, workspace: Path | None, fmt: str) -> None:
        self.workspace = workspace
        self.format = fmt

    def find(self) -> Workspace:
        return find_workspace(explicit=self.workspace)

    def fleet(self) -> Fleet:
        from nodegen.pipeline import load_fleet

        fleet = load_fleet(self.find())
        if fleet.warnings:
            click.echo(format_problems(fleet.warnings, self.format), err=True)
        return fleet


class Drift(NodegenError):
    """output/ differs from what the manifests render (exit 1)."""


pass_ctx = click.make_pass_decorator(Ctx)
nodes_arg = click.argument("nodes", nargs=-1, metavar="[NODE]...", shell_complete=complete_nodes)
all_opt = click.option("--all", "all_nodes", is_flag=True, help="every node of the fleet")


def orphans(fleet: Fleet) -> list[str]:
    """Output folders nodegen wrote for nodes that no longer have a manifest."""
    out = fleet.workspace.output_dir
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir()
                  if p.is_dir() and (p / SUM_FILE).is_file() and p.name not in fleet.manifests.nodes
                  and not p.name.startswith(".nodegen-staging-"))


def drift_lines(cmp: Comparison) -> list[str]:
    lines = [f"{cmp.folder}/{r}: stale" for r in cmp.stale]
    lines += [f"{cmp.folder}/{r}: missing" for r in cmp.missing]
    lines += [f"{cmp.folder}/{r}: extra" for r in cmp.extra]
    return lines
