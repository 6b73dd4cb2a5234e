"""The nginx gateway: routes, websockets, rate limit, TLS, JSON access log, security headers."""

from __future__ import annotations

from nodegen.standard import GATEWAY_STATUS_PORT
from nodegen.targets.matrix import plan
from nodegen.templating import template
from nodegen.view.resolve import NodeView

CONF = "infra/nginx/nginx.conf"
CERTS_README = "infra/nginx/certs/README.md"
# Where the gateway container sees infra/nginx/ (mounted whole, so changed files reach it).
CONTAINER_DIR = "/etc/nginx/nodegen"
# The ACME HTTP-01 webroot: scripts/certs.sh has the ACME client write infra/nginx/acme/.
ACME_WEBROOT = CONTAINER_DIR + "/acme"


def upstream_var(service: str) -> str:
    return "upstream_" + service.replace("-", "_")


def upstreams(view: NodeView) -> list[tuple[str, int]]:
    """(service, port) of every service the gateway proxies to on the node: routes, Synapse, the web frontend."""
    matrix = plan(view)
    found = {(s.name, s.port) for s in view.routed}
    if matrix is not None:
        found.add((matrix.synapse.name, matrix.http_port))
    if view.spa is not None:
        found.add((view.spa.name, view.spa.port))
    return sorted(found)


def render(view: NodeView) -> dict[str, str]:
    gw = next(s for s in view.services if s.gateway)
    return {
        CONF: template("nginx.conf.j2", v=view, gw=gw, upstream_var=upstream_var, acme_webroot=ACME_WEBROOT,
                       status_port=GATEWAY_STATUS_PORT, matrix=plan(view), upstreams=upstreams(view)),
        CERTS_README: template("certs-README.md.j2", v=view),
    }
