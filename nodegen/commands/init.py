"""`nodegen init [DIR]`: start a workspace for a new fleet."""

from __future__ import annotations

from pathlib import Path

import click

from nodegen.commands.common import Ctx, pass_ctx


@click.command("init")
@click.argument("folder", metavar="[DIR]", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", default="fleet", show_default=True, help="project name (containers, networks, labels)")
@click.option("--nodes", "count", type=click.IntRange(1, 99), default=1, show_default=True, help="how many nodes")
@click.option("--preset", type=click.Choice(["daarion", "minimal"]), default="daarion", show_default=True,
              help="daarion: the standard's whole service catalog; minimal: a gateway and a cache")
@pass_ctx
def command(c: Ctx, folder: Path, project: str, count: int, preset: str) -> None:
    """Create nodes/fleet.yaml, node manifests, .gitignore, the JSON schema and a README in DIR."""
    from nodegen.init import plan, write

    written = write(folder, plan(project, count, preset))
    c.echo(f"{folder}: wrote {', '.join(written)}")
    c.echo(f"next: cd {folder} && nodegen validate && nodegen render --all")
