"""docker-compose.dev.yml: the dev override for nodes whose role is dev (or that ask with dev_overrides: true)."""

from __future__ import annotations

from nodegen.templating import template
from nodegen.view.ports import dev_ports
from nodegen.view.resolve import NodeView, Svc

PATH = "docker-compose.dev.yml"
# Where services we build keep their code (their Dockerfiles' WORKDIR): the build context is mounted there.
SOURCE_DIR = "/app"


def entries(view: NodeView) -> list[tuple[Svc, tuple[int, ...], bool]]:
    """(service, ports to publish on 127.0.0.1, sets LOG_LEVEL) for every service the override changes."""
    out: list[tuple[Svc, tuple[int, ...], bool]] = []
    for s in view.services:
        ports = dev_ports(view, s)
        debug = any(e.name == "LOG_LEVEL" for e in s.env)
        if ports or debug or s.build:
            out.append((s, ports, debug))
    return out


def render(view: NodeView) -> dict[str, str]:
    if not view.dev_overrides:
        return {}
    return {PATH: template("docker-compose.dev.yml.j2", v=view, entries=entries(view), source_dir=SOURCE_DIR)}
