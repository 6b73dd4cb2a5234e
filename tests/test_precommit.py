"""The pre-commit hooks the project ships, run by the real pre-commit in a throwaway Git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, invoke
from tests.test_output import edit

pytestmark = pytest.mark.slow  # pre-commit builds a virtual environment with nodegen in it
# build_templates.py: pyproject's build step (it compiles the templates); MANIFEST.in brings it into an sdist.
SHIPPED = [".pre-commit-hooks.yaml", "pyproject.toml", "README.md", "build_templates.py", "MANIFEST.in", "nodegen",
           "templates", "schema"]


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                          timeout=120).stdout


def _hook_repo(tmp: Path) -> str:
    """The project as it is in the working tree, committed in a repository of its own: its file:// URL and rev."""
    repo = tmp / "nodegen"
    repo.mkdir()
    for name in SHIPPED:
        src = ROOT / name
        if src.is_dir():
            skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "__jinjacache__")
            shutil.copytree(src, repo / name, ignore=skip)
        else:
            shutil.copy(src, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hooks")
    return git(repo, "rev-parse", "HEAD").strip()


def _fleet_repo(tmp: Path, rev: str) -> Path:
    ws = tmp / "fleet"
    shutil.copytree(ROOT / "nodes", ws / "nodes")
    assert invoke("-C", str(ws), "render", "--all").code == 0
    config = {"repos": [{"repo": (tmp / "nodegen").as_uri(), "rev": rev,
                         "hooks": [{"id": "nodegen-validate"}, {"id": "nodegen-check"}]}]}
    (ws / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (ws / ".gitignore").write_text(".nodegen-cache/\n", encoding="utf-8")
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "fleet")
    return ws


def precommit(ws: Path, home: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("pre-commit")
    if binary is None:
        pytest.fail("pre-commit is a test dependency (pip install -e '.[test]')")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NODEGEN_NO_CACHE": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([binary, "run", "--all-files"], cwd=ws, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def test_the_hooks_file_declares_both_hooks() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}
    assert set(hooks) == {"nodegen-validate", "nodegen-check"}
    assert all(h["language"] == "python" and h["pass_filenames"] is False for h in hooks.values())


def test_pre_commit_runs_the_hooks(tmp_path: Path) -> None:
    rev = _hook_repo(tmp_path)
    ws = _fleet_repo(tmp_path, rev)
    home = tmp_path / "pre-commit-home"
    clean = precommit(ws, home)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "nodegen validate" in clean.stdout and "nodegen check" in clean.stdout
    assert clean.stdout.count("Passed") == 2

    compose = ws / "output" / "node2" / "docker-compose.all.yml"
    compose.write_text(compose.read_text(encoding="utf-8") + "# tuned\n", encoding="utf-8")
    git(ws, "add", "-A")
    stale = precommit(ws, home)
    assert stale.returncode == 1
    assert "node2/docker-compose.all.yml: stale" in stale.stdout
    git(ws, "checkout", "--", ".")
    git(ws, "reset", "-q", "--hard")

    edit(ws / "nodes" / "fleet.yaml", "    port: 7002\n", "    port: 9555\n")
    git(ws, "add", "-A")
    broken = precommit(ws, home)
    assert broken.returncode == 1
    assert "error[port-class] agents-service: port 9555" in broken.stdout
