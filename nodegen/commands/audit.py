"""`nodegen audit NODE|FILE.yml`: the standard's compliance checklist for a node, or a compose file's violations."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from nodegen.commands.common import Ctx, pass_ctx
from nodegen.errors import NodegenError, UsageError, WorkspaceError
from nodegen.helptext import complete_nodes
from nodegen.problems import Problem

# The checklist items a compose file alone can show, and the rules whose violations fail each.
FILE_ITEMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Docker Compose with all services",
     ("yaml", "schema", "compose-version", "image", "restart-policy", "log-rotation", "name-format", "labels")),
    ("health endpoints on all services", ("health-endpoint",)),
    ("gateway with TLS", ("gateway-tls", "public-port")),
    (".env not in Git (no literal secrets)", ("secret-literal",)),
)


@click.command("audit")
@click.argument("target", metavar="NODE|FILE.yml", shell_complete=complete_nodes)
@click.option("--project", help="project of a compose file's names and labels "
              "(default: its name: key, else the prefix of its container names)")
@pass_ctx
def command(c: Ctx, target: str, project: str | None) -> None:
    """Print the standard's compliance checklist for NODE (exit 1 if an item fails), or audit a compose FILE."""
    if c.format != "json":
        c.reports()
    if target.endswith((".yml", ".yaml")) or Path(target).is_file():
        _audit_file(c, Path(target), target, project)
    else:
        _audit_node(c, target)


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _audit_node(c: Ctx, node_id: str) -> None:
    from nodegen.audit import audit_node

    fleet = c.fleet()
    fleet.select((node_id,), False)
    node = fleet.view(node_id)
    c.echo(f"audit {node_id}: {node.name} ({node.role}, {node.uptime}), output/{node_id}")
    items = audit_node(fleet, node_id)
    for item in items:
        if item.ok:
            c.echo(f"{_mark(True)} {item.title}: {'; '.join(item.evidence)}")
        else:
            c.echo(f"{_mark(False)} {item.title}:")
            for line in item.evidence:
                c.echo(f"    {line}")
    passed = sum(item.ok for item in items)
    c.echo(f"{passed} of {len(items)} items pass")
    if c.format == "json":
        click.echo(json.dumps({"node": node_id, "passed": passed, "total": len(items),
                               "items": [{"title": i.title, "ok": i.ok, "evidence": i.evidence} for i in items]},
                              ensure_ascii=False, indent=2))
    elif c.machine:
        c.problems([Problem(f"output/{node_id}", 1, 1, "checklist", f"{i.title}: {'; '.join(i.evidence)}")
                    for i in items if not i.ok])
    if passed != len(items):
        raise NodegenError(f"{node_id}: {len(items) - passed} checklist item(s) fail")


def _audit_file(c: Ctx, path: Path, display: str, project: str | None) -> None:
    from nodegen.rules.compose import audit_compose, load_compose

    if not path.is_file():
        raise UsageError(f"{display}: no such file")
    loaded, problems = load_compose(path, display, project or _workspace_project(c))
    if loaded is not None:
        problems = audit_compose(loaded)
    count = len(loaded.services) if loaded is not None else 0
    project_name = loaded.project if loaded else "?"
    c.echo(f"audit {display}: {count} service(s), project {project_name}; compose-level items only")
    items = []
    for title, rules in FILE_ITEMS:
        mine = [p for p in problems if p.rule in rules]
        items.append({"title": title, "ok": not mine, "violations": len(mine)})
        c.echo(f"{_mark(not mine)} {title}: " + (_counts(mine) if mine else "no violation"))
    if c.format == "json":
        click.echo(json.dumps({"file": display, "services": count, "project": project_name, "items": items,
                               "problems": [asdict(p) for p in sorted(set(problems))]}, ensure_ascii=False, indent=2))
    else:
        c.problems(problems, text_err=False)
    if problems:
        raise NodegenError(f"{len(problems)} violation(s) in {display}")


def _counts(problems: list[Problem]) -> str:
    rules = sorted({p.rule for p in problems})
    return f"{len(problems)} violation(s) ({', '.join(rules)})"


def _workspace_project(c: Ctx) -> str | None:
    """Only an explicit -C workspace names the project; a compose file found anywhere says its own."""
    if c.workspace is None:
        return None
    try:
        from nodegen.load.manifests import load_manifests

        manifests, _ = load_manifests(c.find())
    except WorkspaceError:
        return None
    return manifests.fleet.project if manifests is not None else None
