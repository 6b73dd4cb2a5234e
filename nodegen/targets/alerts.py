"""Prometheus rules (infra/prometheus/alerts.yml): recording rules and the alerts worth being woken for.

Severity: `critical` pages, `warning` notifies, `info` is only shown. Targets of on-demand nodes (an uptime
of standard.uptimes with on_demand, e.g. uptime="on-demand") get every alert as `info`: a node that is off by
design never pages.
Every alert links its runbook (targets/runbooks.py renders docs/runbooks/<alert>.md beside it).
"""

from __future__ import annotations

from collections.abc import Callable

from nodegen.load.model import AlertThresholds, Standard
from nodegen.record import record
from nodegen.standard import on_demand_uptimes
from nodegen.templating import template
from nodegen.view.resolve import NodeView

PATH = "infra/prometheus/alerts.yml"
WINDOW = "5m"
# Labels an aggregated series keeps: the target's identity as Prometheus scrapes it.
BY = "job, instance, node, role, service, tier, uptime"
# The textfile-collector metric backup-db.sh writes (docs/decisions.md, "Metrics of the scripts").
BACKUP_METRIC = "nodegen_backup_last_success_timestamp_seconds"
BACKUP_STATUS = "nodegen_backup_last_status"
BACKUP_SHIPPED = "nodegen_backup_last_shipped_timestamp_seconds"
# certs.sh's and the deploy scripts' textfile metrics (same decision).
SELF_SIGNED = "nodegen_certificate_self_signed"
DEPLOY_STATUS = "nodegen_deploy_last_status"
ROLLBACK_STATUS = "nodegen_rollback_last_status"
PROBE = 'job=~"probe-.*"'
NOT_PROBE = 'job!~"probe-.*"'
HOST_FS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|autofs"'

REQUESTS = "service:http_requests:rate5m"
ERROR_RATIO = "service:http_error_ratio:rate5m"
LATENCY_P95 = "service:http_request_duration_seconds:p95_5m"
FS_FREE = "instance:node_filesystem_avail:ratio"
MEM_FREE = "instance:node_memory_available:ratio"
PG_CONNECTIONS = "instance:pg_connections:ratio"

Sel = Callable[..., str]  # sel(*matchers): a selector with the variant's uptime matcher added


@record
class Record:
    record: str
    expr: str


@record
class Spec:
    """An alert before it is split by uptime: expr is built from the variant's selector."""

    alert: str
    expr: Callable[[Sel], str]
    for_: str
    severity: str
    summary: str
    description: str


@record
class Rule:
    """One alerting rule as written to alerts.yml."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    runbook_url: str
    labels: tuple[tuple[str, str], ...] = ()  # besides severity


@record
class Group:
    name: str
    rules: tuple[Rule, ...] = ()
    records: tuple[Record, ...] = ()


def _label(name: str) -> str:
    return "{{ $labels." + name + " }}"


TARGET = f"{_label('service')} on {_label('node')}"


def records() -> tuple[Record, ...]:
    """Ratios the alerts and the dashboards share, each computed once per evaluation."""
    return (
        Record(REQUESTS, f"sum by ({BY}) (rate(http_requests_total[{WINDOW}]))"),
        Record("service:http_errors:rate5m", f'sum by ({BY}) (rate(http_requests_total{{status=~"5.."}}[{WINDOW}]))'),
        Record(ERROR_RATIO, f"service:http_errors:rate5m / {REQUESTS}"),
        Record(LATENCY_P95, f"histogram_quantile(0.95, sum by ({BY}, le) "
                            f"(rate(http_request_duration_seconds_bucket[{WINDOW}])))"),
        Record(FS_FREE, f"node_filesystem_avail_bytes{{{HOST_FS}}} / node_filesystem_size_bytes{{{HOST_FS}}}"),
        Record(MEM_FREE, "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes"),
        Record(PG_CONNECTIONS, f"sum by ({BY}) (pg_stat_activity_count) / max by ({BY}) (pg_settings_max_connections)"),
    )


def availability(a: AlertThresholds, self_node: str, remote: bool) -> tuple[Spec, ...]:
    specs = [
        Spec("ServiceDown", lambda s: f"up{s(NOT_PROBE)} == 0",
             a.down_for, "critical", f"{TARGET} is down",
             f"Prometheus could not scrape {_label('instance')} for {a.down_for}."),
        Spec("DependencyUnhealthy", lambda s: f"service_health{s()} == 0", a.down_for, "critical",
             f"{TARGET}: dependency {_label('dependency')} is unhealthy",
             f"service_health reports {_label('dependency')} down for {a.down_for}."),
        Spec("PublicProbeFailed", lambda s: f"probe_success{s(PROBE)} == 0",
             a.down_for, "critical", f"{_label('instance')} fails from outside",
             f"The blackbox probe of {_label('instance')} ({_label('node')}) has failed for {a.down_for}: "
             "DNS, TLS, the gateway or the service."),
        Spec("CertificateExpiresSoon",
             lambda s: _cert_days(s) + f" < {a.certificate_warning_days}", "10m", "warning",
             f"certificate of {_label('node')} expires in less than {a.certificate_warning_days} days",
             f"{_label('instance')} presents a certificate that expires in {{{{ $value | printf \"%.1f\" }}}} days."),
        Spec("CertificateExpiresCritical",
             lambda s: _cert_days(s) + f" < {a.certificate_critical_days}", "10m", "critical",
             f"certificate of {_label('node')} expires in less than {a.certificate_critical_days} days",
             f"{_label('instance')} presents a certificate that expires in {{{{ $value | printf \"%.1f\" }}}} days."),
    ]
    if remote:
        other_nodes = f'node!="{self_node}"'
        specs.append(Spec(
            "NodeUnreachable",
            lambda s: f"max by (node, role, uptime) (up{s(other_nodes)}) == 0",
            a.down_for, "critical", f"{_label('node')} cannot be reached from {self_node}",
            f"Every target of {_label('node')} has failed to scrape through its gateway for {a.down_for}: "
            "the node, its gateway or the network between the nodes is down."))
    return tuple(specs)


def _cert_days(s: Sel) -> str:
    gateways = s('job="probe-gateways"')
    return f"(probe_ssl_earliest_cert_expiry{gateways} - time()) / 86400"


def performance(a: AlertThresholds) -> tuple[Spec, ...]:
    guard = f"and {REQUESTS}{{sel}} >= {a.min_request_rate:g}"
    return (
        Spec("HighErrorRatio",
             lambda s: f"{ERROR_RATIO}{s()} > {a.error_ratio:g} " + guard.replace("{sel}", s()),
             a.sustained_for, "critical", f"{TARGET}: 5xx responses above {a.error_ratio:.0%}",
             f"{{{{ $value | humanizePercentage }}}} of requests failed with 5xx over {WINDOW}."),
        Spec("HighLatencyP95",
             lambda s: f"{LATENCY_P95}{s()} > {a.latency_p95_seconds:g} " + guard.replace("{sel}", s()),
             a.sustained_for, "warning", f"{TARGET}: p95 latency above {a.latency_p95_seconds:g}s",
             f"p95 request latency is {{{{ $value | humanizeDuration }}}} over {WINDOW}."),
        Spec("TooManyActiveConnections",
             lambda s: f"sum by ({BY}) (active_connections{s()}) > {a.active_connections}",
             a.sustained_for, "warning", f"{TARGET}: more than {a.active_connections} active connections",
             "{{ $value }} active connections."),
    )


def host(a: AlertThresholds) -> tuple[Spec, ...]:
    return (
        Spec("DiskSpaceLow", lambda s: f"{FS_FREE}{s()} < {a.disk_free_ratio:g}", a.sustained_for, "warning",
             f"{_label('node')}: {_label('mountpoint')} has less than {a.disk_free_ratio:.0%} free",
             f"{_label('mountpoint')} ({_label('device')}) has {{{{ $value | humanizePercentage }}}} free."),
        Spec("MemoryPressure", lambda s: f"{MEM_FREE}{s()} < {a.memory_available_ratio:g}", a.sustained_for,
             "warning", f"{_label('node')}: less than {a.memory_available_ratio:.0%} of memory available",
             "{{ $value | humanizePercentage }} of the host's memory is available."),
    )


def data(a: AlertThresholds) -> tuple[Spec, ...]:
    age = a.backup_max_age_hours
    return (
        Spec("PostgresDown", lambda s: f"pg_up{s()} == 0", a.down_for, "critical",
             f"PostgreSQL on {_label('node')} is down",
             f"postgres-exporter on {_label('node')} cannot connect to PostgreSQL for {a.down_for}."),
        Spec("PostgresTooManyConnections",
             lambda s: f"{PG_CONNECTIONS}{s()} > {a.postgres_connections_ratio:g}", a.sustained_for, "warning",
             f"PostgreSQL on {_label('node')}: over {a.postgres_connections_ratio:.0%} of max_connections in use",
             "{{ $value | humanizePercentage }} of max_connections are in use."),
        Spec("RedisDown", lambda s: f"redis_up{s()} == 0", a.down_for, "critical",
             f"Redis on {_label('node')} is down",
             f"redis-exporter on {_label('node')} cannot reach Redis for {a.down_for}."),
        Spec("BackupFailed", lambda s: f"{BACKUP_STATUS}{s()} == 0", "0m", "warning",
             f"{_label('node')}: the last backup of {_label('database')} failed",
             "scripts/backup-db.sh exited with an error; the previous good backup is kept."),
        Spec("BackupTooOld", lambda s: f"time() - {BACKUP_METRIC}{s()} > {age * 3600}", "10m", "critical",
             f"{_label('node')}: no successful backup of {_label('database')} for {age}h",
             "The last successful backup finished {{ $value | humanizeDuration }} ago (scripts/backup-db.sh)."),
    )


def shipping(a: AlertThresholds) -> tuple[Spec, ...]:
    """Only on nodes that ship their backups: backup-db.sh writes the shipped time there alone."""
    age = a.backup_max_age_hours
    return (
        Spec("BackupNotShipped", lambda s: f"time() - {BACKUP_SHIPPED}{s()} > {age * 3600}", "10m", "warning",
             f"{_label('node')}: no backup of {_label('database')} reached the backup node for {age}h",
             "The last backup shipped to the backup node {{ $value | humanizeDuration }} ago "
             "(never, if that is decades): the only copies are on the node itself."),
    )


def operations() -> tuple[Spec, ...]:
    """What the scripts report: the certificate they installed, and the last deploy and rollback."""
    return (
        Spec("CertificateSelfSigned", lambda s: f"{SELF_SIGNED}{s()} == 1", "1h", "warning",
             f"{_label('node')}: the gateway still runs on the self-signed bootstrap certificate",
             f"scripts/certs.sh bootstrapped a self-signed certificate for {_label('domain')} and no real one "
             "has replaced it for 1h: browsers and the other nodes refuse it."),
        Spec("DeployFailed", lambda s: f"{DEPLOY_STATUS}{s()} == 0", "0m", "warning",
             f"{_label('node')}: the last deploy failed (release {_label('release')})",
             "scripts/deploy.sh stopped at a step with an error; the steps after it did not run and the node may "
             "run a mix of the old and new release."),
        Spec("RollbackFailed", lambda s: f"{ROLLBACK_STATUS}{s()} == 0", "0m", "warning",
             f"{_label('node')}: the last rollback failed (release {_label('release')})",
             "scripts/rollback.sh stopped with an error: the node runs neither the release it left nor the one "
             "it was returning to."),
    )


def prometheus_health(a: AlertThresholds, alertmanager: bool) -> tuple[Spec, ...]:
    specs = [
        Spec("PrometheusRuleFailures",
             lambda s: f"increase(prometheus_rule_evaluation_failures_total{s()}[{WINDOW}]) > 0", "0m", "warning",
             f"Prometheus on {_label('node')} fails to evaluate rules",
             f"Rule evaluations failed over {WINDOW}: the alerts of the failing group are blind."),
        Spec("PrometheusScrapeFailures",
             lambda s: f"count by (uptime) (up{s()} == 0) / count by (uptime) (up{s()}) > 0.25",
             a.sustained_for, "warning", "Prometheus fails to scrape a quarter of its targets",
             "{{ $value | humanizePercentage }} of the targets fail to scrape: suspect the network, "
             "the gateways' metrics routes or Prometheus itself before each service."),
        Spec("PrometheusConfigReloadFailed",
             lambda s: f"prometheus_config_last_reload_successful{s()} == 0", "5m", "warning",
             f"Prometheus on {_label('node')} runs an old configuration",
             "The last reload of prometheus.yml failed; Prometheus keeps the previous configuration."),
    ]
    if alertmanager:
        specs.append(Spec(
            "PrometheusNotificationsFailing",
            lambda s: f"rate(prometheus_notifications_errors_total{s()}[{WINDOW}]) > 0", "5m", "critical",
            f"Prometheus on {_label('node')} cannot send alerts to Alertmanager",
            "Alerts are evaluated but do not reach Alertmanager: nobody is notified of anything."))
    return tuple(specs)


def _selector(*matchers: str) -> str:
    kept = [m for m in matchers if m]
    return "{" + ", ".join(kept) + "}" if kept else ""


def runbook_url(view: NodeView, alert: str) -> str:
    return f"file://{view.standard.node_root}/docs/runbooks/{alert}.md"


def _variant(view: NodeView, spec: Spec, uptime: str, severity: str) -> Rule:
    def sel(*matchers: str) -> str:
        return _selector(uptime, *matchers)

    return Rule(spec.alert, spec.expr(sel), spec.for_, severity, spec.summary, spec.description,
                runbook_url(view, spec.alert))


def uptime_matchers(std: Standard) -> tuple[str, str] | None:
    """(always-on, on-demand) label matchers on `uptime`, or None when the fleet has no on-demand uptime."""
    names = on_demand_uptimes(std)
    if not names:
        return None
    if len(names) == 1:
        return f'uptime!="{names[0]}"', f'uptime="{names[0]}"'
    return f'uptime!~"{"|".join(names)}"', f'uptime=~"{"|".join(names)}"'


def _labelled(std: Standard) -> str | None:
    matchers = uptime_matchers(std)
    return matchers[1] if matchers else None


def split_by_uptime(view: NodeView, spec: Spec) -> tuple[Rule, ...]:
    """The paging variant for always-on targets and an `info` one for on-demand targets."""
    if view.on_demand:
        # Prometheus itself runs on an on-demand node: nothing it sees may page.
        return (_variant(view, spec, "", "info"),)
    matchers = uptime_matchers(view.standard)
    if matchers is None:
        return (_variant(view, spec, "", spec.severity),)
    return (
        _variant(view, spec, matchers[0], spec.severity),
        _variant(view, spec, matchers[1], "info"),
    )


def backup_missing(view: NodeView) -> tuple[Rule, ...]:
    """No backup metric at all from a node with a database: the script never ran, or its file is gone."""
    out = []
    for node, uptime in database_nodes(view):
        severity = "info" if view.on_demand or uptime in on_demand_uptimes(view.standard) else "warning"
        out.append(Rule(
            "BackupMetricMissing", f'absent({BACKUP_METRIC}{{node="{node}"}})', "1h", severity,
            f"{node}: no backup metric",
            f"{node} runs PostgreSQL but reports no {BACKUP_METRIC} (scripts/backup-db.sh writes it through the "
            "node exporter's textfile collector).", runbook_url(view, "BackupMetricMissing"), (("node", node),)))
    return tuple(out)


def database_nodes(view: NodeView) -> tuple[tuple[str, str], ...]:
    """(node, uptime) of every node this Prometheus watches that runs PostgreSQL."""
    found = {(r.node, r.uptime) for r in view.scrape_remote if r.service.name == "postgres-exporter"}
    if view.service("postgres") is not None:
        found.add((view.id, view.uptime))
    return tuple(sorted(found))


def shipping_nodes(view: NodeView) -> tuple[str, ...]:
    """Nodes this Prometheus watches that ship their backups to the fleet's backup node."""
    target = view.standard.backup.ship_to
    return tuple(n for n, _ in database_nodes(view) if target is not None and n != target)


def groups(view: NodeView) -> tuple[Group, ...]:
    a = view.standard.alerts
    prefix = f"{view.project}-{view.id}"
    alertmanager = view.service("alertmanager") is not None
    sections: tuple[tuple[str, tuple[Spec, ...]], ...] = (
        ("availability", availability(a, view.id, bool(view.scrape_remote))),
        ("performance", performance(a)),
        ("host", host(a)),
        ("data", data(a) + (shipping(a) if shipping_nodes(view) else ())),
        ("operations", operations()),
        ("prometheus", prometheus_health(a, alertmanager)),
    )
    out = [Group(f"{prefix}-records", records=records())]
    for name, specs in sections:
        rules = tuple(r for spec in specs for r in split_by_uptime(view, spec))
        if name == "data":
            rules += backup_missing(view)
        out.append(Group(f"{prefix}-{name}", rules))
    return tuple(out)


def alert_names(view: NodeView) -> tuple[str, ...]:
    """Every alert this node's Prometheus can fire, sorted (each has a runbook)."""
    return tuple(sorted({r.alert for g in groups(view) for r in g.rules}))


def single_quoted(text: str) -> str:
    """A YAML single-quoted scalar: PromQL keeps its double quotes readable."""
    return "'" + text.replace("'", "''") + "'"


def render(view: NodeView) -> dict[str, str]:
    if not view.runs_prometheus:
        return {}
    return {PATH: template("alerts.yml.j2", v=view, groups=groups(view), sq=single_quoted,
                           on_demand=_labelled(view.standard))}
