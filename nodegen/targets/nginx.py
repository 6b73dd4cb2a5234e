"""The nginx gateway: routes, websockets, rate limit, TLS, JSON access log, security headers."""

from __future__ import annotations

from nodegen.standard import GATEWAY_STATUS_PORT
from nodegen.targets.matrix import plan
from nodegen.templating import template
from nodegen.view.resolve import NodeView

CONF = "infra/nginx/nginx.conf"
CERTS_README = "infra/nginx/certs/README.md"


def upstream_var(service: str) -> str:
    return "upstream_" + service.replace("-", "_")


def render(view: NodeView) -> dict[str, str]:
    gw = next(s for s in view.services if s.gateway)
    return {
        CONF: template("nginx.conf.j2", v=view, gw=gw, upstream_var=upstream_var,
                       status_port=GATEWAY_STATUS_PORT, matrix=plan(view)),
        CERTS_README: template("certs-README.md.j2", v=view),
    }
