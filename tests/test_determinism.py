"""Rendering is byte-identical across processes, hash seeds and manifest order; every file names its sources."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nodegen.load.yamlio import parse
from nodegen.pipeline import load_fleet
from nodegen.targets import CLUSTER_TARGETS
from nodegen.workspace import Workspace
from tests.conftest import ROOT
from tests.regen_golden import FLEETS, fleet_names

WORKSPACES = [ROOT, *(FLEETS / name for name in fleet_names())]
WS_IDS = ["shipped", *fleet_names()]


def render_all(ws: Path) -> dict[str, str]:
    fleet = load_fleet(Workspace(ws))
    files = {f"{node}/{rel}": text for node in fleet.node_ids for rel, text in fleet.render(node).items()}
    for target in fleet.targets():  # output/swarm/: the cluster targets render --all writes
        files.update({f"{target}/{rel}": text for rel, text in fleet.render_target(target).items()})
    return files


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- across processes and hash seeds -----------------------------------------------------------------

def test_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    outputs = []
    for seed in ("0", "1", "4242"):
        ws = tmp_path / f"seed-{seed}"
        shutil.copytree(ROOT / "nodes", ws / "nodes")
        env = {**os.environ, "PYTHONHASHSEED": seed, "NODEGEN_NO_CACHE": "1"}
        proc = subprocess.run([sys.executable, "-m", "nodegen", "-C", str(ws), "render", "--all"], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        outputs.append(tree(ws / "output"))
    assert outputs[0] and outputs[0] == outputs[1] == outputs[2]
    fleet_wide = load_fleet(Workspace(ROOT)).render_root()  # render --all also writes output/FLEET.md
    assert {rel: data.decode("utf-8") for rel, data in outputs[0].items()} == {**render_all(ROOT), **fleet_wide}


# --- across manifest order ------------------------------------------------------------------------

# Lists whose order means nothing to the output; `command` lists are argv and keep their order.
UNORDERED_LISTS = {"services", "needs", "websocket", "publish", "core_ports"}
# Mappings whose order is meant: standard.port_tables lists the docs' tables in the order written.
ORDERED_MAPPINGS = {"port_tables"}


def shuffled(data: Any, rng: random.Random, key: str = "") -> Any:
    """data with every mapping's keys, and every unordered list, in a random order."""
    if isinstance(data, dict):
        items = list(data.items())
        if key not in ORDERED_MAPPINGS:
            rng.shuffle(items)
        return {k: shuffled(v, rng, k) for k, v in items}
    if isinstance(data, list):
        items = [shuffled(v, rng) for v in data]
        if key in UNORDERED_LISTS:
            rng.shuffle(items)
        return items
    return data


def write_shuffled(src: Path, dest: Path, seed: int) -> None:
    """The workspace's manifests reordered, written as JSON (a subset of YAML 1.2), so values keep their types."""
    rng = random.Random(seed)
    (dest / "nodes").mkdir(parents=True)
    for path in sorted((src / "nodes").glob("*.yaml")):
        doc, problem = parse(path.read_text(encoding="utf-8"), path.name)
        assert problem is None and doc is not None
        text = json.dumps(shuffled(doc.data, rng), ensure_ascii=False, indent=1)
        (dest / "nodes" / path.name).write_text(text + "\n", encoding="utf-8")


@pytest.mark.parametrize("ws", WORKSPACES, ids=WS_IDS)
@pytest.mark.parametrize("seed", [1, 2])
def test_byte_identical_across_manifest_order(tmp_path: Path, ws: Path, seed: int) -> None:
    write_shuffled(ws, tmp_path, seed)
    fleet_text = (tmp_path / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    assert fleet_text != (ws / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    before, after = render_all(ws), render_all(tmp_path)
    assert sorted(before) == sorted(after)
    assert [rel for rel in before if before[rel] != after[rel]] == []


def test_shuffle_really_reorders_the_catalog_and_a_node(tmp_path: Path) -> None:
    write_shuffled(ROOT, tmp_path, 1)
    original = parse((ROOT / "nodes" / "fleet.yaml").read_text(encoding="utf-8"), "f")[0]
    moved = parse((tmp_path / "nodes" / "fleet.yaml").read_text(encoding="utf-8"), "f")[0]
    assert original is not None and moved is not None
    assert list(original.data["services"]) != list(moved.data["services"])
    assert sorted(original.data["services"]) == sorted(moved.data["services"])
    node_before = parse((ROOT / "nodes" / "node1.yaml").read_text(encoding="utf-8"), "n")[0]
    node_after = parse((tmp_path / "nodes" / "node1.yaml").read_text(encoding="utf-8"), "n")[0]
    assert node_before is not None and node_after is not None
    assert node_before.data["services"] != node_after.data["services"]


# --- headers and timestamps --------------------------------------------------------------------------

HEADER = re.compile(
    r"Generated by nodegen from nodes/fleet\.yaml(, nodes/[a-z0-9-]+\.yaml)+\. Do not edit by hand[.;]"
    r"\s*[Rr]egenerate with: nodegen render (--target )?(?P<node>[a-z0-9-]+)"
)
TIMESTAMP = re.compile(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b|\b[0-2]\d:[0-5]\d:[0-5]\d\b")


def header_of(rel: str, text: str) -> str:
    """The text of a file's opening comment (for JSON, which has none, its top-level description)."""
    if rel.endswith(".json"):
        return str(json.loads(text).get("description", ""))
    if rel.endswith(".md"):
        assert text.startswith("<!-- "), rel
        return text[5:text.index("-->")]
    lines = text.splitlines()
    lines = lines[1:3] if lines[0].startswith("#!") else lines[:2]  # scripts: the comment follows the shebang
    assert all(line.startswith("# ") for line in lines), rel
    return " ".join(line[2:] for line in lines)


@pytest.mark.parametrize("ws", WORKSPACES, ids=WS_IDS)
def test_every_file_opens_with_its_sources_and_the_command(ws: Path) -> None:
    for rel, text in render_all(ws).items():
        node, name = rel.split("/", 1)
        header = header_of(name, text)
        match = HEADER.search(header)
        assert match, (rel, header)
        assert match["node"] == node
        if node in CLUSTER_TARGETS:  # a cluster target is rendered from every node
            assert match[0].startswith("Generated by nodegen from nodes/fleet.yaml, ") and "--target" in match[0]
        else:
            assert f"nodes/{node}.yaml" in header


@pytest.mark.parametrize("ws", WORKSPACES, ids=WS_IDS)
def test_no_timestamps_in_output(ws: Path) -> None:
    found = {rel: m.group(0) for rel, text in render_all(ws).items() if (m := TIMESTAMP.search(text))}
    assert found == {}


def test_timestamp_pattern_catches_dates_and_times() -> None:
    assert TIMESTAMP.search("# rendered 2024-05-01")
    assert TIMESTAMP.search("at 13:45:10 UTC")
    assert not TIMESTAMP.search("$time_iso8601 22:22 127.0.0.1:3000")
