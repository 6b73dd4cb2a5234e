"""`nodegen import COMPOSE`: manifests and a gap report from the hand-written files a node runs today."""

from __future__ import annotations

from pathlib import Path

import click

from nodegen.commands.common import Ctx, pass_ctx

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("import")
@click.argument("compose", type=_FILE)
@click.option("--nginx", "nginx", multiple=True, type=_FILE, help="a hand-written nginx config (repeatable)")
@click.option("--prometheus", type=_FILE, help="the hand-written prometheus.yml")
@click.option("--env-example", "env_example", type=_FILE, help="the .env example the stack is run with")
@click.option("--node", required=True, help="id of the node the files run on (nodes/NODE.yaml)")
@click.option("--project-name", "project", help="the Compose project the stack runs as (default: Compose's "
              "choice, the compose file's name: or folder); names its existing volumes")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="workspace to write nodes/fleet.yaml and nodes/NODE.yaml into (never overwritten)")
@click.option("--allow-lossy", is_flag=True, help="write even when the report drops keys of the sources")
@click.option("--format", "style", type=click.Choice(["text", "json"]), default=None,
              help="the report's format (default: the global --format, text unless json)")
@pass_ctx
def command(c: Ctx, compose: Path, nginx: tuple[Path, ...], prometheus: Path | None, env_example: Path | None,
            node: str, project: str | None, out: Path, allow_lossy: bool, style: str | None) -> None:
    """Write catalog entries and a node manifest from hand-written files, and print the gap report."""
    from nodegen.errors import NodegenError, UsageError
    from nodegen.importer.report import format_json, format_text, lossy
    from nodegen.importer.run import Options, run
    from nodegen.standard import NODE_ID

    if not NODE_ID.fullmatch(node):
        raise UsageError(f"--node {node!r}: a node id is lowercase ASCII, e.g. node1")
    result = run(Options(compose, node, out, nginx, prometheus, env_example, project, allow_lossy))
    written = [str(out / rel) for rel in sorted(result.files)] if result.written else []
    if (style or ("json" if c.format == "json" else "text")) == "json":
        click.echo(format_json(result.gaps, written))
    else:
        click.echo(format_text(result.gaps))
    if not result.written:
        count = len(lossy(result.gaps))
        raise NodegenError(f"{count} source key(s) dropped: a lossy import; nothing written "
                           "(review the report, or pass --allow-lossy)")
    click.echo(f"wrote {', '.join(written)}", err=True)
    if result.violations:
        raise NodegenError(f"{result.violations} violation(s) of the standard to fix before the fleet validates")
