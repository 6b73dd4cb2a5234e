"""One module per subcommand; COMMANDS is the explicit registry the CLI group is built from."""

from __future__ import annotations

import click

from nodegen.commands import check, diff, nodes, render, schema, validate, verify

COMMANDS: tuple[click.Command, ...] = (
    validate.command,
    nodes.command,
    schema.command,
    render.command,
    check.command,
    diff.command,
    verify.command,
)
