"""docker-compose.all.yml: every service of the node, per the standard's Docker section."""

from __future__ import annotations

from nodegen.targets.matrix import plan
from nodegen.targets.nginx import CONTAINER_DIR
from nodegen.targets.postgres import INITDB_DIR, needed
from nodegen.templating import template
from nodegen.view.resolve import NodeView

PATH = "docker-compose.all.yml"


def render(view: NodeView) -> dict[str, str]:
    return {PATH: template("docker-compose.all.yml.j2", v=view, nginx_dir=CONTAINER_DIR, matrix=plan(view),
                           initdb=INITDB_DIR.rstrip("/") if needed(view) else None)}
