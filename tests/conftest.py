"""Shared fixtures: the repository root, throwaway workspaces, and the CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from nodegen.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# `pytest --hypothesis-profile=long`: the property tests' long run (they read the profile's name).
settings.register_profile("long", deadline=None, max_examples=2000)


def require_tool(name: str, found: bool) -> None:
    """Skip when a real tool is missing locally; in CI a missing tool fails the run."""
    if found:
        return
    if IN_CI:
        pytest.fail(f"{name} is required in CI (tests/run.sh installs it)")
    pytest.skip(f"{name} not installed")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the shipped fleet's manifests in a scratch workspace."""
    shutil.copytree(ROOT / "nodes", tmp_path / "nodes")
    return tmp_path


@dataclass
class Run:
    """What one CLI invocation printed and returned."""

    code: int
    stdout: str
    stderr: str


def invoke(*args: str) -> Run:
    """Run nodegen's main() in-process, exactly as the console script does; a traceback fails the test."""
    runner = CliRunner()
    with runner.isolation() as streams:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Run(code, out.decode("utf-8"), err.decode("utf-8"))


@pytest.fixture
def run() -> Callable[..., Run]:
    return invoke
