"""`.env.example`: every variable the node's generated files read from `.env`, with placeholders."""

from __future__ import annotations

from dataclasses import dataclass

from nodegen.templating import template
from nodegen.view.resolve import NodeView

PATH = ".env.example"
PLACEHOLDER = "CHANGE_ME"


@dataclass(frozen=True)
class EnvLine:
    name: str
    value: str
    comment: str


def env_groups(view: NodeView) -> list[tuple[str, list[EnvLine]]]:
    """(group title, lines) for every variable compose takes from .env, each listed once."""
    users: dict[str, list[str]] = {}
    first: dict[str, tuple[str, str, str]] = {}
    for svc in view.services:
        for env in svc.env:
            if env.value is not None:
                continue
            users.setdefault(env.name, []).append(svc.name)
            value = PLACEHOLDER if env.secret else (env.default or "")
            kind = "secret" if env.secret else "setting"
            first.setdefault(env.name, (svc.name, value, f"{kind}: {env.description}".rstrip(": ")))
    groups: dict[str, list[EnvLine]] = {}
    for name in sorted(first):
        owner, value, comment = first[name]
        used = users[name]
        title = owner if len(used) == 1 else "shared"
        note = comment if len(used) == 1 else f"{comment} (used by {', '.join(used)})"
        groups.setdefault(title, []).append(EnvLine(name, value, note))
    shared = groups.pop("shared", [])
    ordered = sorted(groups.items())
    return ([("shared", shared)] if shared else []) + ordered


def render(view: NodeView) -> dict[str, str]:
    return {PATH: template("env.example.j2", v=view, groups=env_groups(view))}
