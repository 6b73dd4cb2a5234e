"""What every generated compose file promises: .env agreement, no secret values, the standard's service shape.

Runs on the committed files: every shipped node's output/ and every fixture fleet's golden folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from nodegen.load.yamlio import parse
from nodegen.pipeline import load_fleet
from nodegen.standard import SECRET_NAME, SECRET_VALUE
from nodegen.targets import CLUSTER_TARGETS
from nodegen.targets.envfile import operations_secrets
from nodegen.view.resolve import NodeView
from nodegen.workspace import Workspace
from tests.conftest import ROOT
from tests.regen_golden import FLEETS, GOLDEN, fleet_names

COMPOSE = "docker-compose.all.yml"
ENV = ".env.example"
PLACEHOLDER = "CHANGE_ME"


def _targets() -> list[tuple[str, Path, Path, str]]:
    out = [(f"shipped-{n}", ROOT, ROOT / "output" / n, n) for n in ("node1", "node2", "node3")]
    for name in fleet_names():
        for folder in sorted(p for p in (GOLDEN / name).iterdir() if p.is_dir() and p.name not in CLUSTER_TARGETS):
            out.append((f"{name}-{folder.name}", FLEETS / name, folder, folder.name))
    return out


TARGETS = _targets()
PARAMS = pytest.mark.parametrize(("workspace", "folder", "node"), [t[1:] for t in TARGETS], ids=[t[0] for t in TARGETS])

# ${VAR}, ${VAR:-default}, ${VAR:?message} and bare $VAR; `$$` is compose's escaped literal dollar.
REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?+-][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")
ENV_LINE = re.compile(r"([A-Z_][A-Z0-9_]*)=(.*)")


def references(text: str, *, bare: bool) -> set[str]:
    """Variables a file takes from .env (bare $VAR counts only where the file is interpolated by compose)."""
    found = set()
    for match in REFERENCE.finditer(text.replace("$$", "")):
        if match[1] or bare:
            found.add(match[1] or match[2])
    return found


def env_example(folder: Path) -> dict[str, str]:
    """The .env.example's variables; every line is a comment, blank, or NAME=value, each name once."""
    out: dict[str, str] = {}
    for line in (folder / ENV).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        match = ENV_LINE.fullmatch(line)
        assert match, line
        assert match[1] not in out, f"{match[1]} listed twice"
        out[match[1]] = match[2]
    return out


def compose_model(folder: Path) -> dict[str, Any]:
    doc, problem = parse((folder / COMPOSE).read_text(encoding="utf-8"), COMPOSE)
    assert problem is None and doc is not None, problem
    assert isinstance(doc.data, dict)
    return doc.data


def generated(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


def view_of(workspace: Path, node: str) -> NodeView:
    return load_fleet(Workspace(workspace)).view(node)


# --- .env agreement and secrets -----------------------------------------------------------------------

@PARAMS
def test_compose_and_env_example_agree_both_ways(workspace: Path, folder: Path, node: str) -> None:
    listed = set(env_example(folder))
    used: set[str] = set()
    for rel, text in generated(folder).items():
        if rel == ENV or rel.endswith((".json", ".sh")):  # dashboards' and scripts' own ${...} variables
            continue
        used |= references(text, bare=rel.startswith("docker-compose"))
    for script in sorted((folder / "scripts").glob("*.sh")):  # what the operations scripts read from .env
        used |= set(re.findall(r"env_value ([A-Z_][A-Z0-9_]*)", script.read_text(encoding="utf-8")))
    compose = compose_model(folder)
    used |= {str(s["environment"]) for s in (compose.get("secrets") or {}).values() if "environment" in s}
    assert sorted(used - listed) == [], "referenced but missing from .env.example"
    assert sorted(listed - used) == [], "listed in .env.example but never used"


@PARAMS
def test_secrets_are_placeholders_and_required(workspace: Path, folder: Path, node: str) -> None:
    env = env_example(folder)
    view = view_of(workspace, node)
    secrets = {e.env_name for e in view.secrets}  # a borrowed secret (source:) is its source's line
    assert {name for name, value in env.items() if value == PLACEHOLDER} == secrets | operations_secrets(view)
    compose_text = (folder / COMPOSE).read_text(encoding="utf-8")
    for name in secrets:
        assert f'"${{{name}:?{name} is required; set it in .env}}"' in compose_text, name


@PARAMS
def test_no_secret_value_in_any_generated_file(workspace: Path, folder: Path, node: str) -> None:
    for rel, text in generated(folder).items():
        for pattern, what in SECRET_VALUE:
            assert not pattern.search(text), f"{rel} holds {what}"
    view = view_of(workspace, node)
    for name, svc in compose_model(folder)["services"].items():
        svc_view = next((s for s in view.services if s.name == name), None)
        sources = {e.name: e.env_name for e in svc_view.env} if svc_view is not None else {}
        for var, value in (svc.get("environment") or {}).items():
            if SECRET_NAME.search(var):  # from .env: its own name, or the secret it borrows (source:)
                source = sources.get(var, var)
                assert re.fullmatch(rf"\$\{{{source}:\?[^}}]+\}}", str(value)), f"{name}: {var}={value!r}"


def test_secret_like_values_are_caught_by_the_scan() -> None:
    texts = ["postgres://app:hunter2@db:5432/app", "-----BEGIN OPENSSH PRIVATE KEY-----", "ghp_" + "x" * 36]
    assert all(any(p.search(t) for p, _ in SECRET_VALUE) for t in texts)
    assert references('a: "${A:?x}" b: ${B:-1} c: $C d: $$E f: "$${F}"', bare=True) == {"A", "B", "C"}
    assert references("proxy_pass http://$upstream; ${X}", bare=False) == {"X"}


# --- the shape of every service ------------------------------------------------------------------------

@PARAMS
def test_only_the_gateway_publishes_except_explicit_loopback(workspace: Path, folder: Path, node: str) -> None:
    view = view_of(workspace, node)
    for name, svc in compose_model(folder)["services"].items():
        ports = svc.get("ports", [])
        resolved = view.service(name)
        assert resolved is not None
        if resolved.gateway:
            assert ports == [f"{p}:{p}/tcp" for p in (view.gateway.http_port, view.gateway.https_port)]
            continue
        assert len(ports) == len(resolved.publish), name  # each bind is written in the manifest
        for port in ports:
            assert re.fullmatch(r"(127\.0\.0\.1|\[::1\]):\d+:\d+/tcp", port), (name, port)


@PARAMS
def test_every_service_follows_the_standard(workspace: Path, folder: Path, node: str) -> None:
    view = view_of(workspace, node)
    model = compose_model(folder)
    project, hc = view.project, view.standard.healthcheck
    assert "version" not in model
    assert model["name"] == project
    edge, data = f"{project}_net", f"{project}_data"
    assert list(model["networks"]) in ([edge], [edge, data])
    if data in model["networks"]:
        published = any(s.publish or s.private_for for s in view.services if s.protocol == "tcp")
        assert model["networks"][data].get("internal", False) is not published
    services = model["services"]
    assert sorted(services) == sorted(s.name for s in view.services)
    for name, svc in services.items():
        assert svc["container_name"] == f"{project}-{name}"
        assert svc["restart"] == "unless-stopped"
        resolved = view.service(name)
        assert resolved is not None
        tcp_needs = {n for n in resolved.depends if (d := view.service(n)) is not None and d.protocol == "tcp"}
        if resolved.protocol == "tcp" and not resolved.gateway:
            assert svc["networks"] == [data], name  # never beside the gateway
        else:
            assert svc["networks"] == ([edge, data] if tcp_needs else [edge]), name
        assert svc["cap_drop"] == ["ALL"]
        # Read-only unless the catalog says otherwise (Synapse: Compose writes its configs into the container)
        # or the service reads a secret file, which Compose writes into the container the same way.
        assert svc.get("read_only", False) is resolved.read_only_root, name
        assert resolved.read_only or name == "matrix-synapse", name
        assert resolved.read_only_root is (resolved.read_only and "secrets" not in svc), name
        assert set(svc["deploy"]["resources"]["limits"]) == {"cpus", "memory", "pids"}
        if "build" in svc:
            assert svc["user"] == "10001:10001", name
        check = svc.get("healthcheck")
        if check is None:
            # Only an exporter whose image has no probe binary; Prometheus scrapes it (its `up` is the check).
            resolved = next(s for s in view.services if s.name == name)
            assert resolved.exporter_of is not None and resolved.metrics, name
            assert not any(name in other.depends for other in view.services), name
            continue
        assert check["test"][0] == "CMD" and len(check["test"]) > 1
        assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == (
            hc.interval, hc.timeout, hc.retries, hc.start_period)
        assert svc["logging"]["driver"] == "json-file"
        assert set(svc["logging"]["options"]) == {"max-size", "max-file"}
        assert "no-new-privileges:true" in svc["security_opt"]
        labels = svc["labels"]
        assert {f"com.{project}.{k}" for k in ("service", "tier", "phase", "node")} <= set(labels)
        assert labels[f"com.{project}.node"] == node
        assert ("image" in svc) != ("build" in svc), name
        if "image" in svc:
            image = svc["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
        for dep, condition in (svc.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}
            assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"


@PARAMS
def test_volumes_are_named_after_their_service(workspace: Path, folder: Path, node: str) -> None:
    model = compose_model(folder)
    volumes = model.get("volumes") or {}
    assert all(name.endswith("_data") and spec == {"name": name} for name, spec in volumes.items())
    owners = {v.split(":", 1)[0]: name for name, svc in model["services"].items() for v in svc.get("volumes", [])}
    assert all(owners.get(vol) == vol[: -len("_data")] for vol in volumes), owners
