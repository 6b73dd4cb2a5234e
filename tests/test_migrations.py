"""`nodegen lint-migrations`: a good and a bad folder with exact expected lines, and single rules in isolation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodegen.migrations import RULES
from tests.conftest import ROOT, invoke

FOLDERS = ROOT / "tests" / "migrations"
HEADER = "-- Migration: {n}\n-- Description: d\n-- Date: 2025-11-25\n-- Author: a\n-- Rollback: See {n}_rollback.sql\n"


@pytest.fixture(autouse=True)
def _from_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # problems name files as the command line does


def test_good_folder_passes() -> None:
    result = invoke("lint-migrations", "tests/migrations/good")
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout == "ok: 2 migration(s) and 2 rollback file(s) in tests/migrations/good\n"


def test_bad_folder_reports_every_problem_where_it_is() -> None:
    result = invoke("lint-migrations", "tests/migrations/bad")
    assert result.code == 1
    assert result.stdout == (FOLDERS / "bad.expected").read_text(encoding="utf-8")
    assert result.stderr == "20 problem(s) in tests/migrations/bad\n"


def test_every_rule_is_exercised_and_documented() -> None:
    expected = (FOLDERS / "bad.expected").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert f"error[{rule}]" in expected, rule
        assert f"`{rule}`" in docs, rule


def test_github_format() -> None:
    result = invoke("--format", "github", "lint-migrations", "tests/migrations/bad")
    assert result.code == 1
    assert result.stdout.splitlines()[0] == (
        "::error file=tests/migrations/bad/002_add_index.sql,line=3,col=10,title=migration-header::"
        "Date: 25.11.2025 is not YYYY-MM-DD")


def test_missing_folder_is_a_usage_error() -> None:
    result = invoke("lint-migrations", "tests/migrations/none")
    assert result.code == 2
    assert "does not exist" in result.stderr


def lint(folder: Path, **files: str) -> list[str]:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    result = invoke("lint-migrations", str(folder))
    prefix = f"{folder.as_posix()}/"
    return [line.replace(prefix, "") for line in result.stdout.splitlines() if "error[" in line]


def migration(n: str, body: str = "BEGIN;\nSELECT 1;\nCOMMIT;\n") -> str:
    return HEADER.format(n=n) + body


def test_numbering_starts_at_001(tmp_path: Path) -> None:
    files = {"002_a.sql": migration("002"), "002_rollback.sql": "-- Migration: 002\nBEGIN;\nCOMMIT;\n"}
    assert lint(tmp_path, **files) == ["002_a.sql:1:1: error[migration-sequence] numbering starts at 001, not 002"]


def test_lowercase_transaction_statements_pass(tmp_path: Path) -> None:
    assert lint(tmp_path, **{"001_a.sql": migration("001", "begin;\nselect 1;\ncommit;\n"),
                             "001_rollback.sql": "-- Migration: 001\nbegin;\ncommit;\n"}) == []


SPLITS = "inside the migration splits its transaction"


@pytest.mark.parametrize(("body", "line"), [
    ("BEGIN;\nSELECT 1;\nROLLBACK;\nCOMMIT;\n", f"001_a.sql:8:1: error[migration-transaction] ROLLBACK; {SPLITS}"),
    ("BEGIN;\nSTART TRANSACTION;\nCOMMIT;\n",
     f"001_a.sql:7:1: error[migration-transaction] START TRANSACTION; {SPLITS}"),
    ("BEGIN;\n", "001_a.sql:6:1: error[migration-transaction] the SQL must end with COMMIT; (found 'BEGIN;')"),
])
def test_one_transaction(tmp_path: Path, body: str, line: str) -> None:
    assert lint(tmp_path, **{"001_a.sql": migration("001", body),
                             "001_rollback.sql": "-- Migration: 001\nBEGIN;\nCOMMIT;\n"}) == [line]
