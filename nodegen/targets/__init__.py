"""The registries of output targets and the rendering loop over them: a resolved view in, {relative path: text} out.

Each node target renders one part of a node's files from its view (TARGETS); each fleet target one
fleet-wide file directly in output/ from the whole fleet (FLEET_TARGETS). Rendering is pure.
"""

from __future__ import annotations

from collections.abc import Callable

from nodegen.checksums import SUM_FILE, Files, sum_lines
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
from nodegen.templating import header
from nodegen.view.resolve import FleetView, NodeView

TARGETS: dict[str, Callable[[NodeView], Files]] = {
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

FLEET_TARGETS: dict[str, Callable[[FleetView], Files]] = {
    "fleet-docs": fleetdocs.render,
}


def render_node(view: NodeView) -> Files:
    """Every file of one node, keyed by path relative to output/<node>/, plus the checksum file."""
    files: Files = {}
    for target in TARGETS.values():
        files.update(target(view))
    files[SUM_FILE] = header(view) + sum_lines(files)
    return dict(sorted(files.items()))


def render_fleet(fleet: FleetView) -> Files:
    """The fleet-wide files directly in output/, plus their own checksum file."""
    files: Files = {}
    for target in FLEET_TARGETS.values():
        files.update(target(fleet))
    files[SUM_FILE] = header(fleet) + sum_lines(files)
    return dict(sorted(files.items()))
