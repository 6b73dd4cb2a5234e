"""The rendered compose files declare the whole network contract of each service and harden every container."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, invoke

NODES = ("node1", "node2", "node3")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """The shipped fleet rendered into a scratch workspace: node -> parsed docker-compose.all.yml."""
    root = tmp_path_factory.mktemp("hardening")
    (root / "nodes").mkdir()
    for path in (ROOT / "nodes").glob("*.yaml"):
        (root / "nodes" / path.name).write_bytes(path.read_bytes())
    result = invoke("-C", str(root), "render", "--all")
    assert result.code == 0, result.stderr
    return {n: yaml.safe_load((root / "output" / n / "docker-compose.all.yml").read_text()) for n in NODES}


def fleet_catalog() -> dict[str, dict[str, object]]:
    services = yaml.safe_load(Path(ROOT / "nodes" / "fleet.yaml").read_text())["services"]
    assert isinstance(services, dict)
    return services


@pytest.mark.parametrize("node", NODES)
def test_every_listening_port_is_exposed(rendered: dict[str, dict[str, object]], node: str) -> None:
    catalog = fleet_catalog()
    services = rendered[node]["services"]
    assert isinstance(services, dict)
    for name, svc in services.items():
        exposed = {int(p) for p in svc["expose"]}
        spec = catalog[name]
        if spec.get("gateway"):
            assert {80, 443} <= exposed, (name, exposed)
            continue
        wanted = {spec["port"]}
        for block in ("health", "metrics"):
            port = (spec.get(block) or {}).get("port")
            if port is not None:
                wanted.add(port)
        assert exposed == wanted, (name, exposed, wanted)


def test_metrics_listeners_are_declared(rendered: dict[str, dict[str, object]]) -> None:
    assert rendered["node1"]["services"]["swapper"]["expose"] == ["8890", "8891"]  # type: ignore[index]
    assert rendered["node3"]["services"]["matrix-synapse"]["expose"] == ["8448", "8449"]  # type: ignore[index]
    assert rendered["node1"]["services"]["nats"]["expose"] == ["4222", "8222"]  # type: ignore[index]
