"""Large fleets are rendered by forked workers and staged by threads: the result must not change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nodegen.output import OutputError, Staged, stage_folders
from nodegen.pipeline import PARALLEL_FROM, load_fleet
from nodegen.workspace import Workspace

FLEET = """\
project: par
domain: par.example
services:
  postgres:
    class: core
    image: postgres:15.10-alpine
    port: 5432
    protocol: tcp
    health: {command: [pg_isready, -U, postgres]}
    metrics: {enabled: false}
    env: {POSTGRES_PASSWORD: {secret: true}}
  prometheus:
    class: core
    image: prom/prometheus:v2.55.1
    port: 9090
    health: {path: /-/healthy, command: [wget, -q, -O, /dev/null, "http://127.0.0.1:9090/-/healthy"]}
  gateway-nginx:
    class: core
    gateway: true
    image: nginx:1.27.3-alpine
    port: 443
    metrics: {enabled: false}
  api-service:
    class: mvp
    build: services/api-service
    port: 7100
    route: api
    needs: [postgres]
"""


def _fleet(root: Path, nodes: int) -> Workspace:
    (root / "nodes").mkdir()
    (root / "nodes" / "fleet.yaml").write_text(FLEET)
    for i in range(nodes):
        extra = ", prometheus" if i == 0 else ""
        (root / "nodes" / f"n{i:02d}.yaml").write_text(
            f"node: n{i:02d}\nname: N{i}\nrole: production\nuptime: 24/7\ndomain: n{i:02d}.par.example\n"
            f"address: 10.9.0.{i + 1}\nservices: [postgres, gateway-nginx, api-service{extra}]\n"
        )
    return Workspace(root)


def test_forked_workers_render_exactly_what_one_process_renders(tmp_path: Path) -> None:
    ws = _fleet(tmp_path, PARALLEL_FROM + 2)
    serial = load_fleet(ws).render_many(load_fleet(ws).node_ids, workers=1)
    fleet = load_fleet(ws)
    parallel = fleet.render_many(fleet.node_ids, workers=2)
    assert list(parallel) == sorted(parallel) == list(serial)
    assert parallel == serial
    assert "n00/" not in "".join(serial)  # keys are node ids, paths inside are node-relative
    assert "infra/prometheus/prometheus.yml" in parallel["n00"]


def test_the_view_is_built_once_before_forking_not_by_every_worker(tmp_path: Path) -> None:
    fleet = load_fleet(_fleet(tmp_path, PARALLEL_FROM + 2))
    assert "resolved" not in vars(fleet)  # built on first use
    fleet.render_many(fleet.node_ids, workers=2)
    assert "resolved" in vars(fleet)  # by this process, before the workers were forked from it


def test_check_of_a_large_fleet_compares_each_node_and_the_fleet_files_the_workers_rendered(tmp_path: Path) -> None:
    """check streams the nodes from the workers and takes FLEET.md from the one that rendered it."""
    from tests.conftest import invoke

    _fleet(tmp_path, PARALLEL_FROM + 2)
    assert invoke("-C", str(tmp_path), "render", "--all").code == 0
    clean = invoke("-C", str(tmp_path), "check", "--all")
    assert clean.code == 0, clean.stderr
    fleet_md, node_file = tmp_path / "output" / "FLEET.md", tmp_path / "output" / "n17" / ".env.example"
    fleet_md.write_text(fleet_md.read_text() + "edited\n")
    node_file.write_text(node_file.read_text() + "EDITED=1\n")
    drift = invoke("-C", str(tmp_path), "--format", "json", "check", "--all")
    assert drift.code == 1
    assert '"path": "output/FLEET.md"' in drift.stdout and '"path": "output/n17/.env.example"' in drift.stdout


def test_staging_many_folders_keeps_order_and_reports_each_refusal(tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.mkdir()
    (out / "b").symlink_to(tmp_path)  # a symlinked node folder is refused
    folders = {out / name: {"x.txt": f"{name}\n"} for name in ("a", "b", "c", "d")}
    results = stage_folders(folders)
    assert [folder.name for folder, _ in results] == ["a", "b", "c", "d"]
    assert isinstance(results[1][1], OutputError)
    assert all(isinstance(r, Staged) for i, (_, r) in enumerate(results) if i != 1)


def test_a_failing_stream_of_folders_removes_what_was_staged_and_raises(tmp_path: Path) -> None:
    out = tmp_path / "output"  # does not exist yet: the call creates it, so it must remove it too

    def rendering() -> Iterator[tuple[Path, dict[str, str]]]:
        for name in ("a", "b", "c"):
            yield out / name, {"x.txt": f"{name}\n", "sub/y.txt": "y\n"}
        raise RuntimeError("rendering failed")

    with pytest.raises(RuntimeError, match="rendering failed"):
        stage_folders(rendering())
    assert not out.exists()


def test_an_io_error_while_staging_reaches_the_caller(tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.mkdir()
    (out / ".nodegen-staging-b").write_text("a file where b's staging folder goes\n")  # rmtree refuses it
    folders = {out / name: {"x.txt": f"{name}\n"} for name in ("a", "b", "c")}
    with pytest.raises(NotADirectoryError):
        stage_folders(folders)


@pytest.mark.parametrize("nodes", [1, PARALLEL_FROM - 1])
def test_small_fleets_stay_in_one_process(tmp_path: Path, nodes: int) -> None:
    from nodegen.pipeline import _workers

    _fleet(tmp_path, nodes)
    assert _workers(nodes) == 1
