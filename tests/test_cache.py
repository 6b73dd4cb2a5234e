"""The check cache may only ever answer 'current' when a full check would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodegen import cache
from nodegen.workspace import Workspace
from tests.conftest import invoke


@pytest.fixture
def clean(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NODEGEN_NO_CACHE", raising=False)
    assert invoke("-C", str(workspace), "render", "--all").code == 0
    assert invoke("-C", str(workspace), "check").code == 0  # a clean full check fills the cache
    assert (workspace / cache.CACHE_DIR / cache.CACHE_FILE).is_file()
    return workspace


def test_a_hit_answers_without_rendering(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_render(*_: object, **__: object) -> None:
        raise AssertionError("rendered despite a cache hit")

    monkeypatch.setattr("nodegen.pipeline.load_fleet", no_render)
    result = invoke("-C", str(clean), "check")
    assert result.code == 0 and result.stdout == "ok: output/ is current for kubernetes, node1, node2, node3, swarm\n"


@pytest.mark.parametrize("change", ["edit", "delete", "add", "chmod", "fleet-file"])
def test_any_change_in_output_falls_back_to_the_full_report(clean: Path, change: str) -> None:
    target = clean / "output" / "node2" / ".env.example"
    if change == "edit":
        target.write_text(target.read_text() + "# hand edit\n")
    elif change == "delete":
        target.unlink()
    elif change == "add":
        (clean / "output" / "node2" / "notes.txt").write_text("x\n")
    elif change == "chmod":
        target.chmod(0o755)  # Git keeps the executable bit only
    else:
        fleet_md = clean / "output" / "FLEET.md"
        fleet_md.write_text(fleet_md.read_text() + "x\n")
    result = invoke("-C", str(clean), "check")
    assert result.code == 1
    assert "stale" in result.stderr or "missing" in result.stderr or "extra" in result.stderr


def test_a_manifest_change_misses_the_cache(clean: Path) -> None:
    key = cache.fingerprint(Workspace(clean))
    fleet = clean / "nodes" / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace("port: 7002", "port: 7012"))
    assert cache.fingerprint(Workspace(clean)) != key
    assert invoke("-C", str(clean), "check").code == 1


def test_nodegen_code_is_part_of_the_key(clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = cache.fingerprint(Workspace(clean))
    extra = tmp_path / "changed_template.j2"
    extra.write_text("new\n")
    real = cache._code_files
    monkeypatch.setattr(cache, "_code_files", lambda: [*real(), extra])
    assert cache.fingerprint(Workspace(clean)) != key
    assert cache.clean_by_cache(Workspace(clean), None) is None


def test_a_corrupt_or_foreign_cache_is_ignored(clean: Path) -> None:
    path = clean / cache.CACHE_DIR / cache.CACHE_FILE
    path.write_text("{not json")
    assert cache.clean_by_cache(Workspace(clean), None) is None
    path.write_text(json.dumps({"key": "0" * 64, "nodes": {}}))
    assert cache.clean_by_cache(Workspace(clean), None) is None
    assert invoke("-C", str(clean), "check").code == 0


def test_the_cache_can_be_turned_off(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODEGEN_NO_CACHE", "1")
    assert cache.clean_by_cache(Workspace(clean), None) is None
    assert (clean / cache.CACHE_DIR / ".gitignore").read_text() == "*\n"


def test_library_versions_are_those_installed_and_part_of_the_key(
    clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from importlib import metadata

    listed = cache.library_versions()
    for lib in cache.LIBRARIES:
        version = metadata.version(lib)
        assert any(cache._normal(n).startswith(cache._normal(lib) + "_" + cache._normal(version)) for n in listed), lib
    key = cache.fingerprint(Workspace(clean))
    (tmp_path / "Jinja2-99.0.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cache.library_versions()[0] == "Jinja2-99.0.dist-info"
    assert cache.fingerprint(Workspace(clean)) != key


def test_compiled_modules_and_templates_are_not_part_of_the_key() -> None:
    files = cache._code_files()
    assert files and not any(part in cache.GENERATED for f in files for part in f.parts)
    assert {f.suffix for f in files} == {".py", ".j2"}
