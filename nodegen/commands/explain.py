"""`nodegen explain RULE`: a rule, the section of the standard it enforces, a fixed example."""

from __future__ import annotations

import click

from nodegen.errors import UsageError


@click.command("explain")
@click.argument("rule")
def command(rule: str) -> None:
    """Print what RULE checks, the section of the standard it enforces, and a fixed example."""
    from nodegen.explain import did_you_mean, explain

    text = explain(rule)
    if text is None:
        raise UsageError(f"no rule {rule!r}{did_you_mean(rule)} (the rule ids: docs/rules.md)")
    click.echo(text)
