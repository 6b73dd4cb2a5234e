"""`nodegen init`: a new workspace for another organisation: fleet, nodes, .gitignore, schema, README."""

from __future__ import annotations

import re
from pathlib import Path

from nodegen.errors import UsageError
from nodegen.presets import shipped_fleet
from nodegen.record import record
from nodegen.schema import SCHEMA_PATH, schema_text

PRESETS = ("daarion", "minimal")
SCHEMA_LINE = "# yaml-language-server: $schema=../schema/nodegen.schema.json\n"
# The services the minimal preset keeps from the catalog: the gateway every node needs, a cache, and what watches
# them (Prometheus and Alertmanager on node1, the exporters placed beside them): the audit's monitoring coverage.
MINIMAL = ("redis", "gateway-nginx", "prometheus", "alertmanager", "node-exporter", "redis-exporter", "nginx-exporter",
           "blackbox-exporter")

# The minimal preset's own vocabulary, in place of the standard's (from port_classes to the port tables).
MINIMAL_VOCABULARY = """\
  port_classes: {app: 7000-7999, tools: 8000-8999}
  # The fleet's vocabulary. A class: the range its ports lie in (none: the well-known core ports), who reaches
  # its routes by default, the port table that lists it (none: the table its stack or phase names, else other).
  classes:
    core: {table: core}
    app: {range: app, visibility: public}
    tools: {range: tools}
  roles: {production: {}, staging: {}, dev: {dev: true}}
  uptimes: {"24/7": {}, on-demand: {on_demand: true}}
  port_tables:
    core: Infrastructure
    app: Applications
    other: Other Services
"""
VOCABULARY = re.compile(r"(?ms)^  port_classes: .*?^    other: [^\n]*\n")

GITIGNORE = """\
# Secrets never go to Git: real env files, TLS private keys and certificates, database backups.
.env
!.env.example
*.key
*.pem
output/**/infra/nginx/certs/*
!output/**/infra/nginx/certs/README.md
backups/
.nodegen-cache/
"""


@record
class Plan:
    """What init writes: relative path -> text."""

    files: dict[str, str]


def _services_block(text: str, keep: tuple[str, ...]) -> str:
    """The catalog's `services:` with only the named entries (each entry is the block under `  name:`)."""
    head, body = text.split("\nservices:\n", 1)
    blocks = re.split(r"\n(?=  [a-z][a-z0-9-]*:\n)", "\n" + body)
    blocks = [re.sub(r"(\n\s*#[^\n]*)+\s*$", "", b) for b in blocks]  # a section comment belongs to the next
    kept = [b.strip("\n") for b in blocks if (m := re.match(r"\s*  ([a-z][a-z0-9-]*):\n", "\n" + b.strip("\n")))
            and m.group(1) in keep]
    return head + "\nservices:\n" + "\n\n".join(kept) + "\n"


def fleet_text(project: str, domain: str, preset: str) -> str:
    text = shipped_fleet()
    text = re.sub(r"(?m)^project: .*$", f"project: {project}", text, count=1)
    text = re.sub(r"(?m)^domain: .*$", f"domain: {domain}", text, count=1)
    text = re.sub(r"(?m)^  node_root: .*$", f"  node_root: /opt/{project}", text, count=1)
    text = re.sub(r"(?m)^# The DAARION fleet.*$", f"# The {project} fleet: what every node shares, and the catalog "
                  "of the standard's services.", text, count=1)
    # Which node keeps the others' backups is the new fleet's choice (the daarion fleet ships them to node2).
    text = re.sub(r", ship_to: [a-z0-9-]+\}(  #[^\n]*)?", "}", text, count=1)
    if preset == "minimal":
        text = _services_block(text, MINIMAL)
        # The standard's classes, roles and headings name the daarion fleet's; a new fleet gets plain ones.
        text, found = VOCABULARY.subn(lambda _: MINIMAL_VOCABULARY, text, count=1)
        assert found == 1, "the shipped fleet states its vocabulary from port_classes to the port tables"
    return text


def node_text(k: int, domain: str, preset: str) -> str:
    if preset == "minimal":
        services = ["redis", "prometheus", "gateway-nginx"] if k == 1 else ["redis", "gateway-nginx"]
    elif k == 1:
        services = ["postgres", "redis", "nats", "prometheus", "gateway-nginx"]
    else:
        services = ["redis", "nats", "gateway-nginx"]
    lines = [SCHEMA_LINE.rstrip("\n"), f"node: node{k}", f"name: Node {k}", "role: production", "uptime: 24/7",
             f"domain: node{k}.{domain}", f"address: 10.0.0.{k}", "services:", *(f"  - {s}" for s in services)]
    return "\n".join(lines) + "\n"


def readme(project: str, nodes: int) -> str:
    return f"""# {project} fleet

Manifests of the fleet's {nodes} node(s) under `nodes/` (`fleet.yaml` holds the standard's parameters
and the service catalog), rendered by nodegen into `output/<node>/`.

```sh
nodegen validate              # every problem of the manifests at once
nodegen render --all          # write output/
nodegen verify --all --strict # docker compose, nginx -t, promtool, shellcheck on the files
nodegen audit node1           # the standard's compliance checklist
```

Commit `nodes/` and `output/` together. Secrets go in `output/<node>/.env` on the host (from
`.env.example`), certificates in `output/<node>/infra/nginx/certs/`; `.gitignore` keeps both out of Git.
Editors validate the manifests with `{SCHEMA_PATH}` (the first line of each manifest points at it).
"""


def plan(project: str, nodes: int, preset: str) -> Plan:
    if not re.fullmatch(r"[a-z][a-z0-9]{1,30}", project):
        raise UsageError(f"--project {project!r}: lowercase ASCII letters and digits, 2-31, starting with a letter")
    if not 1 <= nodes <= 99:
        raise UsageError(f"--nodes {nodes}: between 1 and 99")
    if preset not in PRESETS:
        raise UsageError(f"--preset {preset!r}: one of {', '.join(PRESETS)}")
    domain = f"{project}.example"
    files = {"nodes/fleet.yaml": fleet_text(project, domain, preset), ".gitignore": GITIGNORE,
             SCHEMA_PATH: schema_text(), "README.md": readme(project, nodes)}
    for k in range(1, nodes + 1):
        files[f"nodes/node{k}.yaml"] = node_text(k, domain, preset)
    return Plan(files)


def write(folder: Path, todo: Plan) -> list[str]:
    """Write the plan into folder, refusing to overwrite anything that is there."""
    taken = [rel for rel in todo.files if (folder / rel).exists()]
    if taken:
        raise UsageError(f"{folder}: already has {', '.join(sorted(taken))}; init writes only into a fresh folder")
    for rel, text in sorted(todo.files.items()):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(todo.files)
