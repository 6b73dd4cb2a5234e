"""`nodegen ports`: every port of the fleet and of each node in the standard's tables, or the next free one."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict
from typing import Any

import click

from nodegen.commands.common import Ctx, pass_ctx
from nodegen.errors import NodegenError, UsageError
from nodegen.helptext import complete_nodes
from nodegen.load.model import Standard
from nodegen.pipeline import Fleet, load_fleet
from nodegen.problems import Problem
from nodegen.rules.ports import next_free
from nodegen.standard import ranged_classes, table_headings
from nodegen.view.ports import FleetRow, PortRow, fleet_rows, fleet_tables, node_rows, node_tables

# A fleet whose only problems are these still gets its ledger: it is how a clash is found and fixed.
PORT_RULES = ("port-class", "port-conflict")


def _load(c: Ctx) -> Fleet:
    fleet = load_fleet(c.find(), tolerate=PORT_RULES)
    if fleet.warnings:
        c.problems(fleet.warnings)
    return fleet


def _ledger(fleet: Fleet, chosen: list[str], whole_fleet: bool) -> str:
    rows: dict[str, list[PortRow]] = {view.id: node_rows(view) for view in fleet.resolved.nodes}
    std = fleet.manifests.fleet.standard
    parts = ["# Port ledger\n"]
    if whole_fleet:
        parts.append("## Fleet\n\n" + fleet_tables(fleet_rows(r for n in rows.values() for r in n), std))
    for node_id in chosen:
        view = fleet.view(node_id)
        parts.append(f"## {node_id}: {view.name} ({view.role}, {view.uptime})\n\n"
                     + node_tables(rows[node_id], std))
    return "\n".join(parts)


def _ledger_json(fleet: Fleet, chosen: list[str], whole_fleet: bool) -> str:
    """The ledger as one JSON document: fleet rows, each chosen node's rows, and the port problems."""
    rows: dict[str, list[PortRow]] = {view.id: node_rows(view) for view in fleet.resolved.nodes}
    names = table_headings(fleet.manifests.fleet.standard)
    doc: dict[str, Any] = {}
    if whole_fleet:
        doc["fleet"] = [_row(r, names) for r in fleet_rows(r for n in rows.values() for r in n)]
    doc["nodes"] = {n: [_row(r, names) for r in rows[n]] for n in chosen}
    doc["problems"] = [asdict(p) for p in sorted(set(fleet.errors))]
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _row(row: PortRow | FleetRow, names: tuple[str, ...]) -> dict[str, Any]:
    data = asdict(row)
    data["section"] = names[row.section]
    data.pop("first")
    data["class"] = data.pop("klass")
    return data


@click.command("ports")
@click.argument("nodes", nargs=-1, metavar="[NODE]...", shell_complete=complete_nodes)
@click.option("--next", "next_class", metavar="CLASS",
              help="print the next free port of this class (one with a range) across the fleet, and nothing else")
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], next_class: str | None) -> None:
    """Print the port ledger (fleet, then each node) in the standard's tables; conflicts are located problems."""
    fleet = _load(c)
    m = fleet.manifests
    as_json = c.format == "json"
    if next_class is not None:
        _known_class(m.fleet.standard, next_class)
        port = next_free(m, next_class)
        if port is None:
            raise NodegenError(f"no free {next_class} port left in its range")
        click.echo(json.dumps({"class": next_class, "port": port}) if as_json else str(port))
    elif as_json:
        click.echo(_ledger_json(fleet, fleet.select(nodes, False, default_all=True), not nodes))
    else:
        click.echo(_ledger(fleet, fleet.select(nodes, False, default_all=True), not nodes), nl=False)
    _fail_on(c, fleet.errors, reported=as_json and next_class is None)


def _known_class(std: Standard, name: str) -> None:
    classes = ranged_classes(std)
    if name not in classes:
        close = difflib.get_close_matches(name, classes, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"--next {name!r}: not a class with a port range ({', '.join(classes)}){hint}")


def _fail_on(c: Ctx, errors: list[Problem], *, reported: bool) -> None:
    """Exit 1 after the output when the fleet has port problems (the ledger's conflicts among them, each
    located): what was printed is still worth reading."""
    if errors:
        if not reported:
            c.problems(errors)
        raise NodegenError(f"{len(errors)} port problem(s)")
