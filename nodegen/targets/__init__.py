"""The registry of output targets: each renders one part of a node's files from its view."""

from __future__ import annotations

from collections.abc import Callable

from nodegen.resolve import NodeView
from nodegen.targets import alertmanager, alerts, compose, envfile, grafana, nginx, prometheus, scripts

TARGETS: dict[str, Callable[[NodeView], dict[str, str]]] = {
    "compose": compose.render,
    "env": envfile.render,
    "nginx": nginx.render,
    "prometheus": prometheus.render,
    "alerts": alerts.render,
    "alertmanager": alertmanager.render,
    "grafana": grafana.render,
    "scripts": scripts.render,
}
