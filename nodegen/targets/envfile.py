"""`.env.example`: every variable the node's generated files read from `.env`, with placeholders."""

from __future__ import annotations

from nodegen.record import record
from nodegen.templating import template
from nodegen.view.resolve import NodeView

PATH = ".env.example"
PLACEHOLDER = "CHANGE_ME"


@record
class EnvLine:
    name: str
    value: str
    comment: str


def env_groups(view: NodeView) -> list[tuple[str, list[EnvLine]]]:
    """(group title, lines) for every variable compose takes from .env, each listed once."""
    users: dict[str, list[str]] = {}
    first: dict[str, tuple[str, str, str]] = {}
    borrowed: dict[str, tuple[str, str, str]] = {}
    for svc in view.services:
        for env in svc.env:
            if env.value is not None:
                continue
            users.setdefault(env.env_name, []).append(svc.name)
            value = PLACEHOLDER if env.secret else (env.default or "")
            kind = "secret" if env.secret else "setting"
            line = (svc.name, value, f"{kind}: {env.description}".rstrip(": "))
            if env.source is not None:  # described where its source variable is declared
                borrowed.setdefault(env.env_name, line)
            else:
                first.setdefault(env.env_name, line)
    for name, line in borrowed.items():
        first.setdefault(name, line)
    groups: dict[str, list[EnvLine]] = {}
    for name in sorted(first):
        owner, value, comment = first[name]
        used = users[name]
        title = owner if len(used) == 1 else "shared"
        note = comment if len(used) == 1 else f"{comment} (used by {', '.join(used)})"
        groups.setdefault(title, []).append(EnvLine(name, value, note))
    shared = groups.pop("shared", [])
    ordered = sorted(groups.items())
    return ([("shared", shared)] if shared else []) + ordered + [("operations (scripts/)", operations(view))]


def operations(view: NodeView) -> list[EnvLine]:
    """What the node's scripts read from .env (compose does not): certificates, backup shipping."""
    lines = [EnvLine("ACME_EMAIL", "", "setting: contact address the certificate authority sends expiry notices to "
                                       "(scripts/certs.sh renew)")]
    has_db = view.service("postgres") is not None
    if has_db and (view.backup_ship_to or view.backup_receives):
        lines.append(EnvLine("BACKUP_ENCRYPTION_KEY", PLACEHOLDER,
                             "secret: passphrase backups are encrypted with before they leave the node; the same on "
                             "every node of the fleet, kept outside it too (without it no shipped backup can be read)"))
    if has_db and view.backup_ship_to:
        lines.append(EnvLine("BACKUP_SSH_USER", "root",
                             f"setting: ssh user on {view.backup_ship_to[0]} that receives the backups"))
    return lines


def operations_secrets(view: NodeView) -> set[str]:
    return {line.name for line in operations(view) if line.value == PLACEHOLDER}


def render(view: NodeView) -> dict[str, str]:
    return {PATH: template("env.example.j2", v=view, groups=env_groups(view))}
