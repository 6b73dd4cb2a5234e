"""The stand-in images keep the official images' refusals: what the node tests rely on is not a stub's leniency."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.engine import images
from tests.engine.daemon import Engine

pytestmark = pytest.mark.engine


def run(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", *args], env=engine.env,
                          capture_output=True, text=True, timeout=120, check=False)


def image_of(repository: str) -> str:
    refs = images.shipped_images().get(repository)
    if not refs:
        pytest.skip(f"no rendered compose file uses {repository}")
    return sorted(refs)[0]


def test_synapse_refuses_to_start_without_its_configuration(engine: Engine) -> None:
    proc = run(engine, image_of("matrixdotorg/synapse"))
    assert proc.returncode == 1
    assert "Config file '/data/homeserver.yaml' does not exist" in proc.stderr


def test_a_built_service_refuses_to_start_without_port(engine: Engine) -> None:
    proc = run(engine, "-e", "STUB_SERVICE=router", images.STUB)
    assert proc.returncode == 1
    assert "router: PORT is not set" in proc.stderr


def readable(folder: Path) -> None:
    """Grafana runs as an unprivileged user: the provisioning files must be world-readable, as on a node."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_grafana_refuses_invalid_provisioning(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "datasources").mkdir()
    (tmp_path / "datasources" / "broken.yml").write_text("datasources:\n  - name: [unclosed\n")
    readable(tmp_path)
    proc = run(engine, "-v", f"{tmp_path}:/etc/grafana/provisioning:ro", image_of("grafana/grafana"))
    assert proc.returncode == 1
    assert "Failed to provision" in proc.stderr and "broken.yml" in proc.stderr


def test_grafana_refuses_a_missing_dashboards_folder(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "p.yml").write_text("apiVersion: 1\nproviders:\n  - name: x\n"
                                                    "    options: {path: /nowhere}\n")
    readable(tmp_path)
    proc = run(engine, "-v", f"{tmp_path}:/etc/grafana/provisioning:ro", image_of("grafana/grafana"))
    assert proc.returncode == 1
    assert "/nowhere does not exist" in proc.stderr


def test_postgres_refuses_to_initialise_without_a_password(engine: Engine) -> None:
    proc = run(engine, image_of("postgres"))
    assert proc.returncode == 1
    assert "superuser password is not specified" in proc.stderr
