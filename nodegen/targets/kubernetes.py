"""output/kubernetes/<node>.yaml: each node as a namespace of Kubernetes objects, routed by the Gateway API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from nodegen import jsontext
from nodegen.checksums import Files
from nodegen.targets.swarm import _digest, seconds, secret_file_var
from nodegen.templating import header_lines
from nodegen.view.resolve import FleetView, NodeView, Svc

NAME = "kubernetes"
GATEWAY_CLASS = "nginx"  # NGINX Gateway Fabric: its RateLimitPolicy carries the standard's rate limit
WS_TIMEOUT = "3600s"  # as the Compose gateway's proxy_read_timeout on websocket locations
Obj = dict[str, Any]


def namespace(view: NodeView) -> str:
    return f"{view.project}-{view.id}"


def _labels(view: NodeView, s: Svc) -> dict[str, str]:
    return {"app.kubernetes.io/name": s.name, "app.kubernetes.io/part-of": view.project, **dict(s.labels)}


def _selector(s: Svc) -> dict[str, str]:
    return {"app.kubernetes.io/name": s.name}


def _meta(view: NodeView, name: str, labels: Mapping[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace(view)}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _probe(view: NodeView, s: Svc) -> Obj:
    hc = view.standard.healthcheck
    timing = {"periodSeconds": int(seconds(hc.interval)), "timeoutSeconds": int(seconds(hc.timeout)),
              "failureThreshold": hc.retries}
    if s.protocol == "tcp" or s.health_test[1:2] not in (("curl",), ("wget",)):
        return {"exec": {"command": list(s.health_test[1:])}, **timing}
    return {"httpGet": {"path": s.health_path, "port": s.health_port}, **timing}


def _start(view: NodeView) -> int:
    return int(seconds(view.standard.healthcheck.start_period))


def secret_name(view: NodeView) -> str:
    """The namespace's one Secret, created by the operator: one key per secret variable, in lowercase."""
    return f"{view.project}-secrets"


def _env(s: Svc) -> list[Obj]:
    """Literal values; a secret is a file under /run/secrets named by <NAME>_FILE, as on Swarm."""
    out: list[Obj] = []
    for e in s.environment:
        if e.secret:
            out.append({"name": secret_file_var(e.name), "value": f"/run/secrets/{e.secret_name}"})
        else:
            out.append({"name": e.name, "value": e.value if e.value is not None else (e.default or "")})
    return out


def _secrets(s: Svc) -> list[str]:
    return [e.secret_name for e in s.env if e.secret]


def _hardening(s: Svc) -> Obj:
    """The Compose hardening, from the same service: every capability dropped but those the manifest keeps,
    its user, and a read-only root (secrets are files here, so no service needs a writable one for them)."""
    caps: Obj = {"drop": ["ALL"]}
    if s.cap_add:
        caps["add"] = list(s.cap_add)
    ctx: Obj = {"allowPrivilegeEscalation": False, "capabilities": caps}
    if s.read_only:
        ctx["readOnlyRootFilesystem"] = True
    if s.user:
        uid, _, gid = s.user.partition(":")
        if uid != "0":
            ctx["runAsNonRoot"] = True
        ctx.update(runAsUser=int(uid), runAsGroup=int(gid or uid))
    return ctx


def _tmpfs(s: Svc) -> list[tuple[str, str]]:
    """(volume name, path) of each writable in-memory path (Compose's tmpfs)."""
    return [(f"tmpfs-{i}", path) for i, path in enumerate(s.tmpfs)]


def _mounted_files(s: Svc, files: Files) -> list[tuple[str, str, str]]:
    """(relative path, container path, text) of each generated file below the service's mounts."""
    out = []
    for src, dst in s.mounts:
        out += [(rel, dst + rel[len(src):], files[rel]) for rel in sorted(files)
                if rel == src or rel.startswith(src + "/")]
    return out


def _config_map(view: NodeView, s: Svc, files: Files) -> Obj | None:
    mounted = _mounted_files(s, files)
    if not mounted:
        return None
    data = {f"f{i}": text for i, (_, _, text) in enumerate(mounted)}
    name = f"{s.name}-files-{_digest(json.dumps(data, sort_keys=True))}"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(view, name, _selector(s)),
            "immutable": True, "data": data}


def _container(view: NodeView, s: Svc, files: Files, config: Obj | None) -> Obj:
    c: Obj = {
        "name": s.name,
        "image": s.cluster.image or s.image or "",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "main", "containerPort": s.port, "protocol": "TCP"}],
        "readinessProbe": _probe(view, s),
        "livenessProbe": {**_probe(view, s), "initialDelaySeconds": _start(view)},
        "resources": {
            # No per-container process limit in Kubernetes: `limits.pids` is the kubelet's podPidsLimit.
            "limits": {"cpu": s.cluster_cpus, "memory": s.cluster_memory + "i"},
            "requests": {"cpu": s.cluster.reserve_cpus, "memory": s.cluster.reserve_memory + "i"},
        },
        "securityContext": _hardening(s),
    }
    if s.metrics and s.metrics_port != s.port:
        c["ports"].append({"name": "metrics", "containerPort": s.metrics_port, "protocol": "TCP"})
    if s.command:
        c["args"] = list(s.command)
    env = _env(s)
    if env:
        c["env"] = env
    mounts: list[Obj] = []
    if s.volume:
        mounts.append({"name": "data", "mountPath": s.data})
    if config is not None:
        for i, (_, target, _) in enumerate(_mounted_files(s, files)):
            mounts.append({"name": "files", "mountPath": target, "subPath": f"f{i}", "readOnly": True})
    if _secrets(s):
        mounts.append({"name": "secrets", "mountPath": "/run/secrets", "readOnly": True})
    mounts += [{"name": name, "mountPath": path} for name, path in _tmpfs(s)]
    if mounts:
        c["volumeMounts"] = mounts
    return c


def _pod(view: NodeView, s: Svc, files: Files, config: Obj | None) -> Obj:
    annotations = {}
    if s.metrics:
        annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(s.metrics_port),
                       "prometheus.io/path": s.metrics_path}
    spec: Obj = {"automountServiceAccountToken": False, "containers": [_container(view, s, files, config)],
                 "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}
    volumes: list[Obj] = []
    if config is not None:
        volumes.append({"name": "files", "configMap": {"name": config["metadata"]["name"]}})
    if _secrets(s):
        volumes.append({"name": "secrets", "secret": {
            "secretName": secret_name(view), "defaultMode": 0o400,
            "items": [{"key": n, "path": n} for n in _secrets(s)]}})
    volumes += [{"name": name, "emptyDir": {"medium": "Memory"}} for name, _ in _tmpfs(s)]
    if volumes:
        spec["volumes"] = volumes
    meta: Obj = {"labels": _labels(view, s)}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def _workload(view: NodeView, s: Svc, files: Files, config: Obj | None) -> Obj:
    spec: Obj = {"replicas": s.cluster.replicas, "selector": {"matchLabels": _selector(s)},
                 "template": _pod(view, s, files, config)}
    if s.volume:  # PostgreSQL and every other service with a data volume keep it per pod
        spec["serviceName"] = s.name
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}]
        kind = "StatefulSet"
    else:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        kind = "Deployment"
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": _meta(view, s.name, _labels(view, s)), "spec": spec}


def _service(view: NodeView, s: Svc) -> Obj:
    ports = [{"name": "main", "port": s.port, "targetPort": s.port, "protocol": "TCP"}]
    if s.metrics and s.metrics_port != s.port:
        ports.append({"name": "metrics", "port": s.metrics_port, "targetPort": s.metrics_port, "protocol": "TCP"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(view, s.name, _labels(view, s)),
            "spec": {"type": "ClusterIP", "selector": _selector(s), "ports": ports}}


def _pdb(view: NodeView, s: Svc) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(view, s.name),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(s)}}}


def _hpa(view: NodeView, s: Svc) -> Obj | None:
    top = s.cluster.max_replicas
    if top is None or top <= s.cluster.replicas:
        return None
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta(view, s.name),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": s.name},
                     "minReplicas": s.cluster.replicas, "maxReplicas": top,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}


def _policy(view: NodeView, name: str, selector: Mapping[str, str], sources: list[Obj], ports: list[int]) -> Obj:
    rule: Obj = {"ports": [{"protocol": "TCP", "port": p} for p in ports]}
    if sources:
        rule["from"] = sources
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(view, name),
            "spec": {"podSelector": {"matchLabels": dict(selector)}, "policyTypes": ["Ingress"],
                     "ingress": [rule]}}


def _network_policies(view: NodeView, gateway: str) -> Iterator[Obj]:
    """Deny by default; then each service admits its dependants, the gateway (routed) and Prometheus (metrics)."""
    yield {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(view, "default-deny"),
           "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    # Only the gateway is reached from outside the namespace, on its two ports.
    yield _policy(view, "gateway-from-anywhere", {"gateway.networking.k8s.io/gateway-name": gateway}, [],
                  [view.gateway.http_port, view.gateway.https_port])
    runs = [s for s in view.services if not s.gateway]
    for s in runs:
        sources = [{"podSelector": {"matchLabels": _selector(d)}} for d in runs if s.name in d.depends]
        if s.route is not None:
            sources.append({"podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": gateway}}})
        if sources:
            yield _policy(view, f"{s.name}-from-dependants", _selector(s), sources, [s.port])
        if s.metrics and view.runs_prometheus and s.name != "prometheus":
            prom = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
            yield _policy(view, f"{s.name}-from-prometheus", _selector(s), prom, [s.metrics_port])


def _gateway(view: NodeView, gateway: str) -> Obj:
    gw = view.gateway
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": _meta(view, gateway),
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [
                {"name": "http", "protocol": "HTTP", "port": gw.http_port, "hostname": view.domain},
                {"name": "https", "protocol": "HTTPS", "port": gw.https_port, "hostname": view.domain,
                 "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": f"{view.id}-tls"}]}},
            ]}}


def _route(view: NodeView, s: Svc, gateway: str) -> Obj:
    backend = [{"name": s.name, "port": s.port}]
    rules: list[Obj] = [{
        "matches": [{"path": {"type": "PathPrefix", "value": f"/api/{s.route}/"}}],
        "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch",
                                                                   "replacePrefixMatch": "/"}}}],
        "backendRefs": backend,
    }]
    if s.websocket:
        rules.append({
            "matches": [{"path": {"type": "PathPrefix", "value": f"/ws/{s.route}/{ch}"}} for ch in s.websocket],
            "timeouts": {"request": WS_TIMEOUT, "backendRequest": WS_TIMEOUT},
            "backendRefs": backend,
        })
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": _meta(view, s.name),
            "spec": {"parentRefs": [{"name": gateway, "sectionName": "https"}], "hostnames": [view.domain],
                     "rules": rules}}


def _rate_limit(view: NodeView, routes: list[Obj]) -> Obj:
    rl = view.standard.rate_limit
    return {"apiVersion": "gateway.nginx.org/v1alpha1", "kind": "RateLimitPolicy", "metadata": _meta(view, "api"),
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                     "name": r["metadata"]["name"]} for r in routes],
                     "rateLimit": {"rejectCode": 429, "local": {"rules": [{
                         "key": "$binary_remote_addr", "rate": rl.rate, "burst": rl.burst, "noDelay": True,
                         "zoneSize": rl.zone_size}]}}}}


def objects(view: NodeView, files: Files) -> Iterator[Obj]:
    gateway = f"{view.id}-gateway"
    yield {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace(view), "labels": {
        "pod-security.kubernetes.io/enforce": "baseline", f"com.{view.project}.node": view.id}}}
    for s in view.services:
        if s.gateway:
            continue  # the Gateway API implementation is the gateway
        config = _config_map(view, s, files)
        if config is not None:
            yield config
        yield _workload(view, s, files, config)
        yield _service(view, s)
        yield _pdb(view, s)
        hpa = _hpa(view, s)
        if hpa is not None:
            yield hpa
    yield from _network_policies(view, gateway)
    yield _gateway(view, gateway)
    routes = [_route(view, s, gateway) for s in view.routed]
    yield from routes
    if routes:
        yield _rate_limit(view, routes)


def _document(obj: Obj) -> str:
    # JSON is YAML 1.2: one object per line keeps each document diffable and free of YAML's implicit types.
    return "---\n" + jsontext.dumps(obj, 1) + "\n"


def render(fleet: FleetView, node_files: Mapping[str, Files]) -> Files:
    out: Files = {}
    for view in fleet.nodes:
        head = header_lines(view.sources, f"nodegen render --target {NAME}")
        out[f"{view.id}.yaml"] = head + "".join(_document(o) for o in objects(view, node_files[view.id]))
    return out
