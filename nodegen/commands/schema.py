"""`nodegen schema`: the JSON Schema of the manifest format."""

from __future__ import annotations

import click

from nodegen.schema import schema_text


@click.command("schema")
def command() -> None:
    """Print the JSON Schema of the manifest format (committed as schema/nodegen.schema.json)."""
    click.echo(schema_text(), nl=False)
