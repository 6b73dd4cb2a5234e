"""Explain a hand edit in output/: which manifest key produces the edited part, and how to keep the change."""

from __future__ import annotations

import re
from pathlib import Path

# Which manifest keys produce each generated file; `{service}` is filled in when the edited part is
# one service's block, `{node}` always.
_SOURCES: tuple[tuple[str, str], ...] = (
    ("docker-compose.all.yml", "services.{service} in nodes/fleet.yaml and the services list of nodes/{node}.yaml"),
    ("docker-compose.dev.yml", "role: dev in nodes/{node}.yaml and services.{service} in nodes/fleet.yaml"),
    (".env.example", "services.{service}.env in nodes/fleet.yaml"),
    ("infra/nginx/nginx.conf", "services.{service}.route/websocket in nodes/fleet.yaml, gateway: in nodes/{node}.yaml,"
                               " standard.rate_limit in nodes/fleet.yaml"),
    ("infra/nginx/", "gateway: and domain: in nodes/{node}.yaml"),
    ("infra/prometheus/prometheus.yml", "services.{service}.metrics in nodes/fleet.yaml"),
    ("infra/prometheus/alerts.yml", "standard.alerts in nodes/fleet.yaml"),
    ("infra/alertmanager/", "alertmanager: in nodes/fleet.yaml"),
    ("infra/grafana/", "services.{service}.metrics in nodes/fleet.yaml"),
    ("scripts/backup-db", "standard.backup in nodes/fleet.yaml"),
    ("scripts/", "standard.node_root in nodes/fleet.yaml and the services list of nodes/{node}.yaml"),
    ("docs/", "nodes/{node}.yaml and the services' title/description/note in nodes/fleet.yaml"),
    ("FLEET.md", "every manifest under nodes/"),
)

# A cluster target's file says how it is rendered (`nodegen render --target swarm`): it has no node manifest.
_TARGET = re.compile(r"^# Regenerate with: nodegen render (--target [a-z]+)$", re.MULTILINE)
_COMPOSE_SERVICE = re.compile(r"^  ([A-Za-z0-9][\w.-]*):\s*$")
_ENV_VAR = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")
_NGINX_ROUTE = re.compile(r"location\s+(?:[=~*^]+\s+)?/(?:api|ws)/([\w-]+)")
_JOB = re.compile(r"job_name:\s*'?([\w.-]+)")


def _first_change(old: str, new: str) -> tuple[int, int] | None:
    """The first and last line of old (the file on disk) in its first block that differs from new (the render)."""
    import difflib  # only when a hand edit is explained

    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag != "equal":
            return i1 + 1, max(i2, i1 + 1)
    return None


def _section(rel: str, lines: list[str], number: int) -> str | None:
    """The service (or route, variable, job) whose block holds the given line."""
    for line in reversed(lines[: min(number, len(lines))]):
        if rel.startswith("docker-compose") and (m := _COMPOSE_SERVICE.match(line)):
            return m.group(1)
        if rel.endswith(".env.example") and (m := _ENV_VAR.match(line)):
            return m.group(1)
        if rel.endswith("nginx.conf") and (m := _NGINX_ROUTE.search(line)):
            return m.group(1)
        if rel.endswith("prometheus.yml") and (m := _JOB.search(line)):
            return m.group(1)
    return None


def _sources(rel: str, node: str, service: str | None) -> str:
    for prefix, keys in _SOURCES:
        if rel == prefix or rel.startswith(prefix):
            return keys.format(node=node, service=service or "<service>")
    return f"nodes/{node}.yaml and nodes/fleet.yaml"


def refusal(folder: str, edited: list[str], disk: dict[str, Path], files: dict[str, str], *, node: str) -> str:
    """Why a render stops: one line per edited or foreign file (node is the render argument, or --all)."""
    lines = [explain(folder, rel, disk[rel], files.get(rel), node=node) for rel in edited]
    return "hand edits:\n" + "\n".join(f"  {line}" for line in lines)


def explain(folder: str, rel: str, disk: Path, rendered: str | None, *, node: str) -> str:
    """One line: what was edited, where it comes from in the manifests, how to keep or drop it."""
    shown = f"{folder}/{rel}" if folder != "output" else f"output/{rel}"
    manifest = "<node>" if node.startswith("-") else node
    if rendered is None:
        return (f"{shown}: not written by nodegen; render --force would remove it. To keep it, move it out of "
                f"output/ (secrets belong in {folder}/.env, certificates in {folder}/infra/nginx/certs/)")
    try:
        current = disk.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        current = ""
    changed = _first_change(current, rendered)
    where = ""
    service = None
    if changed:
        first, last = changed
        service = _section(rel, current.splitlines(), first)
        span = f"line {first}" if last == first else f"lines {first}-{last}"
        where = f" ({span}, {service})" if service else f" ({span})"
    if rel.endswith(".env.example") and service:
        keys = f"the env key {service} of a service in nodes/fleet.yaml"
    elif rel.endswith("nginx.conf") and service:
        keys = f"route: {service} (or websocket:) of a service in nodes/fleet.yaml, gateway: in nodes/{manifest}.yaml"
    else:
        keys = _sources(rel, manifest, service)
    if target := _TARGET.search(rendered[:2000]):
        keys, node = "the services in nodes/fleet.yaml and the nodes' manifests in nodes/", target.group(1)
    return (f"{shown}: edited by hand{where}; this part comes from {keys}. To keep the change, make it there "
            f"and run nodegen render {node}; nodegen render --force {node} discards it")
