"""`nodegen nodes`: the fleet's nodes as a table."""

from __future__ import annotations

import json
from typing import Any

import click

from nodegen.commands.common import Ctx, pass_ctx


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _node(n: Any, node_id: str) -> dict[str, Any]:
    services = [s if isinstance(s, str) else next(iter(s)) for s in n.services]
    return {"node": node_id, "name": n.name, "role": n.role, "uptime": n.uptime, "domain": n.domain,
            "address": n.address, "services": services}


@click.command("nodes")
@pass_ctx
def command(c: Ctx) -> None:
    """List the fleet's nodes: id, name, role, uptime, service count."""
    fleet = c.fleet()
    if c.format == "json":
        click.echo(json.dumps([_node(fleet.manifests.nodes[n], n) for n in fleet.node_ids], ensure_ascii=False,
                              indent=2))
        return
    rows: list[tuple[str, ...]] = [("NODE", "NAME", "ROLE", "UPTIME", "SERVICES", "DOMAIN")]
    for node_id in fleet.node_ids:
        n = fleet.manifests.nodes[node_id]
        rows.append((node_id, n.name, n.role, n.uptime, str(len(n.services)), n.domain))
    click.echo(table(rows))
