"""Operations scripts in scripts/: health check, database backup, certificates (and their schedules), deploy, rollback.

Every value a script takes from the manifests is single-quoted for the shell by the templates' `sh`,
`shwords` and `shargs` filters (nodegen.render); names are also validated before rendering, so
quoting is the second fence, not the only one.
"""

from __future__ import annotations

from nodegen.record import record
from nodegen.standard import ALERTMANAGER
from nodegen.targets.nginx import CONTAINER_DIR
from nodegen.targets.postgres import CONTAINER_DIR as INITDB_CONTAINER_DIR
from nodegen.targets.postgres import INITDB, needed
from nodegen.templating import template
from nodegen.view.resolve import NodeView, Svc

HEALTH_CHECK = "scripts/health-check.sh"
BACKUP = "scripts/backup-db.sh"
BACKUP_CRON = "scripts/backup-db.cron"
DEPLOY = "scripts/deploy.sh"
ROLLBACK = "scripts/rollback.sh"
SWITCH_OVER = "scripts/switch-over.sh"
CERTS = "scripts/certs.sh"
CERTS_CRON = "scripts/certs.cron"
# The ACME client scripts/certs.sh runs (the image is pinned like every other).
CERTBOT_IMAGE = "certbot/certbot:v2.11.0"
DATABASE_SERVICE = "postgres"


@record
class Probe:
    """How health-check.sh asks one service whether it is healthy: its compose healthcheck, run by docker exec."""

    service: str
    container: str
    check: str  # what the table shows, e.g. "GET :7002/health"
    command: tuple[str, ...]


@record
class Database:
    """The node's PostgreSQL: what backup-db.sh dumps and deploy.sh migrates."""

    container: str
    user: str
    name: str


def probe(svc: Svc) -> Probe:
    kind, *rest = svc.health_test
    command = ("sh", "-c", rest[0]) if kind == "CMD-SHELL" else tuple(rest)
    over_http = svc.http or any(c.startswith("http://") for c in command)
    check = f"GET :{svc.health_port}{svc.health_path}" if over_http else " ".join(command)
    return Probe(svc.name, svc.container, check, command)


def _literal(svc: Svc, name: str, default: str) -> str:
    env = next((e for e in svc.env if e.name == name and e.value is not None and not e.secret), None)
    return env.value if env is not None and env.value else default


def database(view: NodeView) -> Database | None:
    pg = view.service(DATABASE_SERVICE)
    if pg is None:
        return None
    user = _literal(pg, "POSTGRES_USER", "postgres")
    return Database(pg.container, user, _literal(pg, "POSTGRES_DB", user))


def built_images(view: NodeView) -> tuple[str, ...]:
    """Images compose builds (named <project>-<service>): deploy.sh keeps the previous ones for rollback."""
    return tuple(f"{view.project}-{s.name}" for s in view.services if s.build)


def smoke_paths(view: NodeView) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(HTTP paths that must answer 200, websocket paths that must upgrade) through the gateway.

    Public routes only: the smoke test runs on the node itself, which is not a fleet peer of its own gateway.
    """
    public = tuple(s for s in view.routed if s.visibility == "public")
    http = ("/health", *(f"/api/{s.route}/health" for s in public))
    ws = tuple(f"/ws/{s.route}/{channel}" for s in public for channel in s.websocket)
    return http, ws


def all_images(view: NodeView) -> tuple[str, ...]:
    """Every image reference the node runs: deploy.sh records which image each one was."""
    return tuple(sorted({s.image for s in view.services if s.image} | set(built_images(view))))


def _context(view: NodeView) -> dict[str, object]:
    http, ws = smoke_paths(view)
    probes = tuple(probe(s) for s in view.services if s.health_test != ("NONE",))  # no probe: Prometheus `up`
    db = database(view)
    return {
        "v": view,
        "probes": probes,
        "width": max(len("SERVICE"), *(len(p.service) for p in probes)) + 1,
        "check_width": max(len("CHECK"), *(len(p.check) for p in probes)) + 1,
        "db": db,
        # The roles/schemas/databases script, as postgres' container sees it: deploy.sh runs it on every deploy.
        "initdb": (INITDB_CONTAINER_DIR + "/" + INITDB.rsplit("/", 1)[1]
                   if db is not None and needed(view) else None),
        "images": built_images(view),
        "all_images": all_images(view),
        "prometheus": view.service("prometheus"),
        "alertmanager": view.service(ALERTMANAGER),
        "nginx_conf": CONTAINER_DIR + "/nginx.conf",
        "certbot_image": CERTBOT_IMAGE,
        "schedules": ("backup-db", "certs") if db is not None else ("certs",),
        "apps": tuple(s.name for s in view.services if s.name != DATABASE_SERVICE),
        "smoke_http": http,
        "smoke_ws": ws,
        "smoke_address": view.gateway.listen or "127.0.0.1",
        "backup": view.standard.backup,
        "ship": view.backup_ship_to if db is not None else None,
        "remote_dir": f"{view.standard.node_root}/backups/received/{view.id}",
        "receives": view.backup_receives if db is not None else (),
        "crypt": db is not None and bool(view.backup_ship_to or view.backup_receives),
        "root": view.standard.node_root,
    }


def render(view: NodeView) -> dict[str, str]:
    ctx = _context(view)
    files = {
        HEALTH_CHECK: template("health-check.sh.j2", **ctx),
        DEPLOY: template("deploy.sh.j2", **ctx),
        ROLLBACK: template("rollback.sh.j2", **ctx),
        CERTS: template("certs.sh.j2", **ctx),
        SWITCH_OVER: template("switch-over.sh.j2", **ctx),
        CERTS_CRON: template("certs.cron.j2", **ctx),
    }
    if ctx["db"] is not None:
        files[BACKUP] = template("backup-db.sh.j2", **ctx)
        files[BACKUP_CRON] = template("backup-db.cron.j2", **ctx)
    return files
