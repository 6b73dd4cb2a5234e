"""Prometheus on nodes that run it: scrape configs (the alert rules they reference: targets/alerts.py)."""

from __future__ import annotations

from nodegen.templating import template
from nodegen.view.resolve import NodeView

CONFIG = "infra/prometheus/prometheus.yml"


def render(view: NodeView) -> dict[str, str]:
    if not view.runs_prometheus:
        return {}
    return {CONFIG: template("prometheus.yml.j2", v=view, rule_files=["alerts.yml"])}
