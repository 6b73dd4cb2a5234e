"""What every subcommand shares: the context object, node arguments, and drift reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nodegen.checksums import SUM_FILE
from nodegen.errors import NodegenError
from nodegen.helptext import complete_nodes
from nodegen.problems import MACHINE_STYLES, Problem, format_problems, format_report
from nodegen.workspace import Workspace, find_workspace

if TYPE_CHECKING:  # the pipeline is imported only by commands that load the fleet
    from nodegen.output import Comparison
    from nodegen.pipeline import Fleet


@dataclass
class Report:
    """The problems of one run in a machine format, printed once, as one document, on stdout."""

    style: str = "text"
    problems: list[Problem] = field(default_factory=list)
    document: bool = False  # the command reports problems: print the document even when there are none

    @property
    def machine(self) -> bool:
        return self.style in MACHINE_STYLES

    def flush(self) -> None:
        if not self.machine or not (self.document or self.problems):
            return
        from nodegen.rules.catalogue import all_rules

        text = format_report(self.problems, self.style, all_rules() if self.style == "sarif" else None)
        if text:
            click.echo(text)
        self.problems, self.document = [], False


class Ctx:
    """Global options, and the validated fleet loaded on demand."""

    def __init__(self, workspace: Path | None, fmt: str, report: Report | None = None) -> None:
        self.workspace = workspace
        self.format = fmt
        self.report = report or Report(fmt)
        self.report.style = fmt

    @property
    def machine(self) -> bool:
        """A machine format was asked for: its document goes to stdout, human text to stderr."""
        return self.report.machine

    def echo(self, text: str, *, nl: bool = True) -> None:
        """Human text: stdout, or stderr when stdout carries a machine format."""
        click.echo(text, err=self.machine, nl=nl)

    def reports(self) -> None:
        """This command reports problems: a machine format prints its document even with none."""
        self.report.document = True

    def problems(self, problems: list[Problem], *, text_err: bool = True) -> None:
        """Problems found by a command: into the run's document, or as text lines now."""
        if self.machine:
            self.report.problems.extend(problems)
        elif problems:
            click.echo(format_problems(problems, self.format), err=text_err)

    def find(self) -> Workspace:
        return find_workspace(explicit=self.workspace)

    def fleet(self) -> Fleet:
        from nodegen.pipeline import load_fleet

        fleet = load_fleet(self.find())
        if fleet.warnings:
            self.problems(fleet.warnings)
        return fleet


class Drift(NodegenError):
    """output/ differs from what the manifests render (exit 1)."""


pass_ctx = click.make_pass_decorator(Ctx)
nodes_arg = click.argument("nodes", nargs=-1, metavar="[NODE]...", shell_complete=complete_nodes)
all_opt = click.option("--all", "all_nodes", is_flag=True, help="every node of the fleet")
target_opt = click.option(
    "--target", "targets", multiple=True, type=click.Choice(["kubernetes", "swarm"]),
    help="also the fleet's output/<target>/ for a cluster engine (implies every node; repeatable)",
)


def orphans(fleet: Fleet) -> list[str]:
    """Output folders nodegen wrote for nodes that no longer have a manifest."""
    out = fleet.workspace.output_dir
    if not out.is_dir():
        return []
    from nodegen.targets import CLUSTER_TARGETS

    return sorted(p.name for p in out.iterdir()
                  if p.is_dir() and (p / SUM_FILE).is_file() and p.name not in fleet.manifests.nodes
                  and not p.name.startswith(".nodegen-staging-")
                  and p.name not in CLUSTER_TARGETS)


def drift_lines(cmp: Comparison) -> list[str]:
    lines = [f"{cmp.folder}/{r}: stale" for r in cmp.stale]
    lines += [f"{cmp.folder}/{r}: missing" for r in cmp.missing]
    lines += [f"{cmp.folder}/{r}: extra" for r in cmp.extra]
    return lines
