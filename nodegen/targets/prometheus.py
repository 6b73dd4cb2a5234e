"""Prometheus on nodes that run it: scrape configs (the alert rules they reference: targets/alerts.py)."""

from __future__ import annotations

from nodegen.templating import template
from nodegen.view.resolve import SCRAPE_PASSWORD, SCRAPE_USER, NodeView

CONFIG = "infra/prometheus/prometheus.yml"
BLACKBOX = "infra/blackbox/blackbox.yml"


def render(view: NodeView) -> dict[str, str]:
    if not view.runs_prometheus:
        return {}
    return {CONFIG: template("prometheus.yml.j2", v=view, rule_files=["alerts.yml"], scrape_user=SCRAPE_USER,
                             scrape_password_file=f"/run/secrets/{SCRAPE_PASSWORD.secret_name}")}


def render_blackbox(view: NodeView) -> dict[str, str]:
    """The blackbox exporter's modules, where it runs (beside Prometheus)."""
    if view.service("blackbox-exporter") is None:
        return {}
    return {BLACKBOX: template("blackbox.yml.j2", v=view)}
