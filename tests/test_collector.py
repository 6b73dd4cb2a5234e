"""nodegen.collector: the process pauses the cyclic collector, resumes it once the view is built, freezes at exit."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from nodegen import collector
from nodegen.pipeline import load_fleet
from nodegen.workspace import find_workspace
from tests.conftest import ROOT


@pytest.fixture
def restored() -> Iterator[None]:
    """Whatever a test does to the collector, the test process gets its own state back."""
    was = gc.isenabled()
    yield
    collector._paused = False
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_pause_then_resume_freezes_what_exists_and_collects_again(restored: None) -> None:
    gc.enable()
    gc.unfreeze()
    collector.pause()
    assert not gc.isenabled()
    kept = [[] for _ in range(100)]  # long-lived objects made while paused
    collector.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)
    collector.resume()  # once only: a second view built in the same process freezes nothing more
    assert gc.get_freeze_count() >= len(kept)


def test_resume_without_pause_leaves_a_callers_collector_alone(restored: None) -> None:
    gc.disable()
    gc.unfreeze()
    collector.resume()
    assert not gc.isenabled()  # someone else disabled it: not ours to turn on
    assert gc.get_freeze_count() == 0
    gc.enable()
    collector.pause()
    collector.resume()
    assert gc.isenabled()


def test_pause_leaves_a_disabled_collector_disabled_after_resume(restored: None) -> None:
    gc.disable()
    collector.pause()
    collector.resume()
    assert not gc.isenabled()


def test_building_the_view_resumes_a_paused_collector(restored: None) -> None:
    gc.enable()
    gc.unfreeze()
    collector.pause()
    fleet = load_fleet(find_workspace(ROOT))
    assert not gc.isenabled()  # loading and validating make long-lived objects: still paused
    assert fleet.resolved.nodes
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_the_console_script_is_the_process_entry() -> None:
    """pip's script imports nodegen.__main__ (which must not run on import) and calls its main()."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"nodegen": "nodegen.__main__:main"}
    code = ("import gc, sys; from nodegen.__main__ import main; assert gc.isenabled(); "
            "sys.argv = ['nodegen', '--version']; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("nodegen, version ")
