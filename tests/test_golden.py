"""Golden files: each fixture fleet renders exactly tests/golden/<fleet>/; the shipped fleet, exactly output/.

The golden files change only through `python tests/regen_golden.py`, run by hand and reviewed as a diff.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke
from tests.regen_golden import FLEETS, GOLDEN, fleet_names, render_fleet


def golden_differences(files: dict[str, str], folder: Path) -> list[str]:
    """Missing, extra and different files between a render and a golden folder, one line each."""
    disk = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}
    report = [f"missing from golden: {rel}" for rel in sorted(set(files) - set(disk))]
    report += [f"extra in golden: {rel}" for rel in sorted(set(disk) - set(files))]
    for rel in sorted(set(files) & set(disk)):
        old = disk[rel].read_bytes().decode("utf-8", errors="replace")
        if old != files[rel]:
            first = next(difflib.unified_diff(old.splitlines(), files[rel].splitlines(), lineterm="", n=0), "")
            hunk = list(difflib.unified_diff(old.splitlines(), files[rel].splitlines(), lineterm="", n=0))[2:5]
            report.append(f"different: {rel}{' ' if first else ''}" + " | ".join(hunk))
    return report


@pytest.mark.parametrize("name", fleet_names())
def test_fixture_fleet_matches_golden(name: str) -> None:
    report = golden_differences(render_fleet(name), GOLDEN / name)
    assert report == [], "\n".join([*report, f"after a deliberate change: python tests/regen_golden.py {name}"])


def test_there_are_at_least_three_fixture_fleets() -> None:
    assert {"minimal", "multi", "monitoring"} <= set(fleet_names())


def test_no_golden_folder_without_a_fixture_fleet() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == fleet_names()


def test_fixture_fleets_cover_what_they_are_for() -> None:
    minimal = render_fleet("minimal")
    assert sorted({rel.split("/")[0] for rel in minimal}) == ["solo"]
    multi = render_fleet("multi")
    assert sorted({rel.split("/")[0] for rel in multi}) == ["alpha", "beta", "kubernetes", "swarm"]
    stack = multi["swarm/stack.yml"]
    assert "  beta-search-service:\n    image: \"registry.multi.example/search-service:1.0.4\"" in stack
    assert 'SEARCH_SERVICE_URL: "https://beta.multi.example:8443/api/search"' in multi["alpha/docker-compose.all.yml"]
    assert "location ~ ^/ws/chat/(presence|rooms)(/.*)?$ {" in multi["alpha/infra/nginx/nginx.conf"]
    assert '"127.0.0.1:18080:8080/tcp"' in multi["beta/docker-compose.all.yml"]
    monitoring = render_fleet("monitoring")
    assert 'targets: ["swapper:8891"]' in monitoring["watch/infra/prometheus/prometheus.yml"]
    assert '"127.0.0.1:3000:3000/tcp"' in monitoring["watch/docker-compose.all.yml"]


def test_shipped_fleet_golden_is_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODEGEN_NO_CACHE", "1")
    result = invoke("-C", str(ROOT), "check", "--all")
    assert (result.code, result.stderr) == (0, ""), result.stderr


def test_fixture_fleets_validate() -> None:
    for name in fleet_names():
        result = invoke("-C", str(FLEETS / name), "validate")
        assert (name, result.code, result.stderr) == (name, 0, "")


# --- the comparison helper itself ------------------------------------------------------------------

def test_golden_differences_reports_missing_extra_and_different(tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "same.yml").write_text("a\n", encoding="utf-8")
    (tmp_path / "n" / "changed.yml").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "n" / "old.yml").write_text("x\n", encoding="utf-8")
    files = {"n/same.yml": "a\n", "n/changed.yml": "a\nc\n", "n/new.yml": "y\n"}
    assert golden_differences(files, tmp_path) == [
        "missing from golden: n/new.yml",
        "extra in golden: n/old.yml",
        "different: n/changed.yml @@ -2 +2 @@ | -b | +c",
    ]
    assert golden_differences({"n/same.yml": "a\n"}, tmp_path / "n" / "nothing") == ["missing from golden: n/same.yml"]
