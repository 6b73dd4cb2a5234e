"""`nodegen diff --base REF` on a real two-commit Git history: the review summary, its plan, JSON and exit code."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from nodegen.review import _extract
from tests.conftest import ROOT, Run, invoke
from tests.test_output import edit


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A repository with the fleet in a subfolder: commit 1 as shipped, commit 2 with a port, an image, a new
    service with a route, and a changed environment value."""
    ws = tmp_path / "infra"
    shutil.copytree(ROOT / "nodes", ws / "nodes")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "one")
    edit(ws / "nodes" / "fleet.yaml", "    port: 7002\n", "    port: 7012\n")
    edit(ws / "nodes" / "fleet.yaml", "image: nats:2.15.2-alpine", "image: nats:2.14.9-alpine")
    fleet_file = ws / "nodes" / "fleet.yaml"
    fleet_file.write_text(fleet_file.read_text(encoding="utf-8").replace(
        "NATS_URL: nats://nats:4222", "NATS_URL: nats://nats:4223", 1), encoding="utf-8")
    edit(ws / "nodes" / "node2.yaml", "  - vector-db\n", "  - vector-db\n  - web-search-2\n")
    fleet = (ws / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    start = fleet.index("  web-search:\n")
    block = fleet[start:fleet.index("\n\n", start) + 1]
    port = next(line for line in block.splitlines() if line.startswith("    port: "))
    new = block.replace("  web-search:\n", "  web-search-2:\n").replace(port, "    port: 8900")
    new = new.replace("route: search", "route: search2")
    (ws / "nodes" / "fleet.yaml").write_text(fleet[:start] + new + "\n" + fleet[start:], encoding="utf-8")
    git(tmp_path, "commit", "-q", "-am", "two")
    return ws


def diff(ws: Path, *args: str) -> Run:
    return invoke("-C", str(ws), "diff", "--base", "HEAD~1", *args)


def test_markdown_summary_node_service_facet_then_the_file_diff(history: Path) -> None:
    result = diff(history)
    assert result.code == 1, result.stderr
    text = result.stdout
    assert text.startswith("## nodegen diff against HEAD~1\n\n**Plan:** ")
    plan = text.splitlines()[2]
    assert "services changed" in plan and "1 service added" in plan and "1 route added" in plan
    node1 = text[text.index("### node1 (changed)\n"):text.index("### node2")]
    assert "- **agents-service** (changed)\n  - ports: `+7012/http+ws`, `-7002/http+ws`" in node1
    assert "- scrape jobs: " in node1  # node1's Prometheus scrapes the new service on node2
    assert "- **nats** (changed)\n  - image: `+nats:2.14.9-alpine`, `-nats:2.15.2-alpine`" in text
    assert "- **web-search-2** (added)" in text and "`+/api/search2/`" in text
    assert "nats://nats:4223" not in text[:text.index("```diff")]  # values never in the summary
    assert "```diff\n--- a/output/" in text
    assert result.stderr.strip() == plan.removeprefix("**Plan:** ")


def test_json_is_a_structure_a_bot_can_post(history: Path) -> None:
    result = diff(history, "--format", "json")
    assert result.code == 1
    doc = json.loads(result.stdout)
    assert doc["base"] == "HEAD~1" and doc["changed"] is True
    node2 = next(n for n in doc["nodes"] if n["node"] == "node2")
    added = next(s for s in node2["services"] if s["service"] == "web-search-2")
    assert added["status"] == "added"
    assert added["facets"]["routes"] == {"added": ["/api/search2/"], "removed": []}
    assert "environment keys" in added["facets"]
    assert {"path": "output/node2/docker-compose.all.yml", "status": "changed"} in doc["files"]
    assert "nats://nats:4223" not in json.dumps(doc["nodes"])
    assert doc["diff"].startswith("--- a/output/")


def test_no_change_exits_0(history: Path) -> None:
    result = invoke("-C", str(history), "diff", "--base", "HEAD")
    assert result.code == 0
    assert "**Plan:** no file changes" in result.stdout


def test_an_unknown_revision_is_a_usage_error(history: Path) -> None:
    result = invoke("-C", str(history), "diff", "--base", "no-such-ref")
    assert result.code == 2
    assert result.stderr.startswith("nodegen: git archive")


def test_the_base_side_extracts_only_folders_and_files_inside_the_scratch_folder(tmp_path: Path) -> None:
    """The archive of REF is unpacked without tarfile's filters (Python < 3.11.4 has none): a link, or a name
    that climbs out of the scratch folder, is never written."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, kind in (("nodes", tarfile.DIRTYPE), ("nodes/fleet.yaml", tarfile.REGTYPE),
                           ("../escaped.yaml", tarfile.REGTYPE), ("nodes/link.yaml", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            body = b"project: x\n" if kind == tarfile.REGTYPE else b""
            info.size = len(body)
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            tar.addfile(info, io.BytesIO(body) if body else None)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    data.seek(0)
    with tarfile.open(fileobj=data) as tar:
        _extract(tar, scratch)
    assert (scratch / "nodes" / "fleet.yaml").read_bytes() == b"project: x\n"
    assert not (tmp_path / "escaped.yaml").exists()
    assert not (scratch / "nodes" / "link.yaml").exists() and not (scratch / "nodes" / "link.yaml").is_symlink()
