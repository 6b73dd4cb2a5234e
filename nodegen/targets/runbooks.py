"""docs/runbooks/<alert>.md beside each Prometheus: what an alert means and what to do first.

Every alert the node's rules can fire has one (its `runbook_url` points at it); the rule itself,
its thresholds and the targets it watches are rendered from the same data as alerts.yml.
"""

from __future__ import annotations

from nodegen.record import record
from nodegen.targets.alerts import alert_names, groups
from nodegen.templating import template
from nodegen.view.resolve import NodeView

DIR = "docs/runbooks"


@record
class Runbook:
    meaning: str
    steps: tuple[str, ...]


_COMPOSE = "docker compose -f docker-compose.all.yml"
_DOWN = f"{_COMPOSE} ps; {_COMPOSE} logs --tail=200 <service>"
RUNBOOKS: dict[str, Runbook] = {
    "ServiceDown": Runbook(
        "Prometheus cannot scrape the target: the container is stopped, unhealthy, or its /metrics does not "
        "answer. For another node's target, its gateway's /metrics/<service> route is the path.",
        (f"On the node: `{_DOWN}`.", "`scripts/health-check.sh <service>` runs the service's own probe.",
         "If it crashed after a deploy: `scripts/rollback.sh`.")),
    "DependencyUnhealthy": Runbook(
        "The service is up but reports (service_health) that a dependency it needs is not.",
        ("Check the dependency named in the alert first (PostgresDown / RedisDown / ServiceDown of it).",
         "Then the service's logs for connection errors and its *_URL settings in .env.")),
    "NodeUnreachable": Runbook(
        "Every target of another node fails to scrape: the node is off, its gateway is down, or the network "
        "between the nodes fails. The node's own alerts are inhibited while this fires.",
        ("`curl -sS -o /dev/null -w '%{http_code}' https://<domain>/health` from this node.",
         "On-demand nodes (info only): expected while the node is switched off.",
         "Otherwise: the node's host, then its gateway-nginx container, then DNS and TLS.")),
    "PublicProbeFailed": Runbook(
        "The blackbox exporter cannot get 200 from a public URL as a user would: DNS, TLS, the gateway "
        "route or the service behind it fails.",
        ("Open the URL in the alert's instance label; `curl -v` it from outside.",
         "A TLS error: see CertificateExpiresCritical; a 404: the gateway's route; a 502/503: ServiceDown.")),
    "CertificateExpiresSoon": Runbook(
        "The gateway's certificate expires within the warning window: renewal has stopped working.",
        ("Renew the certificate into infra/nginx/certs/ (fullchain.pem, privkey.pem), then reload the gateway:",
         "`docker compose -f docker-compose.all.yml exec gateway-nginx nginx -s reload`.",
         "Find why the automatic renewal did not run (its timer, DNS, port 80 reachability).")),
    "CertificateExpiresCritical": Runbook(
        "The gateway's certificate expires within days: clients will refuse the node.",
        ("Renew now (see CertificateExpiresSoon) and reload the gateway.",)),
    "HighErrorRatio": Runbook(
        "More than the threshold of the service's requests answer 5xx, while it serves at least the minimum "
        "request rate (so a handful of requests never pages).",
        ("The service's logs (JSON, with request_id) around the start of the alert.",
         "Its dependencies: DependencyUnhealthy, PostgresDown, RedisDown.",
         "A recent deploy: `scripts/rollback.sh`.")),
    "HighLatencyP95": Runbook(
        "The 95th percentile of http_request_duration_seconds is above the threshold, under real traffic.",
        ("The service's dashboard: is it one route, all routes, or the database?",
         "PostgresTooManyConnections, MemoryPressure and the host's CPU on the node dashboard.")),
    "TooManyActiveConnections": Runbook(
        "The service holds more open connections than the threshold (websockets, slow clients, a leak).",
        ("Compare with the request rate: a rise of users, or connections that never close.",
         "The gateway's connections (nginx exporter) on the node dashboard.")),
    "DiskSpaceLow": Runbook(
        "A host filesystem has less free space than the threshold; full disks stop PostgreSQL and Docker.",
        ("`df -h`; `du -xsh /var/lib/docker /opt/* | sort -h`.",
         "Old backups beyond the retention, Docker images (`docker image prune`), container logs.")),
    "MemoryPressure": Runbook(
        "The host has less available memory than the threshold; the kernel will soon kill processes.",
        ("`docker stats --no-stream` for the biggest containers.", "`dmesg | grep -i oom` for kills already done.")),
    "PostgresDown": Runbook(
        "The PostgreSQL exporter runs but cannot connect to PostgreSQL.",
        ("`scripts/health-check.sh postgres`; the postgres container's logs.",
         "Disk space (DiskSpaceLow) and the exporter's role password POSTGRES_EXPORTER_DB_PASSWORD in .env "
         "(role postgres_exporter).")),
    "PostgresTooManyConnections": Runbook(
        "The share of max_connections in use is above the threshold; new connections will soon be refused.",
        ("`SELECT datname, usename, state, count(*) FROM pg_stat_activity GROUP BY 1, 2, 3 ORDER BY 4 DESC;`",
         "Services that leak connections or run without a pool.")),
    "RedisDown": Runbook(
        "The Redis exporter runs but cannot reach Redis.",
        ("`scripts/health-check.sh redis`; the redis container's logs; memory on the host.",)),
    "BackupTooOld": Runbook(
        "The last successful database backup is older than the limit: a restore would lose more data than "
        "the policy allows.",
        ("Run `scripts/backup-db.sh` by hand and read its output.",
         "The cron entry (scripts/backup-db.cron) and disk space in backups/.")),
    "BackupFailed": Runbook(
        "The last run of backup-db.sh failed (nodegen_backup_last_status 0): the dump, its retention or its "
        "shipping to the backup node. The last good backup is older than it should be.",
        ("Run `scripts/backup-db.sh` by hand and read its output; the cron job's output is in the system log.",
         "Disk space in backups/ (DiskSpaceLow), PostgresDown, the backup node's reachability.")),
    "BackupMetricMissing": Runbook(
        "A node with PostgreSQL reports no backup metric at all: backup-db.sh never ran, or its metrics file "
        "in metrics/ is gone, or the node exporter is down.",
        ("Is the node exporter up (ServiceDown)? Does metrics/nodegen_backup.prom exist on the node?",
         "Run `scripts/backup-db.sh` once; the metric appears at the next scrape.")),
    "BackupNotShipped": Runbook(
        "Backups are made but none has reached the backup node within the backup age limit "
        "(nodegen_backup_last_shipped_timestamp_seconds): losing this node's disk would lose the data.",
        ("`scripts/backup-db.sh` by hand: its log says why shipping failed (BACKUP_ENCRYPTION_KEY or "
         "BACKUP_SSH_USER missing from .env, ssh to the backup node, its disk).",
         "A run with `--no-ship` does not ship: check the cron entry (scripts/backup-db.cron).",
         "Is the backup node up (NodeUnreachable)? Its backups/received/<node>/ should hold the newest file.")),
    "CertificateSelfSigned": Runbook(
        "scripts/certs.sh installed its self-signed bootstrap certificate (so the gateway could start) and no "
        "certificate from the authority has replaced it: clients refuse the node (PublicProbeFailed too).",
        ("`scripts/certs.sh renew` and read its output: DNS of the domain must point at this node and port 80 "
         "must reach the gateway (ACME HTTP-01).",
         "ACME_EMAIL in .env; the renewal cron entry (scripts/certs.cron).",
         "The metric comes from metrics/nodegen_certificate.prom, rewritten by every certs.sh run.")),
    "DeployFailed": Runbook(
        "The last `scripts/deploy.sh` stopped at a step with an error (metrics/nodegen_deploy.prom, "
        "nodegen_deploy_last_status 0). Steps after it did not run: migrations, the restart or the smoke "
        "tests may be missing.",
        ("`cat releases/<release>/status` names the failed step; the deploy's own output has the error.",
         "Fix and deploy again, or `scripts/rollback.sh` to the release before it.",
         "The next successful deploy clears the alert.")),
    "RollbackFailed": Runbook(
        "The last `scripts/rollback.sh` stopped with an error (nodegen_rollback_last_status 0): the node may run "
        "files of one release and images of another.",
        ("`scripts/rollback.sh --list`, then `scripts/rollback.sh --to <release>` with a complete release.",
         "An image no longer on the host (pruned) cannot be rolled back to: deploy a fixed release instead.",
         "A later successful rollback clears the alert.")),
    "PrometheusRuleFailures": Runbook(
        "Prometheus fails to evaluate some rules: the alerts of that group cannot fire.",
        ("Prometheus' logs, and Status > Rules in its UI for the failing rule and its error.",)),
    "PrometheusScrapeFailures": Runbook(
        "A quarter or more of the targets fail to scrape at once: a cause shared by many targets.",
        ("The network between the nodes (NodeUnreachable), the gateways' /metrics routes and their "
         "credentials, or Prometheus' own configuration (Status > Targets).",)),
    "PrometheusConfigReloadFailed": Runbook(
        "The last reload of prometheus.yml failed; Prometheus still runs the previous configuration.",
        ("`promtool check config infra/prometheus/prometheus.yml`; re-render with nodegen and deploy.",)),
    "PrometheusNotificationsFailing": Runbook(
        "Prometheus cannot deliver alerts to Alertmanager: nobody is told about anything else.",
        ("The alertmanager container (ServiceDown of it) and its logs.",
         "`amtool check-config infra/alertmanager/alertmanager.yml`.")),
}


def render(view: NodeView) -> dict[str, str]:
    if not view.runs_prometheus:
        return {}
    rules = [r for g in groups(view) for r in g.rules]
    out = {}
    for name in alert_names(view):
        variants = [r for r in rules if r.alert == name]
        out[f"{DIR}/{name}.md"] = template("runbook.md.j2", v=view, alert=name, book=RUNBOOKS[name],
                                           rules=variants)
    return out
