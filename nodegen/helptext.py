"""Examples at the foot of each subcommand's --help page, and shell completion of node names."""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "validate": [("nodegen validate", "every problem of every manifest, sorted"),
                 ("nodegen --format github validate", "as GitHub workflow annotations")],
    "nodes": [("nodegen nodes", "id, name, role, uptime, services and domain of each node")],
    "schema": [("nodegen schema > schema/nodegen.schema.json", "the JSON Schema editors validate manifests with")],
    "render": [("nodegen render node1", "write output/node1/ (and the fleet-wide output/FLEET.md)"),
               ("nodegen render --all", "every node; removes folders of nodes without a manifest"),
               ("nodegen render --all --force", "overwrite hand edits (each one is listed first)")],
    "check": [("nodegen check", "exit 1 if output/ is stale (CI, pre-commit)"),
              ("nodegen check node2", "only node2's folder")],
    "diff": [("nodegen diff node1", "the unified diff render would apply to output/node1/"),
             ("nodegen diff --all", "every node and the fleet-wide files"),
             ("nodegen diff --base origin/main", "a pull request's summary: node, service, facet, then the diff")],
    "verify": [("nodegen verify --all --strict", "Compose, nginx -t, promtool, amtool, shellcheck; missing = fail"),
               ("nodegen verify node3", "one node; missing tools are reported as skipped")],
    "ports": [("nodegen ports", "the port ledger in the standard's tables"),
              ("nodegen ports --next mvp", "the next free port of a class")],
    "graph": [("nodegen graph", "the fleet's Mermaid diagram"), ("nodegen graph node1", "one node's diagram")],
    "lint-migrations": [("nodegen lint-migrations migrations/", "the standard's rules for SQL migrations")],
    "explain": [("nodegen explain port-class", "what the rule checks, its section of the standard, an example")],
    "init": [("nodegen init acme --project acme --nodes 2", "a new workspace: fleet, two nodes, .gitignore, schema"),
             ("nodegen init --preset minimal", "a gateway and a cache only, in the current folder")],
    "import": [("nodegen import docker-compose.yml --nginx nginx.conf --node node1 --out fleet",
                "manifests and a gap report from hand-written files"),
               ("nodegen import docker-compose.yml --node node1 --project-name myapp --allow-lossy",
                "write although keys are dropped; keep myapp's volumes")],
    "audit": [("nodegen audit node1", "the standard's compliance checklist for node1"),
              ("nodegen audit docker-compose.yml", "compose-level rules on a hand-written file")],
}


def epilog(name: str) -> str | None:
    """The Examples block of a subcommand (click keeps lines after a \\b paragraph as written)."""
    rows = EXAMPLES.get(name)
    if not rows:
        return None
    width = max(len(cmd) for cmd, _ in rows) + 2
    return "\b\nExamples:\n" + "\n".join(f"  {cmd.ljust(width)}{what}" for cmd, what in rows)


def complete_nodes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Node ids of the workspace (-C or the nearest one above .), read from the manifest file names."""
    from nodegen.errors import WorkspaceError
    from nodegen.workspace import find_workspace

    root = ctx.find_root().params.get("workspace")
    try:
        ws = find_workspace(explicit=Path(root) if root else None)
        names = list(ws.node_files())
    except (WorkspaceError, OSError):
        return []
    given = set(ctx.params.get(param.name or "", ()) or ())
    return [CompletionItem(n) for n in names if n.startswith(incomplete) and n not in given]
