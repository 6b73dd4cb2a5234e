"""What the stand-in images cannot prove, checked against the rendered compose files without an engine.

The stand-ins ship curl and wget in every image, so a health check calling a binary the pinned official
image lacks would pass on the engine and fail in production. images.py records, per official image, the
binaries it ships that a health check may call; every rendered health check must use one of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.engine import images

COMPOSE_FILES = sorted((ROOT / "output").glob("*/docker-compose*.yml"))


def health_commands(path: Path) -> list[tuple[str, str, str]]:
    """(service, image, the binary its health check runs) for every image service of one compose file."""
    model = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for name, svc in sorted((model.get("services") or {}).items()):
        test = (svc.get("healthcheck") or {}).get("test") or []
        if svc.get("image") and not svc.get("build") and test and test[0] == "CMD":
            out.append((name, svc["image"], test[1]))
    return out


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=[f"{p.parent.name}-{p.name}" for p in COMPOSE_FILES])
def test_health_checks_call_only_what_the_official_image_ships(path: Path) -> None:
    for service, image, binary in health_commands(path):
        standin = images.STANDINS_BY_REPOSITORY.get(images.repository(image))
        assert standin is not None, f"{service}: no stand-in for {image} (tests/engine/images.py)"
        assert binary in standin.official_tools, (
            f"{service}: its health check runs {binary!r}, which {image} does not ship "
            f"(it ships {sorted(standin.official_tools)})")


def test_every_rendered_image_has_a_stand_in() -> None:
    assert images.missing_standins(images.compose_images(COMPOSE_FILES)) == []


def test_repository_names() -> None:
    assert images.repository("docker.io/library/nginx:1.27.3-alpine") == "nginx"
    assert images.repository("prom/prometheus:v2.55.1") == "prom/prometheus"
    assert images.repository("localhost:5000/team/app") == "localhost:5000/team/app"
    assert images.repository("postgres@sha256:abc") == "postgres"


def test_a_health_check_with_curl_on_an_alpine_image_is_caught(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.all.yml"
    compose.write_text(yaml.safe_dump({"services": {"nats": {
        "image": "nats:2.15.2-alpine", "healthcheck": {"test": ["CMD", "curl", "-f", "http://127.0.0.1:8222/"]}}}}))
    (_service, image, binary), = health_commands(compose)
    assert binary not in images.STANDINS_BY_REPOSITORY[images.repository(image)].official_tools
