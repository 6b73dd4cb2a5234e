"""`nodegen verify`: the real tools' verdict on the rendered files."""

from __future__ import annotations

import click

from nodegen.commands.common import Ctx, all_opt, nodes_arg, pass_ctx
from nodegen.errors import NodegenError
from nodegen.problems import Problem
from nodegen.verify import Result, verify_node

# The file each tool checks, where its verdict is located in machine formats.
TOOL_FILES = {"compose": "docker-compose.all.yml", "devcompose": "docker-compose.dev.yml",
              "nginx": "infra/nginx/nginx.conf", "promtool": "infra/prometheus/prometheus.yml",
              "rules": "infra/prometheus/alerts.yml", "amtool": "infra/alertmanager/alertmanager.yml",
              "shellcheck": "scripts"}


def _problem(r: Result) -> Problem:
    detail = " ".join(r.detail.split())[:2000] or r.status
    return Problem(f"output/{r.node}/{TOOL_FILES.get(r.tool, '')}".rstrip("/"), 1, 1, "verify", f"{r.tool}: {detail}")


@click.command("verify")
@nodes_arg
@all_opt
@click.option("--strict", is_flag=True, help="a tool that is not installed is a failure")
@pass_ctx
def command(c: Ctx, nodes: tuple[str, ...], all_nodes: bool, strict: bool) -> None:
    """Run Docker Compose config -q, nginx -t, promtool, amtool and shellcheck on the rendered files."""
    c.reports()
    fleet = c.fleet()
    bad = 0
    for node_id in fleet.select(nodes, all_nodes, default_all=True):
        for r in verify_node(fleet.view(node_id)):
            failed = r.status == "failed" or (strict and r.status == "skipped")
            c.echo(f"{r.node}  {r.tool:<10} {'FAILED' if failed else r.status}")
            if r.detail and (failed or r.status == "skipped"):
                c.echo("    " + r.detail.replace("\n", "\n    "))
            if failed and c.machine:
                c.problems([_problem(r)])
            bad += failed
    if bad:
        raise NodegenError(f"{bad} check(s) failed")
