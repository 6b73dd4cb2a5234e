"""The command line: the group, its global options, and main(), the one place exit codes are decided."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from nodegen import __version__
from nodegen.commands import COMMANDS
from nodegen.commands.common import Ctx, Report
from nodegen.errors import NodegenError, ProblemsFound
from nodegen.helptext import epilog
from nodegen.problems import STYLES, format_problems

EXAMPLES = """
\b
Examples:
  nodegen validate                 check every manifest under nodes/
  nodegen render node1             write output/node1/
  nodegen render --all             write every node's files
  nodegen check                    exit 1 if output/ is stale (CI, pre-commit)
  nodegen diff node1               what render would change
  nodegen verify --all --strict    run docker compose, nginx -t, promtool, amtool, shellcheck
  nodegen audit node1              the standard's compliance checklist for node1
  nodegen lint-migrations DIR      check SQL migrations against the standard
  nodegen ports --next mvp         the next free port of a class across the fleet
  nodegen graph node1              Mermaid source of node1's diagram
  nodegen import compose.yml --node node1   manifests and a gap report from hand-written files
\b
Exit codes: 0 ok, 1 problems or drift, 2 usage.
"""


class LazyGroup(click.Group):
    """A group whose subcommands are imported from the COMMANDS registry on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = importlib.import_module(module).command
        assert isinstance(command, click.Command)
        if command.epilog is None:
            command.epilog = epilog(cmd_name)
        return command


@click.group(cls=LazyGroup, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nodegen")
@click.option("-C", "--workspace", type=click.Path(file_okay=False, path_type=Path),
              help="workspace folder (default: nearest folder at or above . holding nodes/fleet.yaml)")
@click.option("--format", "fmt", type=click.Choice(list(STYLES)), default="text", show_default=True,
              help="how problems are printed: json, github and sarif go to stdout, human text to stderr")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None, fmt: str) -> None:
    """Render a fleet's Docker host configs from manifests validated against the standard."""
    ctx.obj = Ctx(workspace, fmt, ctx.obj if isinstance(ctx.obj, Report) else None)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn every expected error into a message and an exit code (0 ok, 1 problems, 2 usage)."""
    args = list(sys.argv[1:] if argv is None else argv)
    report = Report()
    try:
        _run(args, report)
    finally:
        report.flush()


def _run(args: list[str], report: Report) -> None:
    try:
        cli.main(args=args, prog_name="nodegen", standalone_mode=False, obj=report)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except ProblemsFound as exc:
        if report.machine:
            report.problems.extend(exc.problems)
        else:
            click.echo(format_problems(exc.problems, report.style), err=True)
        click.echo(f"{sum(p.is_error for p in exc.problems)} error(s); nothing written", err=True)
        sys.exit(1)
    except NodegenError as exc:
        if str(exc):
            click.echo(f"nodegen: {exc}" if exc.exit_code == 2 else str(exc), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
