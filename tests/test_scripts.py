"""The generated operations scripts: shellcheck clean, --help, and their behaviour against a stub docker and curl."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke, require_tool

OUTPUT = ROOT / "output"
NODES = ("node1", "node2", "node3")
SCRIPTS = sorted(OUTPUT.glob("*/scripts/*.sh"))

# A docker stand-in: logs every call, answers from environment variables.
STUB_DOCKER = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$STUB_LOG"
case "$1" in
    inspect)
        container=${!#}
        if [[ ",${STUB_STOPPED:-}," == *",$container,"* ]]; then echo false; else echo true; fi ;;
    exec)
        shift
        if [[ $1 == -i ]]; then shift; fi
        container=$1
        shift
        if [[ ",${STUB_FAILING:-}," == *",$container,"* ]]; then exit 1; fi
        case "$1" in
            pg_dump) echo "-- dump of ${!#}" ;;
            psql)
                if [[ " $* " == *" -At "* ]]; then printf '%s' "${STUB_APPLIED:-}"
                elif [[ " $* " != *" -c "* ]]; then cat >> "$STUB_SQL"; fi ;;
        esac ;;
    compose)
        if [[ -n ${STUB_FAIL_COMPOSE:-} && "$*" == *"$STUB_FAIL_COMPOSE"* ]]; then exit 1; fi ;;
esac
exit 0
"""

# A curl stand-in for the smoke tests: 200 (101 for a websocket upgrade) unless the URL matches STUB_CURL_FAIL.
STUB_CURL = r"""#!/usr/bin/env bash
printf '%s\n' "${!#}" >> "$STUB_CURL_LOG"
if [[ -n ${STUB_CURL_FAIL:-} && "${!#}" == *"$STUB_CURL_FAIL"* ]]; then printf 502; exit 22; fi
if [[ " $* " == *"Upgrade: websocket"* ]]; then printf 101; exit 28; fi
printf 200
"""


def test_every_node_has_its_scripts() -> None:
    for node in NODES:
        names = sorted(p.name for p in (OUTPUT / node / "scripts").iterdir())
        assert names == ["backup-db.cron", "backup-db.sh", "deploy.sh", "health-check.sh", "rollback.sh"], node
        for script in (OUTPUT / node / "scripts").glob("*.sh"):
            assert os.access(script, os.X_OK), script


@pytest.mark.tools
def test_scripts_are_shellcheck_clean() -> None:
    require_tool("shellcheck", shutil.which("shellcheck") is not None)
    proc = subprocess.run(["shellcheck", "--severity=style", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(SCRIPTS) == 12


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_help(script: Path) -> None:
    proc = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: scripts/{script.name}")
    assert f"({script.parent.parent.name}" in proc.stdout
    bad = subprocess.run(["bash", str(script), "--no-such-option"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "see --help" in bad.stderr


def secret_names(node: str) -> list[str]:
    lines = (OUTPUT / node / ".env.example").read_text(encoding="utf-8").splitlines()
    return [nxt.split("=", 1)[0] for line, nxt in pairwise(lines) if line.startswith("# secret:")]


def test_scripts_hold_no_secret_and_quote_manifest_values() -> None:
    for node in NODES:
        secrets = secret_names(node)
        assert "POSTGRES_PASSWORD" in secrets
        for script in (OUTPUT / node / "scripts").iterdir():
            text = script.read_text(encoding="utf-8")
            assert not [name for name in secrets if name in text], script
    deploy = (OUTPUT / "node1" / "scripts" / "deploy.sh").read_text(encoding="utf-8")
    assert "DOMAIN='gateway.daarion.city'" in deploy
    assert "PG_DB='daarion_memory'" in deploy


# --- running the scripts against stubs ----------------------------------------------------------------

class Node:
    """A copy of a rendered node folder with stub docker and curl on PATH."""

    def __init__(self, root: Path, stubs: Path) -> None:
        self.root = root
        self.stubs = stubs
        self.env = {
            **os.environ,
            "PATH": f"{stubs}:{os.environ['PATH']}",
            "DOCKER": str(stubs / "docker"),
            "STUB_LOG": str(stubs / "docker.log"),
            "STUB_SQL": str(stubs / "psql.sql"),
            "STUB_CURL_LOG": str(stubs / "curl.log"),
            "HEALTH_WAIT": "0",
        }

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(self.root / "scripts" / script), *args], capture_output=True, text=True,
                              env={**self.env, **env}, stdin=subprocess.DEVNULL, timeout=60)

    def log(self, name: str = "docker.log") -> list[str]:
        path = self.stubs / name
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture
def node(tmp_path: Path) -> Callable[[str], Node]:
    def make(node_id: str) -> Node:
        stubs = tmp_path / "stubs"
        stubs.mkdir(exist_ok=True)
        for name, text in (("docker", STUB_DOCKER), ("curl", STUB_CURL)):
            (stubs / name).write_text(text, encoding="utf-8")
            (stubs / name).chmod(0o755)
        root = tmp_path / node_id
        shutil.copytree(OUTPUT / node_id, root)
        return Node(root, stubs)
    return make


def test_health_check_all_healthy(node: Callable[[str], Node]) -> None:
    n = node("node2")
    proc = n.run("health-check.sh")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "CHECK", "STATUS"]
    assert lines[-1] == "11 of 11 services healthy"
    assert re.search(r"^stt-service +GET :8895/health", proc.stdout, re.M)
    assert re.search(r"^postgres +pg_isready -U postgres -d daarion_memory +healthy$", proc.stdout, re.M)
    assert "exec daarion-stt-service curl -fsS -o /dev/null http://localhost:8895/health" in n.log()


def test_health_check_reports_unhealthy_and_stopped(node: Callable[[str], Node]) -> None:
    n = node("node2")
    proc = n.run("health-check.sh", STUB_FAILING="daarion-redis", STUB_STOPPED="daarion-ocr-service")
    assert proc.returncode == 1
    rows = {line.split()[0]: line.split(None, 1)[1] for line in proc.stdout.splitlines()[1:-1]}
    assert rows["redis"].endswith("UNHEALTHY")
    assert rows["ocr-service"].endswith("not running")
    assert rows["nats"].endswith("healthy") and not rows["nats"].endswith("UNHEALTHY")
    assert proc.stdout.splitlines()[-1] == "9 of 11 services healthy"
    quiet = n.run("health-check.sh", "--quiet", STUB_FAILING="daarion-redis")
    assert quiet.returncode == 1
    assert [line.split()[0] for line in quiet.stdout.splitlines()] == ["redis"]


def test_health_check_named_services(node: Callable[[str], Node]) -> None:
    n = node("node2")
    proc = n.run("health-check.sh", "redis", STUB_FAILING="daarion-postgres")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[-1] == "1 of 1 services healthy"
    unknown = n.run("health-check.sh", "agents-service")
    assert unknown.returncode == 2
    assert "no service agents-service on node2" in unknown.stderr


def test_backup_writes_the_standard_file(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    backups = tmp_path / "backups"
    proc = n.run("backup-db.sh", BACKUP_DIR=str(backups))
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.parent == backups
    assert path.name.startswith("daarion_memory_") and path.suffix == ".sql"
    dt.datetime.strptime(path.stem[len("daarion_memory_"):], "%Y%m%d_%H%M%S")
    assert path.read_text(encoding="utf-8") == "-- dump of daarion_memory\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert "exec daarion-postgres pg_dump -U postgres --clean --if-exists daarion_memory" in n.log()


def test_failed_dump_leaves_nothing(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    backups = tmp_path / "backups"
    proc = n.run("backup-db.sh", BACKUP_DIR=str(backups), STUB_FAILING="daarion-postgres")
    assert proc.returncode == 1
    assert "pg_dump failed; no backup written" in proc.stderr
    assert list(backups.iterdir()) == []


def expected_retention(days: list[dt.date], daily: int, weekly: int) -> set[dt.date]:
    """The newest backup of each of the last `daily` days and of each of the last `weekly` ISO weeks."""
    newest_first = sorted(set(days), reverse=True)
    newest_of_week: dict[tuple[int, int], dt.date] = {}
    for day in newest_first:
        newest_of_week.setdefault(day.isocalendar()[:2], day)
    return set(newest_first[:daily]) | set(list(newest_of_week.values())[:weekly])


def test_retention_keeps_7_daily_and_4_weekly(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    backups = tmp_path / "backups"
    backups.mkdir()
    start = dt.date(2025, 9, 1)
    days = [start + dt.timedelta(days=i) for i in range(60)]
    for day in days:
        (backups / f"daarion_memory_{day:%Y%m%d}_030000.sql").write_text("x", encoding="utf-8")
    (backups / f"daarion_memory_{days[-1]:%Y%m%d}_010000.sql").write_text("older, same day", encoding="utf-8")
    (backups / "notes.sql").write_text("not a backup", encoding="utf-8")
    proc = n.run("backup-db.sh", "--prune-only", BACKUP_DIR=str(backups))
    assert proc.returncode == 0, proc.stderr
    left = sorted(p.name for p in backups.iterdir())
    want = sorted(f"daarion_memory_{d:%Y%m%d}_030000.sql" for d in expected_retention(days, 7, 4))
    assert left == sorted([*want, "notes.sql"])
    # Oct 24-30 (Thu), plus Sundays Oct 19 and 12: ISO weeks 44 and 43 are already among the 7 days.
    assert len(want) == 9
    assert "retention: kept 9 backup(s), removed 52" in proc.stderr


def test_restore_needs_confirmation(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    dump = tmp_path / "daarion_memory_20251125_030000.sql"
    dump.write_text("SELECT 1;\n", encoding="utf-8")
    refused = n.run("backup-db.sh", "--restore", str(dump))
    assert refused.returncode == 1
    assert "not restoring without --yes" in refused.stderr
    assert not any("psql" in line for line in n.log())
    done = n.run("backup-db.sh", "--restore", str(dump), "--yes")
    assert done.returncode == 0, done.stderr
    assert (n.stubs / "psql.sql").read_text(encoding="utf-8") == "SELECT 1;\n"
    assert any("psql -X -q -v ON_ERROR_STOP=1 --single-transaction -U postgres -d daarion_memory" in line
               for line in n.log())


def write_env(root: Path, **values: str) -> None:
    lines = []
    for line in (root / ".env.example").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            value = values.pop(name, "s3cret-" + name.lower() if value == "CHANGE_ME" else value)
            lines.append(f"{name}={value}")
    lines += [f"{k}={v}" for k, v in values.items()]
    (root / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_env_check(node: Callable[[str], Node]) -> None:
    n = node("node1")
    missing = n.run("deploy.sh", "--check-env")
    assert missing.returncode == 1
    assert ".env is missing" in missing.stderr
    write_env(n.root, POSTGRES_PASSWORD="CHANGE_ME", GF_SECURITY_ADMIN_PASSWORD="")
    bad = n.run("deploy.sh", "--check-env")
    assert bad.returncode == 1
    assert "GF_SECURITY_ADMIN_PASSWORD is required and not set in .env" in bad.stderr
    assert "POSTGRES_PASSWORD still holds the placeholder CHANGE_ME" in bad.stderr
    assert "FAILED at step 2/9 (env check)" in bad.stderr
    assert "nothing was changed" in bad.stderr
    write_env(n.root, LOG_LEVEL="DEBUG")
    debug = n.run("deploy.sh", "--check-env")
    assert debug.returncode == 1
    assert "LOG_LEVEL=DEBUG is for dev nodes only" in debug.stderr
    write_env(n.root)
    ok = n.run("deploy.sh", "--check-env")
    assert ok.returncode == 0, ok.stderr
    assert ".env sets every required variable" in ok.stderr


def test_env_check_allows_debug_on_dev(node: Callable[[str], Node]) -> None:
    n = node("node2")
    write_env(n.root, LOG_LEVEL="DEBUG")
    proc = n.run("deploy.sh", "--check-env")
    assert proc.returncode == 0, proc.stderr


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def deployable(n: Node, tmp_path: Path) -> tuple[str, str]:
    """The node root as a clone of an origin with a newer revision to pull: (running, pulled) revisions."""
    migrations = n.root / "migrations"
    migrations.mkdir()
    for number, name in (("001", "create_agents"), ("002", "add_rooms")):
        (migrations / f"{number}_{name}.sql").write_text(f"BEGIN;\n-- {name}\nCOMMIT;\n", encoding="utf-8")
        (migrations / f"{number}_rollback.sql").write_text(f"BEGIN;\n-- undo {name}\nCOMMIT;\n", encoding="utf-8")
    (n.root / ".gitignore").write_text(".env\nbackups/\n", encoding="utf-8")
    git(n.root, "init", "-q", "-b", "main")
    git(n.root, "add", ".")
    git(n.root, "commit", "-q", "-m", "running")
    running = git(n.root, "rev-parse", "HEAD")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(n.root), str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    (work / "CHANGELOG").write_text("new\n", encoding="utf-8")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "new")
    git(work, "push", "-q", "origin", "main")
    git(n.root, "remote", "add", "origin", str(origin))
    write_env(n.root)
    return running, git(work, "rev-parse", "HEAD")


def state(n: Node) -> dict[str, str]:
    text = (n.root / "backups" / ".deploy-state").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines())


def test_deploy_runs_every_step(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    running, pulled = deployable(n, tmp_path)
    proc = n.run("deploy.sh", STUB_APPLIED="001\n")
    assert proc.returncode == 0, proc.stderr
    steps = [line.split("step ", 1)[1] for line in proc.stderr.splitlines() if " step " in line]
    assert steps == ["1/9 (code sync)", "2/9 (env check)", "3/9 (backup)", "4/9 (migrations)", "5/9 (build)",
                     "6/9 (start)", "7/9 (health checks)", "8/9 (smoke tests)", "9/9 (monitor)"]
    assert git(n.root, "rev-parse", "HEAD") == pulled
    st = state(n)
    assert st["PREVIOUS_REVISION"] == running and st["DEPLOYED_REVISION"] == pulled
    assert st["STATUS"] == "deployed" and st["MIGRATIONS_APPLIED"] == "002"
    assert Path(st["BACKUP_FILE"]).name.startswith("daarion_memory_")
    sql = (n.stubs / "psql.sql").read_text(encoding="utf-8")
    assert "-- add_rooms" in sql and "-- create_agents" not in sql  # 001 was applied before
    assert "INSERT INTO schema_migrations (version, file) VALUES (:'version', :'file');" in sql
    calls = n.log()
    tag = calls.index("image tag daarion-router:latest daarion-router:rollback")
    build = next(i for i, c in enumerate(calls) if c.startswith("compose") and c.endswith(" build"))
    assert tag < build
    urls = n.log("curl.log")
    assert "https://gateway.daarion.city:443/api/agents/health" in urls
    assert "https://gateway.daarion.city:443/ws/city/presence" in urls
    # gateway /health, the five public API routes, three websocket channels; fleet routes (router, devtools,
    # swapper) answer 403 to the node itself, so the smoke test leaves them out.
    assert len(urls) == 1 + 5 + 3
    assert not any("/api/router/" in url or "/api/swapper/" in url for url in urls)


def test_deploy_stops_at_the_first_failure(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    running, _ = deployable(n, tmp_path)
    proc = n.run("deploy.sh", STUB_CURL_FAIL="/api/city/")
    assert proc.returncode != 0
    assert "FAIL 502 /api/city/health (expected 200)" in proc.stderr
    assert "FAILED at step 8/9 (smoke tests)" in proc.stderr
    assert "to roll back: scripts/rollback.sh" in proc.stderr
    assert "step 9/9" not in proc.stderr
    assert state(n)["STATUS"] == "failed at 8/9 (smoke tests)"
    # Deploying again after the fix: rollback still means the revision and images from before the first try.
    (n.stubs / "docker.log").unlink()
    again = n.run("deploy.sh")
    assert again.returncode == 0, again.stderr
    assert "the last deploy did not finish: rollback still returns to" in again.stderr
    assert state(n)["PREVIOUS_REVISION"] == running
    assert not [c for c in n.log() if c.startswith("image tag")]


def test_rollback_returns_to_the_previous_revision(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    running, _ = deployable(n, tmp_path)
    assert n.run("deploy.sh", STUB_APPLIED="").returncode == 0
    refused = n.run("rollback.sh")
    assert refused.returncode == 1 and "not rolling back without --yes" in refused.stderr
    proc = n.run("rollback.sh", "--yes", "--undo-migrations")
    assert proc.returncode == 0, proc.stderr
    assert git(n.root, "rev-parse", "HEAD") == running
    sql = (n.stubs / "psql.sql").read_text(encoding="utf-8")
    assert sql.index("-- undo add_rooms") < sql.index("-- undo create_agents")
    calls = n.log()
    assert "image tag daarion-router:rollback daarion-router:latest" in calls
    assert any(c.startswith("compose") and c.endswith("up -d --no-build --remove-orphans") for c in calls)
    assert state(n)["STATUS"] == f"rolled back to {running}"
    both = n.run("rollback.sh", "--yes", "--restore-db", "--undo-migrations")
    assert both.returncode == 2


def test_rollback_restores_the_pre_deploy_backup(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    deployable(n, tmp_path)
    assert n.run("deploy.sh").returncode == 0
    backup = Path(state(n)["BACKUP_FILE"])
    (n.stubs / "psql.sql").unlink()
    proc = n.run("rollback.sh", "--yes", "--restore-db")
    assert proc.returncode == 0, proc.stderr
    assert (n.stubs / "psql.sql").read_text(encoding="utf-8") == backup.read_text(encoding="utf-8")
    stop = next(c for c in n.log() if c.startswith("compose") and " stop " in c)
    assert "postgres" not in stop.split(" stop ", 1)[1].split()
    assert "agents-service" in stop


def test_a_node_without_postgres_gets_no_backup(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "tests" / "fixtures" / "fleets" / "monitoring", ws)
    assert invoke("-C", str(ws), "render", "--all").code == 0
    scripts = ws / "output" / "watch" / "scripts"
    assert sorted(p.name for p in scripts.iterdir()) == ["deploy.sh", "health-check.sh", "rollback.sh"]
    deploy = subprocess.run(["bash", str(scripts / "deploy.sh"), "--help"], capture_output=True, text=True)
    steps = [line.split(".", 1)[1].split()[0] for line in deploy.stdout.splitlines() if re.match(r"  \d\. ", line)]
    assert steps == ["code", "env", "build", "start", "health", "smoke", "monitor"]
    rollback = (scripts / "rollback.sh").read_text(encoding="utf-8")
    assert "--restore-db" not in rollback and "PG_CONTAINER" not in rollback
    require_tool("shellcheck", shutil.which("shellcheck") is not None)
    proc = subprocess.run(["shellcheck", *map(str, scripts.glob("*.sh"))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
