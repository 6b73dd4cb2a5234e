"""What a new user met in the first hour: each friction point, pinned by a test that failed before its fix."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Run, invoke
from tests.test_output import edit, tree


def ng(ws: Path, *args: str) -> Run:
    return invoke("-C", str(ws), *args)


@pytest.fixture
def done(workspace: Path) -> Path:
    assert ng(workspace, "render", "--all").code == 0
    return workspace


# --- render: all or nothing, and what it says when it stops ---------------------------------------

def test_blocked_render_all_writes_no_node(done: Path) -> None:
    """A hand edit in node1 stops the whole render: node2 and FLEET.md keep their old text too."""
    compose = done / "output" / "node1" / "docker-compose.all.yml"
    compose.write_text(compose.read_text(encoding="utf-8").replace("7002/health", "7003/health"), encoding="utf-8")
    edit(done / "nodes" / "fleet.yaml", "port: 7002", "port: 7012")  # agents-service runs on node1 and node2?
    edit(done / "nodes" / "node2.yaml", "name: НОДА2", "name: НОДА-2")
    before = tree(done / "output")
    result = ng(done, "render", "--all")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.endswith("nothing written\n")
    assert tree(done / "output") == before
    assert not [p for p in (done / "output").iterdir() if p.name.startswith(".nodegen-staging")]


def test_hand_edit_names_the_manifest_key_and_how_to_keep_it(done: Path) -> None:
    compose = done / "output" / "node1" / "docker-compose.all.yml"
    compose.write_text(compose.read_text(encoding="utf-8").replace("7002/health", "7003/health"), encoding="utf-8")
    line = compose.read_text(encoding="utf-8").splitlines().index(
        next(x for x in compose.read_text(encoding="utf-8").splitlines() if "7003/health" in x)) + 1
    expected = (f"  node1/docker-compose.all.yml: edited by hand (line {line}, agents-service); this part comes "
                "from services.agents-service in nodes/fleet.yaml and the services list of nodes/node1.yaml. "
                "To keep the change, make it there and run nodegen render node1; "
                "nodegen render --force node1 discards it")
    render = ng(done, "render", "node1")
    assert render.code == 1
    assert expected in render.stderr.splitlines()
    check = ng(done, "check")
    assert check.code == 1
    assert expected in check.stderr.splitlines()
    assert "run nodegen render" not in check.stderr.splitlines()[-1] or "--all" in check.stderr.splitlines()[-1]


def test_force_lists_what_it_removes_and_overwrites(done: Path) -> None:
    (done / "output" / "node2" / "NOTES.md").write_text("runbook\n", encoding="utf-8")
    nginx = done / "output" / "node2" / "infra" / "nginx" / "nginx.conf"
    nginx.write_text(nginx.read_text(encoding="utf-8") + "# mine\n", encoding="utf-8")
    refused = ng(done, "render", "node2")
    assert refused.code == 1
    assert ("  node2/NOTES.md: not written by nodegen; render --force would remove it. To keep it, move it out of "
            "output/ (secrets belong in node2/.env, certificates in node2/infra/nginx/certs/)") in refused.stderr
    forced = ng(done, "render", "--force", "node2")
    assert forced.code == 0
    assert forced.stdout.splitlines()[:2] == [
        "--force: removing (not written by nodegen): node2/NOTES.md",
        "--force: overwriting a hand edit: node2/infra/nginx/nginx.conf",
    ]
    assert not (done / "output" / "node2" / "NOTES.md").exists()


# --- render on a read-only output/ -----------------------------------------------------------------

@pytest.fixture
def shared_ws() -> Iterator[Path]:
    """A workspace another user can read (tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="nodegen-ro-"))
    try:
        shutil.copytree(ROOT / "nodes", folder / "nodes")
        os.chmod(folder, 0o755)
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, 0o755)
        shutil.rmtree(folder)


def _as_other_user(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run nodegen as a user who may not write output/ (root ignores permission bits)."""
    cmd = [sys.executable, "-m", "nodegen", "-C", str(ws), *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("setpriv (util-linux) is needed to drop root for this test")
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    env = {**os.environ, "NODEGEN_NO_CACHE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False, cwd="/")


def test_render_on_a_read_only_output_is_a_one_line_error(shared_ws: Path) -> None:
    assert ng(shared_ws, "render", "--all").code == 0
    shutil.rmtree(shared_ws / "output" / "node2")
    edit(shared_ws / "nodes" / "node1.yaml", "name: НОДА1", "name: НОДА-1")
    for path in [shared_ws / "output", *(shared_ws / "output").rglob("*")]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    result = _as_other_user(shared_ws, "render", "--all")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "output" in lines[0] and "Permission denied" in lines[0] and lines[0].endswith("nothing written")
    assert not (shared_ws / "output" / "node2").exists()


# --- validation is not staged -------------------------------------------------------------------------

def test_a_typo_key_does_not_hide_the_same_service_s_bad_port(workspace: Path) -> None:
    edit(workspace / "nodes" / "fleet.yaml", "    build: services/agents-service\n    port: 7002\n",
         "    build: services/agents-service\n    prot: 1\n    port: 9555\n")
    edit(workspace / "nodes" / "node2.yaml", "uptime: on-demand", "uptime: on-demand\nrol: x")
    edit(workspace / "nodes" / "node3.yaml", "role: federation", "role: federaton")
    result = ng(workspace, "validate")
    assert result.code == 1
    rules = [line.split(": error[")[1].split("]")[0] for line in result.stderr.splitlines() if ": error[" in line]
    lines = result.stderr.splitlines()
    assert any("unknown key 'prot'" in x for x in lines)
    assert any("error[port-class] agents-service: port 9555" in x for x in lines)
    assert any("unknown key 'rol'" in x for x in lines)
    assert rules.count("schema") == 2
    assert ("role 'federaton' is not in standard.roles (production, dev, federation); did you mean 'federation'?"
            in result.stderr)
    assert not (workspace / "output").exists()


def test_did_you_mean_for_needs_and_the_next_free_port_for_a_conflict(workspace: Path) -> None:
    edit(workspace / "nodes" / "fleet.yaml", "needs: [postgres, nats, router]", "needs: [postgres, nats, ruter]")
    edit(workspace / "nodes" / "fleet.yaml", "    port: 7002\n", "    port: 7001\n")
    lines = ng(workspace, "validate").stderr.splitlines()
    assert any(x.endswith("agents-service needs 'ruter', which is not in the catalog; did you mean 'router'?")
               for x in lines)
    assert any("error[port-conflict] agents-service: port 7001 is already used by city-service" in x
               and x.endswith("; the next free mvp port is 7007 (nodegen ports --next mvp)") for x in lines)


# --- a fresh clone tests on its own --------------------------------------------------------------------

def test_the_tests_read_nothing_outside_the_repository() -> None:
    """The suite once read the shared folder beside the repository; its data is vendored in tests/fixtures/."""
    outside = ("ROOT" + ".parent", "../" + "shared")  # split, so this file does not match itself
    for path in sorted((ROOT / "tests").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not any(word in text for word in outside), path
    assert (ROOT / "tests" / "fixtures" / "real" / "docker-compose.all.yml").is_file()
    assert (ROOT / "tests" / "fixtures" / "standard" / "NODE_INFRASTRUCTURE_STANDARDS.md").is_file()


# --- the README's first commands, as a plain user on a stock Debian ---------------------------------

def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_readme_commands_work_verbatim_as_a_plain_user(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No /usr/sbin on PATH, no sudo, an externally managed Python: the README's install and the test
    runner both work (the runner narrowed to one test module, so that it does not run this suite again)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    install, run_tests = _readme_commands()
    assert install.startswith("python3 -m venv") and run_tests == "bash tests/run.sh"
    home = Path(tempfile.mkdtemp(prefix="nodegen-user-"))
    try:
        repo = home / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, timeout=120)
        for rel in ("README.md", "tests/run.sh"):  # the versions under test, committed or not
            shutil.copy(ROOT / rel, repo / rel)
        subprocess.run(["chown", "-R", "65534:65534", str(home)], check=True)
        os.chmod(home, 0o755)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
        user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        first = subprocess.run([*user, "sh", "-c", install], cwd=repo, env=env, capture_output=True, text=True,
                               timeout=600, check=False)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "externally-managed-environment" not in first.stderr
        assert (repo / "output" / "node1" / "docker-compose.all.yml").is_file()
        second = subprocess.run([*user, "sh", "-c", f"{run_tests} -q -p no:cacheprovider tests/test_smoke.py"],
                                cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "sudo: not found" not in second.stderr
        assert re.search(r"\b\d+ passed\b", second.stdout), second.stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_verify_finds_nginx_in_sbin_without_it_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A login user's PATH has no /usr/sbin, where Debian installs nginx."""
    from nodegen import verify

    sbin = next((d for d in verify.SBIN.split(":") if (Path(d) / "nginx").is_file()), None)
    if sbin is None:
        pytest.skip("nginx is not installed in an sbin folder here")
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    assert shutil.which("nginx") is None or not shutil.which("nginx", path="/usr/local/bin:/usr/bin:/bin")
    assert verify.tool("nginx") == str(Path(sbin) / "nginx")


# --- help pages and shell completion -------------------------------------------------------------------

def test_every_subcommand_help_page_has_examples() -> None:
    from nodegen.commands import COMMANDS

    for name in COMMANDS:
        page = invoke(name, "--help")
        assert page.code == 0, name
        examples = page.stdout[page.stdout.index("Examples:"):]
        assert f"nodegen {name}" in examples or f"nodegen --format github {name}" in examples, name


def _complete(cwd: Path, words: str) -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
           "_NODEGEN_COMPLETE": "bash_complete", "PYTHONPATH": str(ROOT)}
    script = "import sys; from nodegen.cli import cli; sys.exit(cli.main(prog_name='nodegen'))"
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line.startswith("plain,")]


def test_shell_completion_completes_node_names(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert _complete(workspace, "nodegen render n") == ["node1", "node2", "node3"]
    assert _complete(workspace, "nodegen check node1 n") == ["node2", "node3"]
    assert _complete(workspace, "nodegen audit node3") == ["node3"]
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert _complete(elsewhere, f"nodegen -C {workspace} diff ") == ["node1", "node2", "node3"]
    assert _complete(elsewhere, "nodegen render ") == []  # no workspace: nothing, and no traceback
    assert "completion" in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


# --- the "add a node" walkthrough ----------------------------------------------------------------------

def test_the_add_a_node_walkthrough_works_as_written(done: Path) -> None:
    page = (ROOT / "docs" / "add-a-node.md").read_text(encoding="utf-8")
    manifest = page[page.index("# nodes/node4.yaml\n"):]
    manifest = manifest[:manifest.index("```")]
    (done / "nodes" / "node4.yaml").write_text(manifest, encoding="utf-8")
    shutil.copy(ROOT / ".gitignore", done / ".gitignore")
    before = {n: tree(done / "output" / n) for n in ("node2", "node3")}
    assert ng(done, "validate").code == 0
    assert ng(done, "render", "--all").code == 0
    # node2 and node3 depend on node4 only through their gateways, which let the new fleet peer through:
    # no header, no other file changes.
    gateway = "infra/nginx/nginx.conf"
    address = re.search(r"^address: (\S+)$", manifest, re.M)
    assert address is not None
    for n in ("node2", "node3"):
        after = tree(done / "output" / n)
        assert set(after) == set(before[n])
        assert [f for f in after if after[f] != before[n][f]] == [".nodegen.sum", gateway]
        old, new = before[n][gateway][0].decode().splitlines(), after[gateway][0].decode().splitlines()
        added = [line for line in new if line not in old]
        assert added and all(address.group(1) in line for line in added), added
        assert all(line in new for line in old)
    audit = ng(done, "audit", "node4")
    assert audit.code == 0, audit.stdout
    assert "10 of 10 items pass" in audit.stdout
    for claim in ("exactly one gateway service", "infra/nginx/certs/fullchain.pem", "`on-demand`", "`dev`"):
        assert claim in page


def test_cli_reference_says_what_render_does_with_the_fleet_wide_files(done: Path) -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "naming nodes leaves them alone" not in page
    assert "every render keeps them current, whichever nodes are named" in page
    edit(done / "nodes" / "node3.yaml", "name: НОДА3", "name: НОДА-3")
    assert ng(done, "render", "node3").code == 0
    assert "НОДА-3" in (done / "output" / "FLEET.md").read_text(encoding="utf-8")
