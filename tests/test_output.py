"""render, check and diff on disk: what is written, kept, refused and removed under output/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nodegen.output import mode_for
from nodegen.pipeline import load_fleet
from nodegen.workspace import Workspace
from tests.conftest import Run, invoke

OLD = 946_684_800_000_000_000  # 2000-01-01 in ns: an mtime no render of today can produce


def ng(ws: Path, *args: str) -> Run:
    return invoke("-C", str(ws), *args)


def rendered(ws: Path, node: str) -> dict[str, str]:
    return load_fleet(Workspace(ws)).render(node)


def tree(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below folder: relative path -> (bytes, mode, mtime_ns)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[path.relative_to(folder).as_posix()] = (path.read_bytes(), st.st_mode & 0o777, st.st_mtime_ns)
    return out


def age(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(OLD, OLD))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def done(workspace: Path) -> Path:
    """The shipped fleet, rendered."""
    result = ng(workspace, "render", "--all")
    assert result.code == 0, result.stderr
    return workspace


# --- render ---------------------------------------------------------------------------------------

def test_render_writes_every_file_of_the_node_layout(workspace: Path) -> None:
    result = ng(workspace, "render", "--all")
    assert (result.code, result.stderr) == (0, "")
    for node in ("node1", "node2", "node3"):
        files = rendered(workspace, node)
        on_disk = tree(workspace / "output" / node)
        assert set(on_disk) == set(files)
        assert all(on_disk[rel][0] == text.encode() and on_disk[rel][1] == mode_for(rel) for rel, text in files.items())
        assert f"{node}: {len(files)} file(s) written or removed" in result.stdout.splitlines()
    node1 = set(tree(workspace / "output" / "node1"))
    assert {"docker-compose.all.yml", ".env.example", "infra/nginx/nginx.conf",
            "infra/prometheus/prometheus.yml"} <= node1
    assert "infra/prometheus/prometheus.yml" not in tree(workspace / "output" / "node2")


def test_render_only_the_named_node(workspace: Path) -> None:
    assert ng(workspace, "render", "node2").code == 0
    # Other nodes' folders are untouched; the fleet-wide files (which describe every node) are kept current.
    assert sorted(p.name for p in (workspace / "output").iterdir()) == [".nodegen.sum", "FLEET.md", "node2"]
    assert ng(workspace, "check", "node2").code == 0


def test_rerender_keeps_mtime_of_unchanged_files(done: Path) -> None:
    out = done / "output" / "node1"
    age(out)
    result = ng(done, "render", "--all")
    assert result.code == 0
    assert result.stdout.splitlines()[:3] == ["node1: up to date", "node2: up to date", "node3: up to date"]
    assert {rel for rel, (_, _, mtime) in tree(out).items() if mtime != OLD} == set()


def test_rerender_after_an_edit_rewrites_only_what_changed(done: Path) -> None:
    out = done / "output" / "node1"
    age(out)
    edit(done / "nodes" / "fleet.yaml", "GF_USERS_ALLOW_SIGN_UP: \"false\"", "GF_USERS_ALLOW_SIGN_UP: \"true\"")
    result = ng(done, "render", "node1")
    assert result.code == 0
    assert result.stdout.splitlines()[0] == "node1: 2 file(s) written or removed"
    changed = {rel for rel, (_, _, mtime) in tree(out).items() if mtime != OLD}
    assert changed == {"docker-compose.all.yml", ".nodegen.sum"}


def test_no_staging_folder_or_temp_file_is_left_behind(done: Path) -> None:
    edit(done / "nodes" / "node1.yaml", "address: 10.0.0.1", "address: 10.0.0.9")
    edit(done / "nodes" / "fleet.yaml", "port: 7002", "port: 7012")
    assert ng(done, "render", "--all").code == 0
    leftovers = [p.name for p in (done / "output").rglob("*") if "nodegen-staging" in p.name or "tmp" in p.name]
    assert leftovers == []


def test_a_crashed_run_s_staging_folder_is_cleaned_up(done: Path) -> None:
    stale = done / "output" / ".nodegen-staging-node1"
    (stale / "infra").mkdir(parents=True)
    (stale / "docker-compose.all.yml").write_text("half written", encoding="utf-8")
    assert ng(done, "render", "--all").code == 0
    assert not stale.exists()
    assert ng(done, "check").code == 0


# --- check / diff ------------------------------------------------------------------------------------

def test_manifest_edit_makes_check_fail_diff_show_and_render_fix(done: Path) -> None:
    assert ng(done, "check").stdout == "ok: output/ is current for kubernetes, node1, node2, node3, swarm\n"
    before = {n: rendered(done, n) for n in ("node1", "node2", "node3")}
    edit(done / "nodes" / "fleet.yaml", "port: 7002", "port: 7012")
    after = {n: rendered(done, n) for n in ("node1", "node2", "node3")}
    changed = sorted(f"{n}/{rel}" for n in after for rel in after[n] if before[n].get(rel) != after[n][rel])
    assert {"node1/docker-compose.all.yml", "node1/infra/nginx/nginx.conf", "node1/.nodegen.sum"} <= set(changed)

    check = ng(done, "check")
    assert check.code == 1
    fleet_wide = "output/.nodegen.sum: stale\noutput/FLEET.md: stale\n"  # the port ledger in FLEET.md moved too
    swarm = "swarm/.nodegen.sum: stale\nswarm/stack.yml: stale\n"  # node1's nginx.conf is a new config name
    swarm = "kubernetes/.nodegen.sum: stale\nkubernetes/node1.yaml: stale\n" + swarm  # the port, in node1 only
    assert check.stderr == "".join(f"{rel}: stale\n" for rel in changed) + swarm + fleet_wide \
        + "run: nodegen render --all\n"

    diff = ng(done, "diff", "node1")
    assert diff.code == 1
    lines = diff.stdout.splitlines()
    assert "--- a/node1/docker-compose.all.yml" in lines and "+++ b/node1/docker-compose.all.yml" in lines
    assert '-      test: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://localhost:7002/health"]' in lines
    assert '+      test: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://localhost:7012/health"]' in lines
    assert ng(done, "diff", "node2").code == 0  # node2 does not run agents-service

    assert ng(done, "render", "--all").code == 0
    assert ng(done, "check").code == 0
    assert ng(done, "diff", "node1", "node2", "node3") == Run(0, "", "")


def test_check_names_missing_and_extra_files(done: Path) -> None:
    (done / "output" / "node2" / "docker-compose.all.yml").unlink()
    (done / "output" / "node2" / "notes.txt").write_text("x", encoding="utf-8")
    result = ng(done, "check", "node2")
    assert result.code == 1
    assert result.stderr == (
        "node2/docker-compose.all.yml: missing\nnode2/notes.txt: extra\n"
        "hand edits (render refuses them until they are in the manifests or dropped):\n"
        "  node2/notes.txt: not written by nodegen; render --force would remove it. To keep it, move it out of "
        "output/ (secrets belong in node2/.env, certificates in node2/infra/nginx/certs/)\n"
        "run: nodegen render node2\n")


def test_check_and_diff_catch_a_changed_executable_bit(done: Path) -> None:
    os.chmod(done / "output" / "node3" / ".env.example", 0o755)
    os.chmod(done / "output" / "node3" / "scripts" / "deploy.sh", 0o644)
    result = ng(done, "check")
    assert result.code == 1
    assert result.stderr.splitlines()[:2] == ["node3/.env.example: stale", "node3/scripts/deploy.sh: stale"]
    assert ng(done, "diff", "node3") == Run(1, "mode change 755 => 644 node3/.env.example\n"
                                               "mode change 644 => 755 node3/scripts/deploy.sh\n", "")
    assert ng(done, "render", "node3").code == 0
    assert (done / "output" / "node3" / ".env.example").stat().st_mode & 0o777 == 0o644
    assert ng(done, "check").code == 0


@pytest.mark.parametrize(("plain", "script"), [(0o664, 0o775), (0o600, 0o700), (0o444, 0o555)])
def test_check_compares_only_what_git_keeps(done: Path, plain: int, script: int) -> None:
    """A clone made with umask 002 or 077, or a read-only checkout, is current: Git keeps only the x bit."""
    for path in (done / "output").rglob("*"):
        if path.is_file():
            os.chmod(path, script if path.suffix == ".sh" else plain)
    assert ng(done, "check").code == 0
    assert ng(done, "diff", "--all") == Run(0, "", "")


def test_diff_shows_an_empty_extra_file(done: Path) -> None:
    (done / "output" / "node2" / "EMPTY").touch()
    assert ng(done, "check", "node2").code == 1
    assert ng(done, "diff", "node2") == Run(1, "--- a/node2/EMPTY\n+++ /dev/null\n", "")


def test_check_without_output_lists_everything_missing(workspace: Path) -> None:
    result = ng(workspace, "check", "node2")
    assert result.code == 1
    assert "node2/docker-compose.all.yml: missing" in result.stderr.splitlines()


def test_diff_of_a_node_never_rendered_adds_every_file(workspace: Path) -> None:
    result = ng(workspace, "diff", "node2")
    assert result.code == 1
    assert "--- /dev/null\n+++ b/node2/docker-compose.all.yml\n" in result.stdout


# --- what render refuses, keeps and removes ---------------------------------------------------------

def test_hand_edit_survives_render_without_force(done: Path) -> None:
    compose = done / "output" / "node1" / "docker-compose.all.yml"
    compose.write_text(compose.read_text(encoding="utf-8") + "# tuned by hand\n", encoding="utf-8")
    edit(done / "nodes" / "fleet.yaml", "port: 7002", "port: 7012")
    result = ng(done, "render", "--all")
    assert result.code == 1
    assert result.stderr.startswith("node1: hand edits:\n  node1/docker-compose.all.yml: edited by hand (line ")
    assert result.stderr.endswith("nodegen render --force node1 discards it\nnothing written\n")
    assert compose.read_text(encoding="utf-8").endswith("# tuned by hand\n")
    assert "7002/health" in compose.read_text(encoding="utf-8")

    forced = ng(done, "render", "--all", "--force")
    assert forced.code == 0
    assert compose.read_text(encoding="utf-8") == rendered(done, "node1")["docker-compose.all.yml"]
    assert ng(done, "check").code == 0


def test_hand_edit_is_refused_even_when_the_manifests_did_not_change(done: Path) -> None:
    nginx = done / "output" / "node2" / "infra" / "nginx" / "nginx.conf"
    nginx.write_text("# mine\n", encoding="utf-8")
    result = ng(done, "render", "node2")
    assert result.code == 1
    assert "node2/infra/nginx/nginx.conf" in result.stderr
    assert nginx.read_text(encoding="utf-8") == "# mine\n"


def test_file_no_longer_produced_is_removed(done: Path) -> None:
    prometheus = done / "output" / "node1" / "infra" / "prometheus"
    assert (prometheus / "prometheus.yml").is_file()
    edit(done / "nodes" / "node1.yaml", "  - prometheus\n", "")
    text = (done / "nodes" / "node1.yaml").read_text(encoding="utf-8")
    grafana = text[text.index("  - grafana"):text.index("  - gateway-nginx")]
    edit(done / "nodes" / "node1.yaml", grafana, "")
    result = ng(done, "render", "node1")
    assert result.code == 0, result.stderr
    assert not prometheus.exists()
    assert set(tree(done / "output" / "node1")) == set(rendered(done, "node1"))


def test_unknown_file_in_a_node_folder_is_not_silently_deleted(done: Path) -> None:
    notes = done / "output" / "node1" / "NOTES.md"
    notes.write_text("runbook\n", encoding="utf-8")
    result = ng(done, "render", "--all")
    assert result.code == 1
    assert "node1/NOTES.md" in result.stderr
    assert notes.read_text(encoding="utf-8") == "runbook\n"
    assert ng(done, "check").stderr.splitlines()[0] == "node1/NOTES.md: extra"


def test_secrets_and_certificates_beside_the_output_are_kept(done: Path) -> None:
    node = done / "output" / "node1"
    (node / ".env").write_text("POSTGRES_PASSWORD=real\n", encoding="utf-8")
    (node / "infra" / "nginx" / "certs" / "privkey.pem").write_text("key\n", encoding="utf-8")
    edit(done / "nodes" / "fleet.yaml", "port: 7002", "port: 7012")
    assert ng(done, "render", "--all", "--force").code == 0
    assert (node / ".env").read_text(encoding="utf-8") == "POSTGRES_PASSWORD=real\n"
    assert (node / "infra" / "nginx" / "certs" / "privkey.pem").read_text(encoding="utf-8") == "key\n"
    assert ng(done, "check").code == 0


def test_validation_problem_writes_nothing(done: Path) -> None:
    edit(done / "nodes" / "fleet.yaml", "port: 7002", "port: 7012")
    before = tree(done / "output")
    edit(done / "nodes" / "node2.yaml", "role: dev", "role: devel")
    result = ng(done, "render", "--all")
    assert result.code == 1
    assert result.stderr.endswith("1 error(s); nothing written\n")
    assert tree(done / "output") == before


def test_validation_problem_creates_no_output_folder(workspace: Path) -> None:
    edit(workspace / "nodes" / "fleet.yaml", "port: 7002", "port: 9555")
    assert ng(workspace, "render", "--all").code == 1
    assert not (workspace / "output").exists()


def test_output_folder_symlink_is_refused(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (workspace / "output").symlink_to(elsewhere, target_is_directory=True)
    result = ng(workspace, "render", "--all")
    assert result.code == 1
    assert "is a symlink" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_node_folder_symlink_is_refused(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (workspace / "output").mkdir()
    (workspace / "output" / "node2").symlink_to(elsewhere, target_is_directory=True)
    result = ng(workspace, "render", "node2")
    assert result.code == 1
    assert "is a symlink" in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert (workspace / "output" / "node2").is_symlink()


def test_orphan_node_folder_is_removed_by_render_all(done: Path) -> None:
    (done / "nodes" / "node3.yaml").unlink()
    check = ng(done, "check")
    assert check.code == 1
    assert "node3/: extra (no manifest)" in check.stderr.splitlines()
    assert ng(done, "render", "node1").code == 0
    assert (done / "output" / "node3").is_dir()  # only --all removes orphans
    result = ng(done, "render", "--all")
    assert result.code == 0
    assert "node3: removed (no manifest)" in result.stdout.splitlines()
    assert not (done / "output" / "node3").exists()
    assert ng(done, "check").code == 0


def test_orphan_with_a_hand_edit_is_kept_without_force(done: Path) -> None:
    (done / "nodes" / "node3.yaml").unlink()
    (done / "output" / "node3" / "docker-compose.all.yml").write_text("# mine\n", encoding="utf-8")
    result = ng(done, "render", "--all")
    assert result.code == 1
    assert "node3/docker-compose.all.yml" in result.stderr
    assert (done / "output" / "node3").is_dir()
    assert ng(done, "render", "--all", "--force").code == 0
    assert not (done / "output" / "node3").exists()


def test_folders_nodegen_did_not_write_are_left_alone(done: Path) -> None:
    mine = done / "output" / "shared-notes"
    mine.mkdir()
    (mine / "README").write_text("x\n", encoding="utf-8")
    assert ng(done, "render", "--all").code == 0
    assert ng(done, "check").code == 0
    assert (mine / "README").read_text(encoding="utf-8") == "x\n"


def test_orphan_with_the_operator_s_env_file_is_kept_without_force(done: Path) -> None:
    (done / "nodes" / "node3.yaml").unlink()
    (done / "output" / "node3" / ".env").write_text("POSTGRES_PASSWORD=real\n", encoding="utf-8")
    result = ng(done, "render", "--all")
    assert result.code == 1
    assert result.stderr == ("node3: edited by hand or not written by nodegen (use --force to remove): "
                             "node3/.env\nnothing written\n")
    assert (done / "output" / "node3" / ".env").is_file()
