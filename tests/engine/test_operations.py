"""Each shipped node's generated scripts run as an operator would, on the real engine: first deploy, certificates,
change, rollback, the lock.

The node root is a temporary folder holding the rendered tree (as synced from output/<node>/), the operator's
.env and the build contexts; every script runs inside the engine's network namespace. The change is a real
one: a modified copy of the shipped manifests (a new routed service, a changed alert threshold) rendered by
nodegen and synced over the node root, as an operator syncs a reviewed commit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodegen.targets.scripts import CERTBOT_IMAGE
from tests.conftest import ROOT, invoke
from tests.engine import images
from tests.engine.conftest import NODES, populate_builds, view
from tests.engine.daemon import Engine
from tests.engine.operator import DEPLOY_TIMEOUT, HTTPS, Operated, log_of, node_root, sync

pytestmark = pytest.mark.engine

NEW_SERVICE, NEW_ROUTE, NEW_PORT = "notes-service", "notes", 7010
RULE = "ServiceDown"
OLD_FOR, NEW_FOR = "2m", "3m"
CERTBOT_STANDIN = 'COPY certbot.sh /usr/local/bin/certbot\nENTRYPOINT ["sh", "/usr/local/bin/certbot"]\n'
LOCK_MESSAGE = "another deploy, rollback or switch-over holds"
SYNAPSE = "matrix-synapse"
SYNAPSE_METRICS, OLD_METRICS_PORT, NEW_METRICS_PORT = "metrics: {{port: {}, path: /_synapse/metrics}}", 8449, 8459


def changed_render(tmp: Path, name: str) -> Path:
    """The shipped manifests with one more routed service on the node and ServiceDown's `for` changed, rendered.
    The new route is public even on a dev node (whose routes are fleet-only by default): the probe is no peer."""
    workspace = tmp / "changed"
    shutil.copytree(ROOT / "nodes", workspace / "nodes")
    fleet = workspace / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    old = f"alerts: {{down_for: {OLD_FOR},"
    assert old in text, "the shipped fleet's standard.alerts.down_for moved: update this test"
    text = text.replace(old, f"alerts: {{down_for: {NEW_FOR},")
    anchor = "  secondme-service:\n"
    assert anchor in text
    text = text.replace(anchor, (
        f"  {NEW_SERVICE}:\n    description: Notes, added by the change under test\n    title: Notes\n"
        f"    class: mvp\n    phase: mvp\n    build: services/{NEW_SERVICE}\n"
        f"    cluster: {{image: registry.daarion.city/{NEW_SERVICE}:1.0.0}}\n"
        f"    port: {NEW_PORT}\n    route: {NEW_ROUTE}\n\n{anchor}"), 1)
    if view(name).service(SYNAPSE) is not None:  # a change of Synapse's own generated homeserver.yaml
        old_metrics = SYNAPSE_METRICS.format(OLD_METRICS_PORT)
        assert old_metrics in text, "Synapse's metrics listener moved in the shipped fleet: update this test"
        text = text.replace(old_metrics, SYNAPSE_METRICS.format(NEW_METRICS_PORT), 1)
    fleet.write_text(text, encoding="utf-8")
    node = workspace / "nodes" / f"{name}.yaml"
    services = node.read_text(encoding="utf-8")
    assert "services:\n" in services
    entry = f"  - {NEW_SERVICE}: {{visibility: public}}\n"
    node.write_text(services.replace("services:\n", f"services:\n{entry}", 1), encoding="utf-8")
    result = invoke("-C", str(workspace), "render", name)
    assert result.code == 0, result.stderr
    return workspace / "output" / name


@pytest.fixture(scope="module", params=NODES)
def operated(request: pytest.FixtureRequest, engine: Engine,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operated]:
    """The node's rendered tree in a node root, deployed first by its own deploy.sh (no certificate given)."""
    name: str = request.param
    node = node_root(engine, name, ROOT / "output" / name, tmp_path_factory.mktemp(f"ops-{name}"))
    try:
        yield node
    finally:
        node.down()


def test_first_deploy_boots_on_the_bootstrap_certificate(operated: Operated) -> None:
    proc = operated.script("deploy.sh", "--insecure")
    assert proc.returncode == 0, log_of(proc)
    (release,) = operated.releases()
    assert operated.current() == release
    assert operated.record(release, "status") == "deployed"
    assert operated.record(release, "previous") == ""
    cert = operated.folder / "infra" / "nginx" / "certs" / "fullchain.pem"
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-issuer", "-in", str(cert)],
                             capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    assert subject[0].removeprefix("subject=") == subject[1].removeprefix("issuer="), subject  # self-signed
    assert f"CN = {view(operated.name).domain}" in subject[0]
    assert "ok   200 /health" in proc.stderr
    assert (operated.folder / "releases" / release / "images.txt").read_text(encoding="utf-8").count("\n") > 0
    assert_dev_override(operated)


def fingerprint(pem: str) -> str:
    """SHA-256 of the first certificate in a PEM file (the leaf of a full chain)."""
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def issuer(pem: str) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-issuer"], input=pem, capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def test_certificate_issuance_and_renewal_reach_the_running_gateway(operated: Operated) -> None:
    certs = operated.folder / "infra" / "nginx" / "certs"
    webroot = operated.folder / "infra" / "nginx" / "acme" / ".well-known" / "acme-challenge"
    domain = view(operated.name).domain

    def served() -> dict[str, str]:
        (reply,) = operated.probe([{"kind": "cert", "url": HTTPS, "host": domain}])
        return reply

    def challenge(token: str) -> dict[str, Any]:
        (reply,) = operated.probe([{"kind": "http", "url": f"http://127.0.0.1/.well-known/acme-challenge/{token}",
                                    "host": domain}])
        return reply

    gateway = operated.container(view(operated.name).gateway_service.name)
    boot = served()
    assert boot["sha256"] == fingerprint((certs / "fullchain.pem").read_text(encoding="utf-8"))  # the bootstrap
    # The HTTP-01 path: a token in the webroot is served on port 80 (everything else there redirects).
    webroot.mkdir(parents=True, exist_ok=True)
    (webroot / "manual-token").write_text("manual-token.account\n", encoding="utf-8")
    reply = challenge("manual-token")
    assert reply["status"] == 200 and reply["body"] == "manual-token.account\n", reply
    assert challenge("no-such-token")["status"] == 404

    images.build(["docker"], [CERTBOT_IMAGE], CERTBOT_STANDIN, ["certbot.sh"], operated.engine.env)
    with (operated.folder / ".env").open("a", encoding="utf-8") as env:
        env.write("ACME_EMAIL=ops@daarion.city\n")
    seen = {boot["sha256"]}
    for attempt in ("issuance", "renewal"):
        before = set(p.name for p in webroot.iterdir())
        proc = operated.script("certs.sh", "renew", timeout=300)
        assert proc.returncode == 0, (attempt, log_of(proc))
        assert "installed the certificate the ACME client issued" in proc.stderr, proc.stderr
        assert "nginx reloaded with the new certificate" in proc.stderr
        (token,) = set(p.name for p in webroot.iterdir()) - before  # the client's token, served by the gateway
        assert challenge(token)["status"] == 200, (attempt, challenge(token))
        now = served()
        installed = (certs / "fullchain.pem").read_text(encoding="utf-8")
        assert now["sha256"] == fingerprint(installed), attempt
        assert now["sha256"] not in seen, f"{attempt}: the gateway still serves an earlier certificate"
        assert "nodegen engine test CA" in issuer(now["pem"])
        seen.add(now["sha256"])
    after = operated.container(view(operated.name).gateway_service.name)
    assert (after["Id"], after["State"]["StartedAt"], after["RestartCount"]) == \
        (gateway["Id"], gateway["State"]["StartedAt"], 0), "the gateway was restarted, not reloaded"
    metric = (operated.folder / "metrics" / "nodegen_certificate.prom").read_text(encoding="utf-8")
    assert f'nodegen_certificate_self_signed{{node="{operated.name}",domain="{domain}"}} 0' in metric


def assert_dev_override(operated: Operated) -> None:
    """On a node with a dev override (node2), what the scripts started runs with it: the override's DEBUG logs."""
    dev = operated.folder / "docker-compose.dev.yml"
    if not dev.exists():
        return
    wanted = {name for name, svc in (yaml.safe_load(dev.read_text(encoding="utf-8"))["services"] or {}).items()
              if (svc.get("environment") or {}).get("LOG_LEVEL") == "DEBUG"}
    assert wanted, "the dev override sets no DEBUG log level: update this test"
    running = {c["Config"]["Labels"]["com.docker.compose.service"]: c["Config"]["Env"] for c in operated.containers()
               if c["State"]["Running"]}
    plain = sorted(name for name in wanted & set(running) if "LOG_LEVEL=DEBUG" not in running[name])
    assert not plain, f"started without the dev override: {plain}"
    assert wanted & set(running), sorted(running)


def synapse_metrics(operated: Operated, port: int) -> int:
    """The status of Synapse's metrics listener on `port`, asked at its container's address (0: no answer)."""
    (reply,) = operated.probe([{"kind": "http", "url": f"http://{operated.address(SYNAPSE)}:{port}/_synapse/metrics"}])
    return int(reply.get("status") or 0)


def rebuilt_service(operated: Operated) -> str:
    """One of the node's built services, its build context given a change (the operator's new build)."""
    builds = {name: svc["build"] for name, svc in sorted(operated.model()["services"].items())
              if svc.get("build") and name != NEW_SERVICE}
    assert builds, f"{operated.name} builds no service"
    name, build = next(iter(builds.items()))
    context = Path(build["context"] if isinstance(build, dict) else build)
    dockerfile = (context if context.is_absolute() else operated.folder / context) / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text(encoding="utf-8") + "ENV STUB_BUILD=2\n", encoding="utf-8")
    return name


def test_change_is_served_and_loaded_then_rollback_returns_the_previous_release(
        operated: Operated, tmp_path: Path) -> None:
    prometheus = view(operated.name).runs_prometheus
    synapse = view(operated.name).service(SYNAPSE) is not None
    (first,) = operated.releases()
    synapse_before = operated.container(SYNAPSE)["Id"] if synapse else ""
    before = operated.images()
    assert operated.route(NEW_ROUTE)["status"] != 200
    if prometheus:
        assert operated.rule_for(RULE) == {120.0}
    # The change: new manifests rendered and synced, and a new build of one of our services (its context
    # is the operator's), so the release after it runs a different image.
    sync(changed_render(tmp_path, operated.name), operated.folder)
    populate_builds(operated.folder, operated.model())
    rebuilt = rebuilt_service(operated)

    proc = operated.script("deploy.sh", "--insecure")
    assert proc.returncode == 0, log_of(proc)
    second = operated.current()
    assert operated.releases() == [first, second]
    assert operated.record(second, "previous") == first
    served = operated.route(NEW_ROUTE)
    assert served["status"] == 200, served
    seen = json.loads(served["body"])
    assert (seen["service"], seen["port"], seen["path"]) == (NEW_SERVICE, NEW_PORT, "/items/1")
    if prometheus:
        assert operated.wait_rule(RULE, 180.0) == {180.0}
    changed = operated.images()
    assert changed[rebuilt] != before[rebuilt]
    assert f"ok   200 /api/{NEW_ROUTE}/health" in proc.stderr
    assert_dev_override(operated)
    if synapse:  # Compose hashes no inline config: the config-hash label is what recreates Synapse
        synapse_changed = operated.container(SYNAPSE)["Id"]
        assert synapse_changed != synapse_before, "Synapse kept running on its old homeserver.yaml"
        assert synapse_metrics(operated, NEW_METRICS_PORT) == 200

    back = operated.script("rollback.sh", "--yes")
    assert back.returncode == 0, log_of(back)
    assert operated.current() == first
    assert operated.record(second, "status") == f"rolled back to {first}"
    gone = operated.route(NEW_ROUTE)
    assert gone["status"] != 200 and NEW_SERVICE not in gone.get("body", ""), gone
    if prometheus:
        assert operated.wait_rule(RULE, 120.0) == {120.0}
    assert operated.images() == before  # the same services, each on the image release `first` ran
    assert_dev_override(operated)
    if synapse:
        assert operated.container(SYNAPSE)["Id"] != synapse_changed, "Synapse kept the changed homeserver.yaml"
        assert synapse_metrics(operated, OLD_METRICS_PORT) == 200
    assert NEW_ROUTE not in (operated.folder / "infra" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    left = operated.docker("ps", "-aq", "--filter", f"label=com.docker.compose.service={NEW_SERVICE}")
    assert left.returncode == 0 and not left.stdout.strip(), f"{NEW_SERVICE} outlived the rollback: {left.stdout}"


def test_two_deploys_at_once_one_refuses_on_the_lock(operated: Operated) -> None:
    earlier = operated.releases()
    running = operated.current()
    both = [operated.start_script("deploy.sh", "--insecure") for _ in range(2)]
    results = []
    for proc in both:
        out, err = proc.communicate(timeout=DEPLOY_TIMEOUT)
        results.append((proc.returncode, out, err))
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, _, err in results if code == 1)
    assert LOCK_MESSAGE in refused and ".locks/deploy.lock" in refused, refused
    assert "step 1/" not in refused  # refused before touching anything
    new = [r for r in operated.releases() if r not in earlier]
    assert len(new) == 1, (earlier, operated.releases())
    assert operated.current() == new[0]
    assert operated.record(new[0], "status") == "deployed"
    assert operated.record(new[0], "previous") == running
    health = operated.script("health-check.sh", timeout=300)
    assert health.returncode == 0, log_of(health)
