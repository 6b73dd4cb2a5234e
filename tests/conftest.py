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


def xdist_group(item: pytest.Item) -> str | None:
    """Which worker queue a test joins when the suite runs in parallel (`pytest -n N --dist loadgroup`).

    The engine tests mostly wait on the standard's 30 s health-check intervals, so each bring-up runs on a
    worker of its own (its own daemon and network namespace, see tests/engine/daemon.py) while the other
    workers run the CPU-bound tests. The end-to-end tests share one session of loopback servers: one queue.
    """
    parts = Path(str(item.path)).relative_to(ROOT / "tests").parts
    if parts[0] == "e2e":
        return "e2e"
    if parts[0] != "engine":
        return None
    if not {"engine", "bare_engine"} & set(getattr(item, "fixturenames", ())):
        return None  # reads files only
    module = Path(parts[-1]).stem
    callspec = getattr(item, "callspec", None)  # a module's node fixture runs once per node: one queue each
    return f"engine-{module}-{callspec.id}" if callspec is not None else f"engine-{module}"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
