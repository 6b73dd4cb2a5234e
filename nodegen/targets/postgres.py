"""The postgres roles script: who may connect to what, the services' own roles and the extra databases.

The postgres image runs it on an empty data directory (`/docker-entrypoint-initdb.d`), and deploy.sh runs
it again on every deploy (an adopted data directory, a service added later): every statement is idempotent
and sets the passwords from the environment, so a rotated one applies. Each service
whose env says `postgres:` gets its own role (its own schema, or pg_monitor for an exporter); Synapse gets
its own database with C collation. Passwords come from .env through postgres' environment.
"""

from __future__ import annotations

from nodegen.targets.matrix import databases
from nodegen.templating import template
from nodegen.view.resolve import NodeView

INITDB_DIR = "infra/postgres/initdb/"
INITDB = INITDB_DIR + "10-databases.sh"
CONTAINER_DIR = "/docker-entrypoint-initdb.d"  # where the postgres image reads INITDB_DIR


def needed(view: NodeView) -> bool:
    """The script (and postgres' mount of its folder) exist where a service needs a role or a database."""
    return bool(view.pg_roles or databases(view))


def render(view: NodeView) -> dict[str, str]:
    if not needed(view):
        return {}
    return {INITDB: template("postgres-initdb.sh.j2", v=view, databases=databases(view))}
