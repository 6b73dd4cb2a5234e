"""`nodegen lint-migrations DIR`: the standard's migration rules, problems located at file:line:col."""

from __future__ import annotations

from pathlib import Path

import click

from nodegen.commands.common import Ctx, pass_ctx
from nodegen.errors import NodegenError
from nodegen.migrations import lint_folder


@click.command("lint-migrations")
@click.argument("folder", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_ctx
def command(c: Ctx, folder: Path) -> None:
    """Check DIR's migrations: NNN_description.sql names, numbering, header, BEGIN/COMMIT, rollback files."""
    c.reports()
    display = folder.as_posix()
    problems, migrations, rollbacks = lint_folder(folder, display)
    if problems:
        c.problems(problems, text_err=False)
        raise NodegenError(f"{len(problems)} problem(s) in {display}")
    c.echo(f"ok: {migrations} migration(s) and {rollbacks} rollback file(s) in {display}")
