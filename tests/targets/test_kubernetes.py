"""The Kubernetes target, validated offline: kubernetes-validate --strict, the vendored CRD schemas, checkov."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import FIXTURES, ROOT, invoke, require_tool

K8S_VERSION = "1.34.0"  # the Kubernetes release the manifests are validated against
CRDS = FIXTURES / "crds"
FOLDERS = {
    "shipped": ROOT / "output" / "kubernetes",
    "multi": ROOT / "tests" / "golden" / "multi" / "kubernetes",
    "monitoring": ROOT / "tests" / "golden" / "monitoring" / "kubernetes",
}
CUSTOM = {("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
          ("gateway.nginx.org/v1alpha1", "RateLimitPolicy")}
# checkov findings accepted everywhere: tags are pinned (a digest is not known when the manifests are
# rendered), and with pinned tags IfNotPresent is deliberate.
SKIPPED = ("CKV_K8S_43", "CKV_K8S_15")
# Third-party images (PostgreSQL, Redis, NATS, Prometheus, Grafana, …) keep the user their image defines;
# only images we build are made to run as UID 10001 on a read-only root without capabilities.
THIRD_PARTY_ONLY = {"CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_37", "CKV_K8S_40"}
# A capability the manifest keeps (`hardening.cap_add`: PostgreSQL's entrypoint chowns its data and drops
# to its user) is the Compose file's too: accepted where the container adds it, and nowhere else.
ADDED_CAPABILITY = "CKV_K8S_25"


def files(name: str) -> list[Path]:
    found = sorted(FOLDERS[name].glob("*.yaml"))
    assert found
    return found


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def all_documents(name: str) -> list[dict[str, Any]]:
    return [d for path in files(name) for d in documents(path)]


def kubernetes_validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    require_tool("kubernetes-validate", Path(tool).is_file())
    return subprocess.run([tool, "--strict", "-k", K8S_VERSION, "--quiet", *map(str, paths)],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_kubernetes_validate_strict_accepts_every_core_object(name: str) -> None:
    result = kubernetes_validate(*files(name))
    assert result.returncode == 0, result.stdout + result.stderr
    unknown = [line for line in result.stdout.splitlines() if "Couldn't find schema" in line]
    # Only the custom resources are unknown to it; they are checked against the vendored CRDs below.
    assert all(any(f"kind {kind} with api version {api} " in line for api, kind in CUSTOM) for line in unknown)
    assert "ERROR" not in result.stdout


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path: Path) -> None:
    doc = next(d for d in all_documents("multi") if d["kind"] == "Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    assert kubernetes_validate(bad).returncode != 0


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.rglob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}
            out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return out


def crd_errors(doc: dict[str, Any]) -> list[str]:
    schema = crd_schemas()[(doc["apiVersion"], doc["kind"])]
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]


def test_vendored_crds_carry_their_licence() -> None:
    assert set(crd_schemas()) >= CUSTOM
    for folder in ("gateway-api", "nginx-gateway-fabric"):
        assert "Apache License" in (CRDS / folder / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_custom_resources_match_the_vendored_crds(name: str) -> None:
    custom = [d for d in all_documents(name) if (d["apiVersion"], d["kind"]) in CUSTOM]
    assert {d["kind"] for d in custom} == {kind for _, kind in CUSTOM}
    assert {d["metadata"]["name"]: crd_errors(d) for d in custom} == {d["metadata"]["name"]: [] for d in custom}


def test_crd_check_catches_a_wrong_field() -> None:
    policy = copy.deepcopy(next(d for d in all_documents("multi") if d["kind"] == "RateLimitPolicy"))
    policy["spec"]["rateLimit"]["local"]["rules"][0]["rate"] = "10 per second"
    route = copy.deepcopy(next(d for d in all_documents("multi") if d["kind"] == "HTTPRoute"))
    route["spec"]["rules"][0]["timeout"] = "1s"
    assert crd_errors(policy) and crd_errors(route)


def _checkov(folder: Path) -> list[dict[str, Any]]:
    tool = shutil.which("checkov") or str(Path(sys.executable).parent / "checkov")
    require_tool("checkov", Path(tool).is_file())
    # --skip-download keeps it offline; a network namespace of its own makes sure of it.
    unshare = shutil.which("unshare")
    prefix = [unshare, "--net"] if unshare and subprocess.run(
        [unshare, "--net", "true"], capture_output=True, timeout=30, check=False).returncode == 0 else []
    result = subprocess.run([*prefix, tool, "-d", str(folder), "--framework", "kubernetes", "--skip-download",
                             "--skip-check", ",".join(SKIPPED), "-o", "json", "--quiet"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    return [f for r in reports for f in r.get("results", {}).get("failed_checks", [])]


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_checkov_finds_nothing_beyond_the_documented_third_party_exceptions(name: str) -> None:
    built = {d["metadata"]["name"] for d in all_documents(name) if d["kind"] in ("Deployment", "StatefulSet")
             and d["spec"]["template"]["spec"]["containers"][0]["securityContext"].get("runAsNonRoot")}
    adding = {d["metadata"]["name"] for d in all_documents(name) if d["kind"] in ("Deployment", "StatefulSet")
              and d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"].get("add")}
    unexpected = []
    for finding in _checkov(FOLDERS[name]):
        resource = finding["resource"].split(".")[-1]
        if finding["check_id"] == ADDED_CAPABILITY and resource in adding:
            continue
        if finding["check_id"] not in THIRD_PARTY_ONLY or resource in built:
            unexpected.append((finding["check_id"], finding["resource"]))
    assert unexpected == []


# --- what the objects say ---------------------------------------------------------------------------

def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_one_namespace_per_node_and_no_ingress_objects() -> None:
    for path in files("shipped"):
        docs = documents(path)
        (ns,) = by_kind(docs, "Namespace")
        assert ns == f"daarion-{path.stem}"
        assert {d["metadata"].get("namespace", ns) for d in docs} == {ns}
        assert "Ingress" not in {d["kind"] for d in docs}


def test_postgres_is_a_statefulset_with_probes_and_its_password_as_a_file() -> None:
    docs = documents(FOLDERS["shipped"] / "node1.yaml")
    pg = by_kind(docs, "StatefulSet")["postgres"]["spec"]
    container = pg["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert container["livenessProbe"]["initialDelaySeconds"] == 40
    env = {e["name"]: e for e in container["env"]}
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"]["value"] == "/run/secrets/postgres_password"
    assert pg["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_every_workload_has_probes_resources_and_a_budget(name: str) -> None:
    docs = all_documents(name)
    budgets = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "PodDisruptionBudget"}
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert {"readinessProbe", "livenessProbe", "resources"} <= set(c), d["metadata"]["name"]
        assert (d["metadata"]["namespace"], d["metadata"]["name"]) in budgets
        assert all("valueFrom" not in e for e in c.get("env", []))  # no secret value in the environment


def test_network_policies_deny_by_default_and_admit_only_dependants() -> None:
    docs = documents(FOLDERS["shipped"] / "node1.yaml")
    policies = by_kind(docs, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    open_to_all = [n for n, p in policies.items() if any("from" not in r for r in p["spec"].get("ingress", []))]
    assert open_to_all == ["gateway-from-anywhere"]
    sources = [s["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
               for s in policies["postgres-from-dependants"]["spec"]["ingress"][0]["from"]]
    assert sources == ["agents-service", "city-service", "microdao-service", "postgres-exporter", "secondme-service"]


def test_routes_rate_limit_and_websocket_timeouts() -> None:
    docs = documents(FOLDERS["multi"] / "alpha.yaml")
    route = by_kind(docs, "HTTPRoute")["chat-service"]["spec"]
    assert route["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/chat/"}}]
    ws = route["rules"][1]
    assert [m["path"]["value"] for m in ws["matches"]] == ["/ws/chat/presence", "/ws/chat/rooms"]
    assert ws["timeouts"] == {"request": "3600s", "backendRequest": "3600s"}
    (policy,) = by_kind(docs, "RateLimitPolicy").values()
    rule = policy["spec"]["rateLimit"]["local"]["rules"][0]
    assert (rule["rate"], rule["burst"], rule["key"]) == ("5r/s", 10, "$binary_remote_addr")  # the fleet's standard
    assert policy["spec"]["rateLimit"]["rejectCode"] == 429
    assert [t["name"] for t in policy["spec"]["targetRefs"]] == ["chat-service"]


def test_scalable_service_gets_an_autoscaler() -> None:
    docs = documents(FOLDERS["multi"] / "beta.yaml")
    hpa = by_kind(docs, "HorizontalPodAutoscaler")
    assert list(hpa) == ["search-service"]
    assert (hpa["search-service"]["spec"]["minReplicas"], hpa["search-service"]["spec"]["maxReplicas"]) == (3, 6)


def test_prometheus_scrape_annotations_follow_the_metrics_contract() -> None:
    docs = documents(FOLDERS["monitoring"] / "watch.yaml")
    pod = by_kind(docs, "Deployment")["swapper"]["spec"]["template"]["metadata"]
    assert pod["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8891",
                                  "prometheus.io/path": "/metrics"}


def test_the_compose_hardening_and_limits_reach_the_pods() -> None:
    """One source for both: the capabilities, user, read-only root, tmpfs and limits of the compose file."""
    compose = yaml.safe_load((ROOT / "output" / "node1" / "docker-compose.all.yml").read_text(encoding="utf-8"))
    docs = documents(FOLDERS["shipped"] / "node1.yaml")
    workloads = {**by_kind(docs, "Deployment"), **by_kind(docs, "StatefulSet")}
    for name, c in compose["services"].items():
        if name not in workloads:  # the nginx gateway is the Gateway API's here
            assert "ports" in c, name
            continue
        pod = workloads[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ctx = container["securityContext"]
        assert ctx["capabilities"] == {"drop": ["ALL"], **({"add": c["cap_add"]} if "cap_add" in c else {})}, name
        assert ctx["allowPrivilegeEscalation"] is False
        if "user" in c:
            uid, _, gid = c["user"].partition(":")
            assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["runAsNonRoot"]) == (int(uid), int(gid or uid), True)
        assert ctx.get("readOnlyRootFilesystem") is True or c.get("read_only") is not True, name
        memory = {v["name"] for v in pod.get("volumes", []) if v.get("emptyDir") == {"medium": "Memory"}}
        tmpfs = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in memory]
        assert tmpfs == c.get("tmpfs", []), name
        limits = c["deploy"]["resources"]["limits"]
        assert container["resources"]["limits"] == {"cpu": limits["cpus"],
                                                    "memory": limits["memory"].upper() + "i"}, name


def test_check_and_diff_cover_the_kubernetes_output(tmp_path: Path) -> None:
    """As for a node folder: an edit is stale and shown by diff, a deleted file is missing, render keeps edits."""
    ws = tmp_path / "multi"
    shutil.copytree(FIXTURES / "fleets" / "multi", ws,
                    ignore=shutil.ignore_patterns("output", ".nodegen-cache"))
    assert invoke("-C", str(ws), "render", "--all").code == 0
    beta = ws / "output" / "kubernetes" / "beta.yaml"
    beta.write_text(beta.read_text(encoding="utf-8").replace('"replicas": 3', '"replicas": 5'), encoding="utf-8")
    (ws / "output" / "kubernetes" / "alpha.yaml").unlink()
    checked = invoke("-C", str(ws), "check")
    assert checked.code == 1
    assert "kubernetes/beta.yaml: stale" in checked.stderr and "kubernetes/alpha.yaml: missing" in checked.stderr
    diffed = invoke("-C", str(ws), "diff", "--all")
    assert diffed.code == 1 and '-  "replicas": 5,\n+  "replicas": 3,\n' in diffed.stdout
    refused = invoke("-C", str(ws), "render", "--all")
    assert refused.code == 1 and '"replicas": 5' in beta.read_text(encoding="utf-8")
    assert "make it there and run nodegen render --target kubernetes;" in refused.stderr  # no nodes/kubernetes.yaml
    assert "nodes/kubernetes.yaml" not in refused.stderr + checked.stderr
    assert invoke("-C", str(ws), "render", "--all", "--force").code == 0
    assert invoke("-C", str(ws), "check").code == 0
