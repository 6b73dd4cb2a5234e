"""The standard's migration rules for a folder of SQL files: names, numbering, header, transaction, rollback.

Rollback files are named NNN_rollback.sql, as the header line "Rollback: See 007_rollback.sql" of the
standard's example says; each needs the migration it undoes, a `-- Migration: NNN` line and its own
BEGIN; ... COMMIT;.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from nodegen.problems import Problem
from nodegen.record import record

RULES: dict[str, str] = {
    "migration-name": "migration files are named NNN_description.sql (three digits, lowercase words joined by _)",
    "migration-sequence": "migration numbers start at 001 and follow each other without gaps or duplicates",
    "migration-header": "each migration opens with -- Migration, Description, Date, Author and Rollback lines",
    "migration-transaction": "the SQL is one transaction: BEGIN; first, COMMIT; last, none in between",
    "migration-rollback": "each migration has its NNN_rollback.sql, and each rollback file a migration",
}
HEADER_KEYS = ("Migration", "Description", "Date", "Author", "Rollback")
NAME = re.compile(r"(?P<number>[0-9]{3})_(?P<description>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql", re.ASCII)
HEADER_LINE = re.compile(r"--\s*(?P<key>[A-Za-z]+):[ \t]*(?P<value>.*?)\s*$")
TRANSACTION = re.compile(r"(BEGIN|START TRANSACTION|COMMIT|ROLLBACK)\s*;", re.I)  # plpgsql bodies end with END;
MAX_BYTES = 5 * 1024 * 1024


@record
class SqlFile:
    """One file of the folder, read once."""

    path: Path
    display: str
    number: str
    rollback: bool
    lines: tuple[str, ...]


def lint_folder(folder: Path, display: str) -> tuple[list[Problem], int, int]:
    """Every problem of the folder's migrations, and how many migrations and rollback files it holds."""
    problems: list[Problem] = []
    migrations: dict[str, list[SqlFile]] = {}
    rollbacks: dict[str, SqlFile] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix == ".sql"):
        shown = f"{display.rstrip('/')}/{path.name}"
        sql = _read(path, shown, problems)
        if sql is None:
            continue
        if sql.rollback:
            rollbacks[sql.number] = sql
        else:
            migrations.setdefault(sql.number, []).append(sql)
    problems += _sequence(migrations)
    for number, files in migrations.items():
        for sql in files:
            problems += check_header(sql) + check_transaction(sql)
        if number not in rollbacks:
            first = files[0]
            problems.append(Problem(first.display, 1, 1, "migration-rollback",
                                    f"no rollback file: add {number}_rollback.sql"))
    for number, sql in rollbacks.items():
        problems += _rollback_file(sql, number in migrations)
    count = sum(len(files) for files in migrations.values())
    return sorted(problems), count, len(rollbacks)


def _read(path: Path, shown: str, problems: list[Problem]) -> SqlFile | None:
    match = NAME.fullmatch(path.name)
    if match is None:
        problems.append(Problem(shown, 1, 1, "migration-name",
                                f"{path.name!r} is not NNN_description.sql (e.g. 007_create_agents_tables.sql)"))
        return None
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
            raise OSError("not a regular file of at most 5 MiB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(shown, 1, 1, "migration-name", f"cannot read: {exc}"))
        return None
    rollback = match["description"] == "rollback"
    return SqlFile(path, shown, match["number"], rollback, tuple(text.splitlines()))


def _sequence(migrations: dict[str, list[SqlFile]]) -> list[Problem]:
    problems: list[Problem] = []
    previous = 0
    for number in sorted(migrations):
        first, *taken_twice = migrations[number]
        problems += [Problem(extra.display, 1, 1, "migration-sequence",
                             f"number {number} is taken twice (also {first.path.name})") for extra in taken_twice]
        value = int(number)
        if previous == 0 and value != 1:
            problems.append(Problem(first.display, 1, 1, "migration-sequence",
                                    f"numbering starts at 001, not {number}"))
        elif value != previous + 1 and previous != 0:
            gap = f"{previous + 1:03d}" + (f"-{value - 1:03d} are" if value - 1 > previous + 1 else " is")
            problems.append(Problem(first.display, 1, 1, "migration-sequence",
                                    f"{number} follows {previous:03d}: {gap} missing"))
        previous = value
    return problems


def _header(sql: SqlFile) -> dict[str, tuple[int, int, str]]:
    """Key -> (line, col of the value, value) from the comment block that opens the file."""
    found: dict[str, tuple[int, int, str]] = {}
    for i, line in enumerate(sql.lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = HEADER_LINE.match(line)
        if match and match["key"] in HEADER_KEYS and match["key"] not in found:
            found[match["key"]] = (i, match.start("value") + 1, match["value"])
    return found


def check_header(sql: SqlFile) -> list[Problem]:
    header = _header(sql)
    problems = [Problem(sql.display, 1, 1, "migration-header", f"the header has no '-- {key}:' line")
                for key in HEADER_KEYS if key not in header]
    for key, (line, col, value) in header.items():
        message = _header_value(sql.number, key, value)
        if message:
            problems.append(Problem(sql.display, line, col, "migration-header", message))
    return problems


def _header_value(number: str, key: str, value: str) -> str | None:
    if not value:
        return f"'{key}:' has no value"
    if key == "Migration" and value != number:
        return f"Migration: {value} does not match the file's number {number}"
    if key == "Date":
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            return f"Date: {value} is not YYYY-MM-DD"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"Date: {value} is not a calendar date"
    if key == "Rollback" and f"{number}_rollback.sql" not in value:
        return f"Rollback: must name {number}_rollback.sql"
    return None


def check_transaction(sql: SqlFile) -> list[Problem]:
    """BEGIN; opens the SQL, COMMIT; closes it, and no other transaction statement stands on its own line."""
    statements = [(i, line.strip()) for i, line in enumerate(sql.lines, 1)
                  if line.strip() and not line.strip().startswith("--")]
    if not statements:
        return [Problem(sql.display, 1, 1, "migration-transaction", "no SQL: expected BEGIN; ... COMMIT;")]
    problems: list[Problem] = []
    first_line, first = statements[0]
    last_line, last = statements[-1]
    if first.upper() != "BEGIN;":
        problems.append(Problem(sql.display, first_line, _col(sql, first_line), "migration-transaction",
                                f"the SQL must start with BEGIN; (found {first[:40]!r})"))
    if last.upper() != "COMMIT;" or len(statements) == 1:
        problems.append(Problem(sql.display, last_line, _col(sql, last_line), "migration-transaction",
                                f"the SQL must end with COMMIT; (found {last[:40]!r})"))
    for line_no, text in statements[1:-1]:
        if TRANSACTION.fullmatch(text):
            problems.append(Problem(sql.display, line_no, _col(sql, line_no), "migration-transaction",
                                    f"{text} inside the migration splits its transaction"))
    return problems


def _col(sql: SqlFile, line_no: int) -> int:
    line = sql.lines[line_no - 1]
    return len(line) - len(line.lstrip()) + 1


def _rollback_file(sql: SqlFile, has_migration: bool) -> list[Problem]:
    problems: list[Problem] = []
    if not has_migration:
        problems.append(Problem(sql.display, 1, 1, "migration-rollback",
                                f"rollback file without a migration {sql.number}_<description>.sql"))
    header = _header(sql)
    if "Migration" not in header:
        problems.append(Problem(sql.display, 1, 1, "migration-header", "the header has no '-- Migration:' line"))
    else:
        line, col, value = header["Migration"]
        if value != sql.number:
            problems.append(Problem(sql.display, line, col, "migration-header",
                                    f"Migration: {value} does not match the file's number {sql.number}"))
    return problems + check_transaction(sql)
