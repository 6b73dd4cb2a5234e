"""The Swarm target: output/swarm/stack.yml is what `docker stack config` accepts and keeps the standard's rules."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES, ROOT, invoke, require_tool
from tests.regen_golden import render_fleet

GOLDEN = ROOT / "tests" / "golden"
STACKS = {
    "shipped": ROOT / "output" / "swarm" / "stack.yml",
    "multi": GOLDEN / "multi" / "swarm" / "stack.yml",
    "monitoring": GOLDEN / "monitoring" / "swarm" / "stack.yml",
}
# Keys `docker stack config` rejects, and keys it accepts while `docker stack deploy` ignores them.
REJECTED = ("name", "develop")
IGNORED = ("build", "container_name", "restart", "security_opt", "depends_on", "links", "network_mode")


@functools.cache
def docker_with_stack_config() -> str | None:
    """A docker CLI that has `stack config` (CLI 20.10 of Debian does not)."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "stack", "config", "--help"], capture_output=True, timeout=30, check=False)
    return docker if probe.returncode == 0 else None


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", sorted(STACKS))
def test_docker_stack_config_accepts_the_stack(name: str) -> None:
    docker = docker_with_stack_config()
    require_tool("docker CLI with `stack config`", docker is not None)
    assert docker is not None
    result = subprocess.run([docker, "stack", "config", "-c", str(STACKS[name])],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no "Ignoring unsupported options" either
    normalised = yaml.safe_load(result.stdout)
    assert sorted(normalised["services"]) == sorted(load(STACKS[name])["services"])


def test_docker_stack_config_rejects_what_the_stack_avoids(tmp_path: Path) -> None:
    """The check is real: the same tool refuses a stack file with a top-level name."""
    docker = docker_with_stack_config()
    require_tool("docker CLI with `stack config`", docker is not None)
    assert docker is not None
    bad = tmp_path / "stack.yml"
    bad.write_text("name: x\n" + STACKS["multi"].read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run([docker, "stack", "config", "-c", str(bad)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0


@pytest.mark.parametrize("name", sorted(STACKS))
def test_stack_keeps_no_compose_only_keys(name: str) -> None:
    stack = load(STACKS[name])
    assert not set(stack) & set(REJECTED)
    for key, svc in stack["services"].items():
        assert not set(svc) & set(IGNORED), key


@functools.cache
def _probeless() -> frozenset[str]:
    fleets = [ROOT / "nodes" / "fleet.yaml", *sorted((FIXTURES / "fleets").glob("*/nodes/fleet.yaml"))]
    return frozenset(name for f in fleets
                     for name, svc in (yaml.safe_load(f.read_text(encoding="utf-8"))["services"] or {}).items()
                     if svc.get("health", {}).get("probe") is False)


@pytest.mark.parametrize("name", sorted(STACKS))
def test_every_service_is_placed_health_gated_and_rolls_back(name: str) -> None:
    stack = load(STACKS[name])
    for key, svc in stack["services"].items():
        node = svc["labels"][next(k for k in svc["labels"] if k.endswith(".node"))]
        deploy = svc["deploy"]
        assert deploy["placement"]["constraints"] == [f"node.labels.{_project(stack)}.node == {node}"], key
        # An image with no probe binary (health.probe: false) keeps Compose's "no healthcheck"; Swarm then
        # counts the task healthy once it runs, and Prometheus' up is the check.
        expected = "NONE" if key.split("-", 1)[1] in _probeless() else "CMD"
        assert svc["healthcheck"]["test"][0] == expected, key
        assert deploy["endpoint_mode"] == "dnsrr", key  # names resolve to the tasks, as under Compose
        assert deploy["update_config"]["failure_action"] == "rollback", key
        assert deploy["rollback_config"]["failure_action"] == "pause", key
        assert {"limits", "reservations"} <= set(deploy["resources"]), key
        assert deploy["labels"] == svc["labels"], key
        named = [v for v in svc.get("volumes", []) if isinstance(v, str) and not v.startswith("/")]
        if named or "ports" in svc:  # two tasks cannot share a data volume or host ports
            assert deploy["update_config"]["order"] == "stop-first", key


def _project(stack: dict[str, Any]) -> str:
    return next(iter(stack["networks"].values()))["name"].split("_")[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(STACKS))
def test_only_the_gateway_publishes_and_in_host_mode(name: str) -> None:
    stack = load(STACKS[name])
    published = {key: svc["ports"] for key, svc in stack["services"].items() if "ports" in svc}
    assert published and all(key.endswith("-gateway-nginx") for key in published)
    for ports in published.values():
        assert all(p["mode"] == "host" and p["target"] == p["published"] for p in ports)


@pytest.mark.parametrize("name", sorted(STACKS))
def test_configs_are_named_by_the_content_they_point_at(name: str) -> None:
    path = STACKS[name]
    configs = load(path)["configs"]
    assert configs
    for key, config in configs.items():
        text = (path.parent / config["file"]).read_bytes()
        assert key == config["name"] and key.endswith("_" + hashlib.sha256(text).hexdigest()[:12]), key


@pytest.mark.parametrize("name", sorted(STACKS))
def test_secrets_are_external_and_values_never_in_the_stack(name: str) -> None:
    stack = load(STACKS[name])
    assert all(s == {"name": s["name"], "external": True} for s in stack["secrets"].values())
    for key, svc in stack["services"].items():
        for var, value in svc.get("environment", {}).items():
            if var.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), (key, var)
        for ref in svc.get("secrets", []):
            assert ref["source"] in stack["secrets"], (key, ref)


def test_shipped_stack_maps_postgres_password_to_its_file() -> None:
    svc = load(STACKS["shipped"])["services"]["node1-postgres"]
    assert "POSTGRES_PASSWORD" not in svc["environment"]
    assert svc["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert svc["volumes"] == ["node1-postgres_data:/var/lib/postgresql/data", {"type": "tmpfs", "target": "/tmp"},
                              {"type": "tmpfs", "target": "/var/run/postgresql"}]
    assert load(STACKS["shipped"])["volumes"]["node1-postgres_data"] == {"name": "postgres_data"}


def test_overlay_network_per_node_with_the_compose_names_as_aliases() -> None:
    stack = load(STACKS["multi"])
    assert stack["networks"] == {"alpha_net": {"name": "multi_alpha_net", "driver": "overlay"},
                                 "beta_net": {"name": "multi_beta_net", "driver": "overlay"}}
    assert stack["services"]["beta-search-service"]["networks"] == {"beta_net": {"aliases": ["search-service"]}}


def test_manifest_replicas_and_resources_reach_the_stack() -> None:
    deploy = load(STACKS["multi"])["services"]["beta-search-service"]["deploy"]
    assert deploy["replicas"] == 3
    assert deploy["resources"] == {"limits": {"cpus": "2", "memory": "1G", "pids": 512},
                                   "reservations": {"cpus": "0.5", "memory": "256M"}}


def test_the_compose_hardening_and_limits_reach_the_stack() -> None:
    """One source for both targets: what the compose file confines, the stack confines the same way."""
    compose = load(ROOT / "output" / "node1" / "docker-compose.all.yml")["services"]
    stack = load(STACKS["shipped"])["services"]
    for name, c in compose.items():
        s = stack[f"node1-{name}"]
        assert (s["cap_drop"], s.get("cap_add"), s.get("user")) == (c["cap_drop"], c.get("cap_add"), c.get("user"))
        assert s["read_only"] is True or c.get("read_only") is not True, name  # never looser than Compose
        tmpfs = [v["target"] for v in s.get("volumes", []) if isinstance(v, dict) and v["type"] == "tmpfs"]
        assert tmpfs == c.get("tmpfs", []), name
        hosts = [v for v in s.get("volumes", []) if isinstance(v, str) and v.startswith("/")]
        assert hosts == [v for v in c.get("volumes", []) if v.startswith("/")], name  # the host's /, read-only
        limits, mine = c["deploy"]["resources"]["limits"], s["deploy"]["resources"]["limits"]
        assert (mine["cpus"], mine["memory"].lower(), mine["pids"]) == (limits["cpus"], limits["memory"],
                                                                        limits["pids"]), name


def test_secret_files_are_readable_by_the_service_user_only_when_it_is_known() -> None:
    stack = load(STACKS["shipped"])["services"]
    (db_url,) = stack["node1-agents-service"]["secrets"]
    assert (db_url["uid"], db_url["gid"], db_url["mode"]) == ("10001", "10001", 0o400)
    (scrape,) = stack["node1-prometheus"]["secrets"]  # the image runs as its own user: Swarm's default mode
    assert "uid" not in scrape and scrape["mode"] == 0o444
    tls = {x["target"]: x["mode"] for x in stack["node2-gateway-nginx"]["secrets"]}
    assert tls["/etc/nginx/certs/privkey.pem"] == 0o400


def _copy_fleet(tmp_path: Path, name: str) -> Path:
    shutil.copytree(FIXTURES / "fleets" / name, tmp_path / name)
    return tmp_path / name


def test_changed_nginx_config_is_a_new_config_name(tmp_path: Path) -> None:
    ws = _copy_fleet(tmp_path, "multi")
    before = render_fleet("multi")["swarm/stack.yml"]
    fleet = ws / "nodes" / "fleet.yaml"
    fleet.write_text(fleet.read_text(encoding="utf-8").replace("rate: 5r/s", "rate: 7r/s"), encoding="utf-8")
    assert invoke("-C", str(ws), "render", "--all").code == 0
    after = (ws / "output" / "swarm" / "stack.yml").read_text(encoding="utf-8")
    old, new = set(load_text(before)["configs"]), set(load_text(after)["configs"])
    assert old != new and len(old) == len(new)
    assert all("nginx.conf" in k for k in old ^ new)


def load_text(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_a_service_swarm_cannot_build_is_a_located_error_and_nothing_is_written(tmp_path: Path) -> None:
    ws = _copy_fleet(tmp_path, "multi")
    fleet = ws / "nodes" / "fleet.yaml"
    image = "    cluster: {image: registry.multi.example/admin-ui:0.9.0}\n"
    text = fleet.read_text(encoding="utf-8").replace(image, "")
    fleet.write_text(text.replace("targets: [swarm, kubernetes]", "targets: []"), encoding="utf-8")
    assert invoke("-C", str(ws), "render", "--all").code == 0  # Compose builds it: fine without the target
    shutil.rmtree(ws / "output")
    result = invoke("-C", str(ws), "render", "--target", "swarm")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row == "    build: services/admin-ui")
    assert result.code == 1
    assert f"nodes/fleet.yaml:{line}:12: error[cluster-image] admin-ui: Swarm cannot build" in result.stderr
    assert not (ws / "output").exists()


def test_check_and_diff_cover_the_swarm_output(tmp_path: Path) -> None:
    ws = _copy_fleet(tmp_path, "multi")
    assert invoke("-C", str(ws), "render", "--all").code == 0
    assert invoke("-C", str(ws), "check").stdout == "ok: output/ is current for alpha, beta, kubernetes, swarm\n"
    stack = ws / "output" / "swarm" / "stack.yml"
    stack.write_text(stack.read_text(encoding="utf-8").replace("replicas: 3", "replicas: 4"), encoding="utf-8")
    checked = invoke("-C", str(ws), "check")
    assert checked.code == 1 and "swarm/stack.yml: stale" in checked.stderr
    diffed = invoke("-C", str(ws), "diff", "--all")
    assert diffed.code == 1 and "-      replicas: 4\n+      replicas: 3\n" in diffed.stdout
    refused = invoke("-C", str(ws), "render", "--all")  # a hand edit is not clobbered without --force
    assert refused.code == 1 and "replicas: 4" in stack.read_text(encoding="utf-8")
    assert invoke("-C", str(ws), "render", "--all", "--force").code == 0
    assert invoke("-C", str(ws), "check").code == 0


def test_render_target_without_listing_it_and_check_keeps_covering_it(tmp_path: Path) -> None:
    ws = _copy_fleet(tmp_path, "multi")
    fleet = ws / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    fleet.write_text(text.replace("targets: [swarm, kubernetes]", "targets: []"), encoding="utf-8")
    assert invoke("-C", str(ws), "render", "--all").code == 0
    assert not (ws / "output" / "swarm").exists()
    assert invoke("-C", str(ws), "render", "--target", "swarm").code == 0
    assert (ws / "output" / "swarm" / "stack.yml").is_file()
    assert invoke("-C", str(ws), "render", "--all").code == 0  # not removed as an orphan
    assert invoke("-C", str(ws), "check").stdout == "ok: output/ is current for alpha, beta, swarm\n"
    assert invoke("-C", str(ws), "render", "alpha", "--target", "swarm").code == 2
