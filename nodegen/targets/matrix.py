"""Matrix on a node that runs Synapse: its homeserver.yaml, the bridges' app-service registrations, its database.

The official Synapse image refuses to start without a configuration, and Synapse reads secrets only from its
configuration file. Compose therefore injects homeserver.yaml and each registration as a `configs:` entry
whose content Compose fills in from .env at `up` (the rendered files hold only `${VAR}` references). The
database Synapse needs (C collation, as Synapse requires) is created by an init script of the postgres
image (targets/postgres.py), with every other database and role a service of the node needs.
"""

from __future__ import annotations

from nodegen.record import record
from nodegen.view.resolve import NodeView, Svc

SYNAPSE = "matrix-synapse"
POSTGRES = "postgres"
CONFIG_DIR = "/config"
AS_TOKEN = "MATRIX_BRIDGE_TOKEN"
HS_TOKEN = "MATRIX_BRIDGE_HS_TOKEN"
DB_PASSWORD = "SYNAPSE_DB_PASSWORD"
MACAROON = "SYNAPSE_MACAROON_SECRET_KEY"
FORM_SECRET = "SYNAPSE_FORM_SECRET"


@record
class Bridge:
    """A service that registers with Synapse as an application service (it holds the two tokens)."""

    name: str
    url: str

    @property
    def config(self) -> str:
        return f"{self.name}-registration"

    @property
    def path(self) -> str:
        return f"{CONFIG_DIR}/appservices/{self.name}.yaml"


@record
class Database:
    """A database a service of the node needs, created once on an empty data directory."""

    name: str
    owner: str
    password_env: str
    collate: str = "C"


@record
class Matrix:
    """What the compose file, the gateway and postgres need to know about the node's Synapse."""

    synapse: Svc
    server_name: str
    public_baseurl: str
    bridges: tuple[Bridge, ...]

    @property
    def config(self) -> str:
        return f"{self.synapse.name}-homeserver"

    @property
    def config_path(self) -> str:
        return next((e.value for e in self.synapse.env if e.name == "SYNAPSE_CONFIG_PATH" and e.value),
                    f"{CONFIG_DIR}/homeserver.yaml")

    @property
    def http_port(self) -> int:
        return self.synapse.port

    @property
    def metrics_port(self) -> int:
        return self.synapse.metrics_port


def _env_names(svc: Svc) -> set[str]:
    return {e.name for e in svc.env}


def plan(view: NodeView) -> Matrix | None:
    synapse = view.service(SYNAPSE)
    if synapse is None:
        return None
    server = next((e.value for e in synapse.env if e.name == "SYNAPSE_SERVER_NAME" and e.value), view.domain)
    bridges = tuple(
        Bridge(s.name, f"http://{s.name}:{s.port}") for s in view.services
        if SYNAPSE in s.depends and {AS_TOKEN, HS_TOKEN} <= _env_names(s)
    )
    return Matrix(synapse, server, f"https://{view.domain}/", bridges)


def databases(view: NodeView) -> tuple[Database, ...]:
    """The databases beyond POSTGRES_DB: Synapse's own, when the node runs Synapse."""
    matrix = plan(view)
    if matrix is None or POSTGRES not in matrix.synapse.depends:
        return ()
    return (Database("synapse", "synapse", DB_PASSWORD),)
