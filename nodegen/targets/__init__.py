"""The registries of output targets: each renders one part of a node's files from its view (TARGETS),
or one fleet-wide file directly in output/ from the whole fleet (FLEET_TARGETS)."""

from __future__ import annotations

from collections.abc import Callable

from nodegen.resolve import FleetView, NodeView
from nodegen.targets import (
    alertmanager,
    alerts,
    compose,
    devcompose,
    docs,
    envfile,
    fleetdocs,
    grafana,
    nginx,
    prometheus,
    scripts,
)

TARGETS: dict[str, Callable[[NodeView], dict[str, str]]] = {
    "compose": compose.render,
    "env": envfile.render,
    "nginx": nginx.render,
    "prometheus": prometheus.render,
    "alerts": alerts.render,
    "alertmanager": alertmanager.render,
    "grafana": grafana.render,
    "scripts": scripts.render,
    "devcompose": devcompose.render,
    "docs": docs.render,
}

FLEET_TARGETS: dict[str, Callable[[FleetView], dict[str, str]]] = {
    "fleet-docs": fleetdocs.render,
}
