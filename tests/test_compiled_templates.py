"""Compiled templates (shipped by the install, or kept in a workspace's cache) are used only while current."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from nodegen import templating
from nodegen.errors import UsageError
from nodegen.templating import COMPILED_FOLDER, CompiledTemplates, compile_all, precompile, signature
from tests.conftest import ROOT


def _env(source: Path, folders: list[Path]) -> jinja2.Environment:
    """A fresh environment like nodegen's, reading templates from source, compiled ones from folders."""
    env = templating._environment(lambda name: templating._load_template(name, source))
    env.bytecode_cache = CompiledTemplates(folders, signature(env))
    return env


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("compiled a template that had a current compiled copy")

    monkeypatch.setattr(jinja2.Environment, "_compile", refuse)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "a.txt.j2").write_text("{{ x | q }}\n")
    return folder


def test_the_install_step_compiles_every_shipped_template_and_a_run_uses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = compile_all(ROOT / "templates", tmp_path / COMPILED_FOLDER)
    assert names == sorted(p.name for p in (ROOT / "templates").glob("*.j2"))
    assert len(list((tmp_path / COMPILED_FOLDER).glob("*.cache"))) == len(names)
    env = _env(ROOT / "templates", [tmp_path / COMPILED_FOLDER])
    _no_compiling(monkeypatch)
    assert precompile(env, ROOT / "templates") == names


def test_compiled_and_freshly_compiled_templates_render_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nodegen.pipeline import load_fleet
    from nodegen.workspace import Workspace

    fleet = load_fleet(Workspace(ROOT))
    compile_all(ROOT / "templates", tmp_path / COMPILED_FOLDER)
    fleet._templates_ready = True  # keep the environment's cache as set here
    outputs = []
    for folders in ([], [tmp_path / COMPILED_FOLDER]):
        monkeypatch.setattr(templating, "_ENV", None)
        env = templating.environment()
        env.bytecode_cache = CompiledTemplates(folders, signature(env)) if folders else None
        if folders:
            _no_compiling(monkeypatch)
        fleet._rendered.clear()
        outputs.append({n: fleet.render(n) for n in fleet.node_ids})
    assert outputs[0] == outputs[1] and outputs[0]


def test_a_changed_template_is_compiled_again_and_replaces_the_stale_copy(source: Path, tmp_path: Path) -> None:
    folder = tmp_path / COMPILED_FOLDER
    assert _env(source, [folder]).get_template("a.txt.j2").render(x="v") == '"v"\n'
    (cached,) = folder.glob("*.cache")
    before = cached.read_bytes()
    (source / "a.txt.j2").write_text("changed {{ x }}\n")
    assert _env(source, [folder]).get_template("a.txt.j2").render(x="v") == "changed v\n"
    assert cached.read_bytes() != before


def test_the_key_holds_the_jinja_version_and_the_environment(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(source, [])
    base = signature(env)
    env.trim_blocks = False
    assert signature(env) != base
    env.trim_blocks = True
    env.filters["extra"] = str
    assert signature(env) != base
    del env.filters["extra"]
    assert signature(env) == base
    monkeypatch.setattr(jinja2, "__version__", "0.0-other")
    assert signature(env) != base
    keys = {CompiledTemplates([], s).get_cache_key("a.txt.j2") for s in (base, signature(env))}
    assert len(keys) == 2


def test_a_corrupt_compiled_copy_is_ignored(source: Path, tmp_path: Path) -> None:
    folder = tmp_path / COMPILED_FOLDER
    _env(source, [folder]).get_template("a.txt.j2")
    (cached,) = folder.glob("*.cache")
    for junk in (b"", cached.read_bytes()[:20], b"\x00" * 64):
        cached.write_bytes(junk)
        assert _env(source, [folder]).get_template("a.txt.j2").render(x="w") == '"w"\n'


def test_the_first_folder_that_cannot_be_written_is_passed_over(source: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be\n")
    workspace = tmp_path / "workspace"
    assert _env(source, [blocked / COMPILED_FOLDER, workspace]).get_template("a.txt.j2").render(x=1) == '"1"\n'
    assert len(list(workspace.glob("*.cache"))) == 1


def test_a_run_reads_the_installed_copies_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    installed = templating.installed_folder()
    assert installed.parent == (ROOT / "templates").resolve()
    monkeypatch.setattr(templating, "_ENV", None)
    templating.use_bytecode_cache(tmp_path / "cache")
    cache = templating.environment().bytecode_cache
    assert isinstance(cache, CompiledTemplates) and cache.folders == [installed, tmp_path / "cache"]


def test_a_checkout_run_without_installing_gets_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "_TEMPLATES", None)
    monkeypatch.setattr(templating, "find_spec", lambda name: None)  # what a plain `python -m nodegen` in a clone sees
    with pytest.raises(UsageError, match=r"not installed.*pip install -e \."):
        templating.templates_root()
