"""Prometheus on nodes that run it: scrape configs and the alert rules they reference."""

from __future__ import annotations

from nodegen.render import template
from nodegen.resolve import NodeView

CONFIG = "infra/prometheus/prometheus.yml"
ALERTS = "infra/prometheus/alerts.yml"


def render(view: NodeView) -> dict[str, str]:
    if not view.runs_prometheus:
        return {}
    return {
        CONFIG: template("prometheus.yml.j2", v=view, rule_files=["alerts.yml"]),
        ALERTS: template("alerts.yml.j2", v=view, a=view.standard.alerts),
    }
