"""The generated prometheus.yml and alerts.yml, run by the real Prometheus, scrape every service of the node.

Targets are `<service>:<port>` names, resolved by Prometheus through the system resolver: the test
gives Prometheus a private /etc/hosts (a bind mount in its own mount namespace) mapping every name
to 127.0.0.1, where the stubs listen.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool
from tests.e2e.conftest import Stubs
from tests.e2e.fleet import NODE, Layout
from tests.e2e.harness import LOOPBACK, PortPicker, Proc, port_free, wait_until

pytestmark = pytest.mark.e2e

SELF_PORT = 9090  # the rendered config scrapes Prometheus itself at localhost:9090
SHORT = {"city-service": "city", "agents-service": "agents"}
MOUNT_HOSTS = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'


class Prometheus:
    def __init__(self, proc: Proc, port: int) -> None:
        self.proc = proc
        self.port = port

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}{path}", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def ready(self) -> bool:
        if not self.proc.running:
            raise AssertionError(f"prometheus exited:\n{self.proc.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False


@pytest.fixture(scope="module")
def prometheus(layout: Layout, stubs: Stubs) -> Iterator[Prometheus]:
    require_tool("prometheus", shutil.which("prometheus") is not None)
    require_tool("unshare (util-linux)", shutil.which("unshare") is not None)
    names = ["localhost", *(s.name for s in layout.stubs)]
    hosts = layout.root / "hosts"
    hosts.write_text(f"127.0.0.1 {' '.join(names)}\n", encoding="utf-8")
    # Its own job needs 127.0.0.1:9090; if something else holds it, that one job cannot be ours.
    port = SELF_PORT if port_free(SELF_PORT) else PortPicker().any()
    data = layout.root / "prometheus-data"
    data.mkdir(exist_ok=True)
    config = layout.out / "infra" / "prometheus" / "prometheus.yml"
    # As root a private mount namespace suffices; otherwise a user namespace grants the bind mount.
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    proc = Proc("prometheus", [
        *unshare, "--propagation", "private", "sh", "-c", MOUNT_HOSTS, "sh", str(hosts),
        "prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
        f"--web.listen-address={LOOPBACK}:{port}", "--log.level=warn",
    ], layout.root / "prometheus.log")
    server = Prometheus(proc, port)
    try:
        proc.start()
        wait_until("prometheus to be ready", server.ready, 60, interval=0.25)
        yield server
    finally:
        proc.stop()


def expected_jobs(layout: Layout) -> dict[str, dict[str, str]]:
    jobs = {s.name: {"service": SHORT.get(s.name, s.name), "node": NODE, "tier": s.tier,
                     "instance": f"{s.name}:{s.scrape_port}"} for s in layout.stubs}
    jobs["prometheus"] = {"service": "prometheus", "node": NODE, "tier": "monitoring", "instance": "localhost:9090"}
    return jobs


def test_every_job_is_scraped_up_with_its_labels(layout: Layout, prometheus: Prometheus) -> None:
    jobs = expected_jobs(layout)
    must_be_up = set(jobs) if prometheus.port == SELF_PORT else set(jobs) - {"prometheus"}
    last: list[dict[str, Any]] = []

    def all_up() -> bool:
        nonlocal last
        last = prometheus.api("/api/v1/targets?state=active")["activeTargets"]
        up = {t["labels"]["job"] for t in last if t["health"] == "up"}
        return must_be_up <= up

    try:
        wait_until("every target to be up", all_up, 90, interval=1.0)  # scrape_interval is 15s
    except AssertionError as exc:
        detail = [(t["labels"]["job"], t["health"], t.get("lastError")) for t in last]
        raise AssertionError(f"{exc}: {detail}") from None
    by_job = {t["labels"]["job"]: t for t in last}
    assert set(by_job) == set(jobs), "scrape jobs differ from the node's services"
    for job, labels in jobs.items():
        target = by_job[job]["labels"]
        for key, value in labels.items():
            assert target[key] == value, (job, key, target)
        assert target["role"] == "production"
    assert by_job["swapper"]["scrapeUrl"].endswith(f":{layout.stub('swapper').metrics_port}/metrics")


def test_scraped_samples_carry_the_labels(layout: Layout, prometheus: Prometheus) -> None:
    def scraped() -> bool:
        return len(prometheus.api("/api/v1/query?query=stub_up")["result"]) == len(layout.stubs)

    wait_until("a sample from every stub", scraped, 90, interval=1.0)
    results = prometheus.api("/api/v1/query?query=stub_up")["result"]
    for sample in results:
        metric = sample["metric"]
        assert metric["node"] == NODE and metric["service"] and metric["tier"], metric
        assert sample["value"][1] == "1"


def test_alert_rules_are_loaded_and_evaluate(layout: Layout, prometheus: Prometheus) -> None:
    rendered = yaml.safe_load((layout.out / "infra" / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    # Prometheus' API names alerting rules by their alert and recording rules by their record.
    expected = {r.get("alert") or r["record"] for g in rendered["groups"] for r in g["rules"]}
    assert "ServiceDown" in expected and "service:http_error_ratio:rate5m" in expected
    rules: dict[str, Any] = {}

    def evaluated() -> bool:
        nonlocal rules
        groups = prometheus.api("/api/v1/rules")["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        return bool(rules) and all(r["health"] != "unknown" for r in rules.values())

    wait_until("the alert rules' first evaluation", evaluated, 60, interval=1.0)
    assert set(rules) == expected
    for name, rule in rules.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
