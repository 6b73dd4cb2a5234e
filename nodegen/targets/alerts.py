"""Prometheus alert rules (infra/prometheus/alerts.yml) from the standard's metrics and the manifests' thresholds.

Severity: `critical` pages, `warning` notifies, `info` is only shown. Targets of on-demand nodes
(label uptime="on-demand") get every alert as `info`: a node that is off by design never pages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from nodegen.load.model import AlertThresholds
from nodegen.templating import template
from nodegen.view.resolve import NodeView

PATH = "infra/prometheus/alerts.yml"
ON_DEMAND = "on-demand"
WINDOW = "5m"
# Labels an aggregated alert keeps: the target's identity as Prometheus scrapes it.
BY = "job, instance, node, role, service, tier, uptime"


@dataclass(frozen=True)
class Rule:
    """One alerting rule; before split_by_uptime, {sel} in expr stands for the target selector."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]


def _label(name: str) -> str:
    return "{{ $labels." + name + " }}"


def availability(a: AlertThresholds) -> tuple[Rule, ...]:
    target = f"{_label('service')} on {_label('node')}"
    return (
        Rule("ServiceDown", "up{sel} == 0", a.down_for, "critical",
             f"{target} is down",
             f"Prometheus could not scrape {_label('instance')} for {a.down_for}."),
        Rule("DependencyUnhealthy", "service_health{sel} == 0", a.down_for, "critical",
             f"{target}: dependency {_label('dependency')} is unhealthy",
             f"service_health reports {_label('dependency')} down for {a.down_for}."),
    )


def performance(a: AlertThresholds) -> tuple[Rule, ...]:
    target = f"{_label('service')} on {_label('node')}"
    errors = f'sum by ({BY}) (rate(http_requests_total{{sel5xx}}[{WINDOW}]))'
    total = f"sum by ({BY}) (rate(http_requests_total{{sel}}[{WINDOW}]))"
    buckets = f"sum by ({BY}, le) (rate(http_request_duration_seconds_bucket{{sel}}[{WINDOW}]))"
    return (
        Rule("HighErrorRatio", f"({errors} / {total}) > {a.error_ratio:g}", a.sustained_for, "critical",
             f"{target}: 5xx responses above {a.error_ratio:.0%}",
             f"{{{{ $value | humanizePercentage }}}} of requests failed with 5xx over {WINDOW}."),
        Rule("HighLatencyP95", f"histogram_quantile(0.95, {buckets}) > {a.latency_p95_seconds:g}",
             a.sustained_for, "warning",
             f"{target}: p95 latency above {a.latency_p95_seconds:g}s",
             f"p95 request latency is {{{{ $value | humanizeDuration }}}} over {WINDOW}."),
        Rule("TooManyActiveConnections", f"sum by ({BY}) (active_connections{{sel}}) > {a.active_connections}",
             a.sustained_for, "warning",
             f"{target}: more than {a.active_connections} active connections",
             "{{ $value }} active connections."),
    )


CERT_WARN_DAYS = 14  # the ACME client renews at 30 days left: 14 means two weeks of failed renewals
CERT_CRITICAL_DAYS = 3


def operations(view: NodeView) -> tuple[Rule, ...]:
    """Backups and certificates, from the metrics files the node's scripts write (node exporter textfile)."""
    b = view.standard.backup
    age = b.max_age_hours * 3600
    node = _label("node")
    rules = (
        Rule("BackupFailed", "nodegen_backup_last_status{sel} == 0", "0m", "critical",
             f"the last database backup on {node} failed",
             f"scripts/backup-db.sh on {node} exited non-zero ({_label('database')}); see its log (logger tag)."),
        Rule("BackupTooOld", f"time() - nodegen_backup_last_success_timestamp_seconds{{sel}} > {age}", "0m",
             "critical", f"no good database backup on {node} for {b.max_age_hours}h",
             f"The last good backup of {_label('database')} is {{{{ $value | humanizeDuration }}}} old."),
        Rule("CertificateExpiresSoon",
             f"nodegen_certificate_expiry_timestamp_seconds{{sel}} - time() < {CERT_WARN_DAYS * 86400}", "0m",
             "warning", f"the TLS certificate of {_label('domain')} expires in less than {CERT_WARN_DAYS} days",
             "Renewal (scripts/certs.sh renew, twice a day) has not succeeded; "
             "{{ $value | humanizeDuration }} left."),
        Rule("CertificateExpiresVerySoon",
             f"nodegen_certificate_expiry_timestamp_seconds{{sel}} - time() < {CERT_CRITICAL_DAYS * 86400}", "0m",
             "critical", f"the TLS certificate of {_label('domain')} expires in less than {CERT_CRITICAL_DAYS} days",
             "{{ $value | humanizeDuration }} left; run scripts/certs.sh renew on the node and read its output."),
        Rule("CertificateSelfSigned", "nodegen_certificate_self_signed{sel} == 1", "1h", "warning",
             f"{_label('domain')} still serves the bootstrap certificate",
             "The gateway runs on the self-signed certificate of its first boot: run scripts/certs.sh renew."),
    )
    if b.ship_to is None:
        return rules
    return (*rules, Rule(
        "BackupNotShipped", f"time() - nodegen_backup_last_shipped_timestamp_seconds{{sel}} > {age}", "0m",
        "critical", f"no backup of {node} reached {b.ship_to} for {b.max_age_hours}h",
        f"Backups of {node} are taken but not copied to the backup node; the last copy is "
        "{{ $value | humanizeDuration }} old."))


def _selector(*matchers: str) -> str:
    kept = [m for m in matchers if m]
    return "{" + ", ".join(kept) + "}" if kept else ""


def _variant(spec: Rule, uptime: str, severity: str) -> Rule:
    expr = spec.expr.replace("{sel5xx}", _selector(uptime, 'status=~"5.."')).replace("{sel}", _selector(uptime))
    return replace(spec, expr=expr, severity=severity)


def split_by_uptime(spec: Rule, node_on_demand: bool) -> tuple[Rule, ...]:
    """The paging variant for always-on targets and an `info` one for on-demand targets."""
    if node_on_demand:
        # Prometheus itself runs on an on-demand node: nothing it sees may page.
        return (_variant(spec, "", "info"),)
    return (
        _variant(spec, f'uptime!="{ON_DEMAND}"', spec.severity),
        _variant(spec, f'uptime="{ON_DEMAND}"', "info"),
    )


def groups(view: NodeView) -> tuple[Group, ...]:
    a = view.standard.alerts
    on_demand = view.uptime == ON_DEMAND
    prefix = f"{view.project}-{view.id}"
    return tuple(
        Group(f"{prefix}-{name}", tuple(r for spec in specs for r in split_by_uptime(spec, on_demand)))
        for name, specs in (("availability", availability(a)), ("performance", performance(a)),
                            ("operations", operations(view)))
    )


def single_quoted(text: str) -> str:
    """A YAML single-quoted scalar: PromQL keeps its double quotes readable."""
    return "'" + text.replace("'", "''") + "'"


def render(view: NodeView) -> dict[str, str]:
    if not view.runs_prometheus:
        return {}
    return {PATH: template("alerts.yml.j2", v=view, groups=groups(view), sq=single_quoted)}
