"""The generated operations scripts: shellcheck clean, --help, and their behaviour against a stub docker and curl."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, invoke, require_tool

OUTPUT = ROOT / "output"
NODES = ("node1", "node2", "node3")
SCRIPTS = sorted(OUTPUT.glob("*/scripts/*.sh"))

# A docker stand-in: logs every call, answers from environment variables.
STUB_DOCKER = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$STUB_LOG"
# `container inspect` is answered as `inspect` (the scripts never let an image of the same name answer).
if [[ $1 == container && $2 == inspect ]]; then shift; fi
case "$1" in
    image)
        case "$2" in
            # An image's id follows its reference and the build generation (STUB_BUILD).
            inspect) printf 'sha256:%s\n' "$(printf '%s' "${!#}${STUB_BUILD:-}" | sha256sum | cut -c1-16)" ;;
            tag) if [[ -n ${STUB_GONE:-} && $4 == "$STUB_GONE" ]]; then exit 1; fi ;;
        esac ;;
    inspect)
        container=${!#}
        # The old stack of a switch-over (STUB_OLD: its containers, named <prefix><service>).
        if [[ -n ${STUB_OLD:-} ]]; then
            if [[ ",$STUB_OLD,${STUB_NEW:-}," != *",$container,"* ]]; then exit 1; fi
            case "$*" in
                *com.docker.compose.service*) echo "${container#daarion-}" ;;
                *com.docker.compose.project*)
                    if [[ ",$STUB_OLD," == *",$container,"* ]]; then echo "${STUB_OWNER:-microdao-daarion}"
                    else echo daarion; fi ;;
                *PortBindings*)
                    if [[ $container == daarion-gateway ]]; then echo '{"443/tcp":[{}],"80/tcp":[{}]}'; fi ;;
                *.Mounts*) if [[ ",${STUB_DATA:-}," == *",${container#daarion-},"* ]]; then echo v; fi ;;
                *.State.Running*) echo true ;;
            esac
            exit 0
        fi
        if [[ ",${STUB_STOPPED:-}," == *",$container,"* ]]; then echo false; else echo true; fi ;;
    ps) tr ',' '\n' <<< "${STUB_OLD:-}" | sed '/^$/d' ;;
    volume) if [[ ",${STUB_VOLUMES:-}," != *",${!#},"* ]]; then exit 1; fi ;;
    exec)
        shift
        if [[ $1 == -i ]]; then shift; fi
        while [[ $1 == -e ]]; do printf '%s is set: %s\n' "$2" "${!2:+yes}" >> "$STUB_LOG"; shift 2; done
        container=$1
        shift
        if [[ ",${STUB_FAILING:-}," == *",$container,"* ]]; then exit 1; fi
        case "$1" in
            pg_dump) echo "-- dump of ${!#}" ;;
            pg_dumpall) echo "-- every database of $container" ;;
            nginx) if [[ -n ${STUB_NGINX_BAD:-} && " $* " == *" -t "* ]]; then echo "[emerg] bad" >&2; exit 1; fi ;;
            psql)
                if [[ " $* " == *" -At "* ]]; then printf '%s' "${STUB_APPLIED:-}"
                elif [[ " $* " != *" -c "* ]]; then cat >> "$STUB_SQL"; fi ;;
        esac ;;
    run)
        # The ACME client: "issues" the certificate in STUB_ISSUED into the mounted /etc/letsencrypt.
        if [[ -n ${STUB_ISSUED:-} ]]; then
            for arg in "$@"; do
                if [[ $arg == *:/etc/letsencrypt ]]; then state=${arg%:/etc/letsencrypt}; fi
                if [[ $prev == -d ]]; then domain=$arg; fi
                prev=$arg
            done
            mkdir -p "$state/live/$domain"
            cp "$STUB_ISSUED"/*.pem "$state/live/$domain/"
        fi ;;
    compose)
        if [[ -n ${STUB_NGINX_BAD:-} && "$*" == *"--entrypoint nginx"* ]]; then exit 1; fi
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


# An rsync stand-in: logs its arguments and copies the file into STUB_RSYNC_DEST instead of the network.
STUB_RSYNC = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$STUB_RSYNC_LOG"
if [[ -n ${STUB_RSYNC_FAIL:-} ]]; then echo "rsync: connection refused" >&2; exit 10; fi
args=("$@")
cp -- "${args[-2]}" "$STUB_RSYNC_DEST/"
"""


def test_every_node_has_its_scripts() -> None:
    for node in NODES:
        names = sorted(p.name for p in (OUTPUT / node / "scripts").iterdir())
        assert names == ["backup-db.cron", "backup-db.sh", "certs.cron", "certs.sh", "deploy.sh", "health-check.sh",
                         "rollback.sh", "switch-over.sh"], node
        for script in (OUTPUT / node / "scripts").glob("*.sh"):
            assert os.access(script, os.X_OK), script


@pytest.mark.tools
def test_scripts_are_shellcheck_clean() -> None:
    require_tool("shellcheck", shutil.which("shellcheck") is not None)
    proc = subprocess.run(["shellcheck", "--severity=style", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(SCRIPTS) == 18


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
        # The backup passphrase is the scripts' own secret: read from .env when needed, never assigned a value.
        # switch-over.sh gives an adopted data folder .env's POSTGRES_PASSWORD (the old one stays otherwise).
        for script in (OUTPUT / node / "scripts").iterdir():
            text = script.read_text(encoding="utf-8")
            own = {"BACKUP_ENCRYPTION_KEY", *(["POSTGRES_PASSWORD"] if script.name == "switch-over.sh" else [])}
            assert not [name for name in secrets if name in text and name not in own], script
            assert not re.search(r"BACKUP_ENCRYPTION_KEY=[^$\s]", text), script
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
            "STUB_RSYNC_LOG": str(stubs / "rsync.log"),
            "STUB_RSYNC_DEST": str(stubs / "shipped"),
            "METRICS_DIR": str(root / "metrics"),
            "CRON_DIR": str(stubs / "cron.d"),  # never the machine's /etc/cron.d
        }
        (stubs / "shipped").mkdir(exist_ok=True)
        (stubs / "cron.d").mkdir(exist_ok=True)

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
        for name, text in (("docker", STUB_DOCKER), ("curl", STUB_CURL), ("rsync", STUB_RSYNC),
                           ("ssh", "#!/bin/sh\necho 'ssh must not run in tests' >&2\nexit 99\n")):
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
    proc = n.run("backup-db.sh", "--no-ship", BACKUP_DIR=str(backups))
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
    assert "FAILED at step 2/10 (env check)" in bad.stderr
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


def deployable(n: Node) -> None:
    """The node root as an operator leaves it before the first deploy: the synced tree, .env, migrations."""
    migrations = n.root / "migrations"
    migrations.mkdir()
    for number, name in (("001", "create_agents"), ("002", "add_rooms")):
        (migrations / f"{number}_{name}.sql").write_text(f"BEGIN;\n-- {name}\nCOMMIT;\n", encoding="utf-8")
        (migrations / f"{number}_rollback.sql").write_text(f"BEGIN;\n-- undo {name}\nCOMMIT;\n", encoding="utf-8")
    write_env(n.root, ACME_EMAIL="ops@example.invalid")


def sync(n: Node, changes: dict[str, str | None]) -> None:
    """What syncing a newer render does: files change (None: no longer generated), .nodegen.sum follows."""
    sums = n.root / ".nodegen.sum"
    lines = sums.read_text(encoding="utf-8").splitlines()
    entries = {line[66:]: line[:64] for line in lines if re.match(r"^[0-9a-f]{64}  ", line)}
    for path, text in changes.items():
        if text is None:
            entries.pop(path)
            continue
        (n.root / path).parent.mkdir(parents=True, exist_ok=True)
        (n.root / path).write_text(text, encoding="utf-8")
        entries[path] = hashlib.sha256(text.encode()).hexdigest()
    head = [line for line in lines if line.startswith("#")]
    sums.write_text("\n".join([*head, *(f"{h}  {p}" for p, h in sorted(entries.items()))]) + "\n", encoding="utf-8")


def releases(n: Node) -> list[str]:
    return sorted(p.name for p in (n.root / "releases").iterdir() if p.is_dir() and p.name[0].isdigit())


def release(n: Node, name: str) -> dict[str, str]:
    folder = n.root / "releases" / name
    return {p.name: p.read_text(encoding="utf-8").strip() for p in folder.iterdir() if p.is_file()}


def current(n: Node) -> str:
    return os.readlink(n.root / "releases" / "current")


def steps_of(stderr: str) -> list[str]:
    return [line.split("step ", 1)[1] for line in stderr.splitlines() if " step " in line]


def tree(root: Path) -> dict[str, bytes]:
    """The generated files of a node root (or a release's files/), by .nodegen.sum, with .nodegen.sum itself."""
    names = [line[66:] for line in (root / ".nodegen.sum").read_text(encoding="utf-8").splitlines()
             if re.match(r"^[0-9a-f]{64}  ", line)]
    return {name: (root / name).read_bytes() for name in [*names, ".nodegen.sum"]}


def test_deploy_runs_every_step(node: Callable[[str], Node], tmp_path: Path) -> None:
    n = node("node1")
    deployable(n)
    (n.root / "infra" / "nginx" / "certs" / "fullchain.pem").write_text("pem", encoding="utf-8")
    (n.root / "infra" / "nginx" / "certs" / "privkey.pem").write_text("pem", encoding="utf-8")
    cron = tmp_path / "cron.d"
    cron.mkdir()
    proc = n.run("deploy.sh", STUB_APPLIED="001\n", CRON_DIR=str(cron))
    assert proc.returncode == 0, proc.stderr
    assert steps_of(proc.stderr) == [
        "1/10 (files)", "2/10 (env check)", "3/10 (validate)", "4/10 (backup)", "5/10 (migrations)",
        "6/10 (build)", "7/10 (start)", "8/10 (health checks)", "9/10 (smoke tests)", "10/10 (monitor)"]
    [name] = releases(n)
    assert current(n) == name
    rel = release(n, name)
    assert rel["status"] == "deployed" and rel["previous"] == "" and rel["migrations"] == "002"
    assert Path(rel["backup"]).name.startswith("daarion_memory_")
    # The release holds a byte-identical copy of every generated file, and which image each reference ran.
    assert tree(n.root / "releases" / name / "files") == tree(n.root)
    images = dict(line.split() for line in rel["images.txt"].splitlines())
    compose = yaml.safe_load((n.root / "docker-compose.all.yml").read_text(encoding="utf-8"))
    pulled = {svc["image"] for svc in compose["services"].values() if "image" in svc}
    built = {f"daarion-{name}" for name, svc in compose["services"].items() if "build" in svc}
    assert set(images) == pulled | built and "daarion-router" in built and "prom/prometheus:v2.55.1" in pulled
    assert all(i.startswith("sha256:") for i in images.values())
    calls = n.log()
    order = [next(i for i, c in enumerate(calls) if want in c) for want in (
        "compose --project-directory", "exec daarion-gateway-nginx nginx -t -q -c /etc/nginx/nodegen/nginx.conf",
        "exec daarion-prometheus promtool check config /etc/prometheus/prometheus.yml",
        "up -d --remove-orphans", "exec daarion-gateway-nginx nginx -s reload -c /etc/nginx/nodegen/nginx.conf",
        "kill --signal HUP daarion-prometheus")]
    assert order == sorted(order), calls
    assert any(c.endswith("config -q") for c in calls)
    assert f"image tag daarion-router daarion-router:release-{name}" in calls
    sql = (n.stubs / "psql.sql").read_text(encoding="utf-8")
    assert "-- add_rooms" in sql and "-- create_agents" not in sql  # 001 was applied before
    assert "INSERT INTO schema_migrations (version, file) VALUES (:'version', :'file');" in sql
    urls = n.log("curl.log")
    assert "https://gateway.daarion.city:443/api/agents/health" in urls
    assert "https://gateway.daarion.city:443/ws/city/presence" in urls
    # gateway /health, the five public API routes, three websocket channels; fleet routes (router, devtools,
    # swapper) answer 403 to the node itself, so the smoke test leaves them out.
    assert len(urls) == 1 + 5 + 3
    assert not any("/api/router/" in url or "/api/swapper/" in url for url in urls)
    assert sorted(p.name for p in cron.iterdir()) == ["daarion-backup-db", "daarion-certs"]
    assert (cron / "daarion-certs").read_bytes() == (n.root / "scripts" / "certs.cron").read_bytes()


def test_deploy_applies_the_roles_to_a_running_postgres_before_the_rest_starts(node: Callable[[str], Node]) -> None:
    """The initdb script runs only on an empty data directory: deploy.sh runs it again (an adopted volume, a
    service added later), with postgres up and healthy first and before any other service starts."""
    n = node("node3")
    deployable(n)
    secret = "s3cret-synapse-pw"
    proc = n.run("deploy.sh", "--insecure", SYNAPSE_DB_PASSWORD=secret)
    assert proc.returncode == 0, proc.stderr
    calls = n.log()
    order = [next(i for i, c in enumerate(calls) if c.endswith(want)) for want in (
        "up -d --wait postgres", "exec -T postgres sh /docker-entrypoint-initdb.d/10-databases.sh",
        "exec -i daarion-postgres psql -X -q -v ON_ERROR_STOP=1 -U postgres -d daarion_memory -c "
        "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, file text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())",
        "build", "up -d --remove-orphans")]
    assert order == sorted(order), calls
    assert sum(c.endswith("10-databases.sh") for c in calls) == 1
    # The passwords stay in postgres' environment: none is on a command line.
    assert not any(secret in c for c in calls)
    assert "roles, schemas and databases: /docker-entrypoint-initdb.d/10-databases.sh applied" in proc.stderr


def test_deploy_runs_the_roles_script_exactly_where_one_is_rendered() -> None:
    assert all(("10-databases.sh" in (OUTPUT / name / "scripts" / "deploy.sh").read_text(encoding="utf-8"))
               == (OUTPUT / name / "infra" / "postgres" / "initdb" / "10-databases.sh").exists() for name in NODES)


def test_a_node_without_postgres_gets_no_backup(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "tests" / "fixtures" / "fleets" / "monitoring", ws)
    assert invoke("-C", str(ws), "render", "--all").code == 0
    scripts = ws / "output" / "watch" / "scripts"
    assert sorted(p.name for p in scripts.iterdir()) == ["certs.cron", "certs.sh", "deploy.sh", "health-check.sh",
                                                          "rollback.sh", "switch-over.sh"]
    deploy = subprocess.run(["bash", str(scripts / "deploy.sh"), "--help"], capture_output=True, text=True)
    steps = [line.split(".", 1)[1].split()[0] for line in deploy.stdout.splitlines() if re.match(r"  \d\. ", line)]
    assert steps == ["files", "env", "validate", "build", "start", "health", "smoke", "monitor"]
    rollback = (scripts / "rollback.sh").read_text(encoding="utf-8")
    assert "--restore-db" not in rollback and "PG_CONTAINER" not in rollback
    require_tool("shellcheck", shutil.which("shellcheck") is not None)
    proc = subprocess.run(["shellcheck", *map(str, scripts.glob("*.sh"))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def first_deploy(n: Node, **env: str) -> str:
    deployable(n)
    proc = n.run("deploy.sh", **env)
    assert proc.returncode == 0, proc.stderr
    return current(n)


def test_first_deploy_boots_on_a_bootstrap_certificate(node: Callable[[str], Node], tmp_path: Path) -> None:
    require_tool("openssl", shutil.which("openssl") is not None)
    n = node("node3")
    metrics = tmp_path / "metrics"
    first_deploy(n, METRICS_DIR=str(metrics))
    certs = n.root / "infra" / "nginx" / "certs"
    assert (certs / "privkey.pem").stat().st_mode & 0o777 == 0o600
    text = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName", "-in",
                           str(certs / "fullchain.pem")], capture_output=True, text=True, check=True).stdout
    assert "subject=CN = node3.daarion.city" in text and "DNS:node3.daarion.city" in text, text
    prom = (metrics / "nodegen_certificate.prom").read_text(encoding="utf-8")
    assert 'nodegen_certificate_self_signed{node="node3",domain="' in prom and prom.rstrip().endswith(" 1")
    expiry = int(re.search(r"nodegen_certificate_expiry_timestamp_seconds\{[^}]*\} (\d+)", prom)[1])
    days = (expiry - dt.datetime.now(dt.UTC).timestamp()) / 86400
    assert 29 < days <= 30
    # The certificate is made on the node; a second deploy keeps it.
    before = (certs / "fullchain.pem").read_bytes()
    assert n.run("deploy.sh", METRICS_DIR=str(metrics)).returncode == 0
    assert (certs / "fullchain.pem").read_bytes() == before


def test_deploy_change_rollback(node: Callable[[str], Node]) -> None:
    n = node("node1")
    first = first_deploy(n)
    original = tree(n.root)
    alerts = "infra/prometheus/alerts.yml"
    changed = (n.root / alerts).read_text(encoding="utf-8") + "# a changed rule\n"
    sync(n, {alerts: changed, "infra/nginx/new-route.conf": "# new\n", "docs/INFRASTRUCTURE.md": None})
    (n.stubs / "docker.log").unlink()
    proc = n.run("deploy.sh", STUB_BUILD="2")
    assert proc.returncode == 0, proc.stderr
    second = current(n)
    assert second != first and release(n, second)["previous"] == first
    assert not (n.root / "docs" / "INFRASTRUCTURE.md").exists()  # no longer generated: removed
    assert "removed docs/INFRASTRUCTURE.md (no longer generated)" in proc.stderr
    assert (n.root / "releases" / second / "files" / alerts).read_text(encoding="utf-8") == changed
    assert "kill --signal HUP daarion-prometheus" in n.log()
    images1 = dict(line.split() for line in release(n, first)["images.txt"].splitlines())
    images2 = dict(line.split() for line in release(n, second)["images.txt"].splitlines())
    assert images1["daarion-router"] != images2["daarion-router"]  # rebuilt
    (n.stubs / "docker.log").unlink()
    refused = n.run("rollback.sh")
    assert refused.returncode == 1 and "not rolling back without --yes" in refused.stderr
    back = n.run("rollback.sh", "--yes")
    assert back.returncode == 0, back.stderr
    assert tree(n.root) == original  # every generated file as it was, and nothing the change added
    assert not (n.root / "infra" / "nginx" / "new-route.conf").exists()
    assert current(n) == first
    assert release(n, second)["status"] == f"rolled back to {first}"
    calls = n.log()
    for ref, image in images1.items():
        assert f"image tag {image} {ref}" in calls
    up = next(i for i, c in enumerate(calls) if c.endswith("up -d --no-build --remove-orphans"))
    reload = calls.index("exec daarion-gateway-nginx nginx -s reload -c /etc/nginx/nodegen/nginx.conf")
    assert up < reload and "kill --signal HUP daarion-prometheus" in calls[up:]
    listing = n.run("rollback.sh", "--list").stdout.splitlines()
    assert listing[0].split()[:2] == [second, "rolled"] and listing[1].split()[:3] == ["*", first, "deployed"]
    # A release whose images are gone cannot be brought back silently.
    gone = n.run("rollback.sh", "--yes", STUB_GONE="daarion-router")
    assert gone.returncode == 1
    assert "image daarion-router (" in gone.stderr and "is no longer on this host" in gone.stderr


def test_deploy_refuses_a_tree_that_does_not_match_its_sums(node: Callable[[str], Node]) -> None:
    n = node("node1")
    deployable(n)
    conf = n.root / "infra" / "nginx" / "nginx.conf"
    conf.write_text(conf.read_text(encoding="utf-8") + "# hand edit\n", encoding="utf-8")
    proc = n.run("deploy.sh")
    assert proc.returncode == 1
    assert "the node root does not match .nodegen.sum" in proc.stderr
    assert "FAILED at step 1/10 (files)" in proc.stderr and "no container was changed" in proc.stderr
    assert not any(" up " in c for c in n.log())
    assert not (n.root / "releases").exists() or releases(n) == []


def test_deploy_validates_before_it_starts_anything(node: Callable[[str], Node]) -> None:
    n = node("node1")
    first = first_deploy(n)
    (n.stubs / "docker.log").unlink()
    proc = n.run("deploy.sh", STUB_NGINX_BAD="1")
    assert proc.returncode == 1
    assert "FAILED at step 3/10 (validate)" in proc.stderr
    assert not [c for c in n.log() if " up " in c or "reload" in c]
    assert current(n) == first
    # A gateway started before its folder was mounted cannot check the new files: a throwaway one does.
    (n.stubs / "docker.log").unlink()
    old_gateway = n.run("deploy.sh", STUB_NGINX_BAD="1", STUB_FAILING="daarion-gateway-nginx")
    assert old_gateway.returncode == 1 and "FAILED at step 3/10 (validate)" in old_gateway.stderr
    assert any("--entrypoint nginx gateway-nginx -t" in c for c in n.log())
    # nginx -t runs in a throwaway container when the gateway is not running.
    n.run("deploy.sh", STUB_STOPPED="daarion-gateway-nginx,daarion-prometheus")
    runs = [c for c in n.log() if " run --rm --no-deps -T --entrypoint " in c]
    assert any(c.endswith("gateway-nginx -t -q -c /etc/nginx/nodegen/nginx.conf") for c in runs), runs
    assert any(c.endswith("prometheus check config /etc/prometheus/prometheus.yml") for c in runs), runs


def test_deploy_stops_at_the_first_failure(node: Callable[[str], Node]) -> None:
    n = node("node1")
    first = first_deploy(n)
    proc = n.run("deploy.sh", STUB_CURL_FAIL="/api/city/")
    assert proc.returncode != 0
    assert "FAIL 502 /api/city/health (expected 200)" in proc.stderr
    assert "FAILED at step 9/10 (smoke tests)" in proc.stderr
    assert "to roll back: scripts/rollback.sh" in proc.stderr
    assert "step 10/10" not in proc.stderr
    failed = current(n)
    assert release(n, failed)["status"] == "failed at 9/10 (smoke tests)"
    # Deploying again after the fix: rollback still means the release from before the first try.
    again = n.run("deploy.sh")
    assert again.returncode == 0, again.stderr
    assert f"did not finish: rollback still returns to {first}" in again.stderr
    assert release(n, current(n))["previous"] == first


def prom_values(path: Path) -> dict[str, str]:
    """metric{labels} -> value of a textfile-collector file."""
    return dict(line.rsplit(" ", 1) for line in path.read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#"))


def test_deploy_and_rollback_write_their_metrics(node: Callable[[str], Node]) -> None:
    n = node("node1")
    first = first_deploy(n)
    metrics = n.root / "metrics" / "nodegen_deploy.prom"
    ok = prom_values(metrics)
    assert ok[f'nodegen_deploy_last_status{{node="node1",release="{first}"}}'] == "1"
    assert ok['nodegen_deploy_failures_total{node="node1"}'] == "0"
    succeeded = int(ok['nodegen_deploy_last_success_timestamp_seconds{node="node1"}'])
    assert succeeded == int(ok['nodegen_deploy_last_run_timestamp_seconds{node="node1"}']) > 0
    assert int(ok['nodegen_deploy_last_duration_seconds{node="node1"}']) >= 0
    failed = n.run("deploy.sh", STUB_CURL_FAIL="/api/city/")
    assert failed.returncode != 0
    bad = prom_values(metrics)
    assert bad[f'nodegen_deploy_last_status{{node="node1",release="{current(n)}"}}'] == "0"
    assert bad['nodegen_deploy_failures_total{node="node1"}'] == "1"
    assert bad['nodegen_deploy_last_success_timestamp_seconds{node="node1"}'] == str(succeeded)  # kept
    assert not (n.root / "metrics" / "nodegen_rollback.prom").exists()
    back = n.run("rollback.sh", "--yes")
    assert back.returncode == 0, back.stderr
    rolled = prom_values(n.root / "metrics" / "nodegen_rollback.prom")
    assert rolled[f'nodegen_rollback_last_status{{node="node1",release="{first}"}}'] == "1"
    assert rolled['nodegen_rollback_failures_total{node="node1"}'] == "0"
    gone = n.run("rollback.sh", "--yes", "--to", first, STUB_GONE="daarion-router")
    assert gone.returncode == 1
    again = prom_values(n.root / "metrics" / "nodegen_rollback.prom")
    assert again[f'nodegen_rollback_last_status{{node="node1",release="{first}"}}'] == "0"
    assert again['nodegen_rollback_failures_total{node="node1"}'] == "1"
    promtool = shutil.which("promtool")
    require_tool("promtool (apt install prometheus)", promtool is not None)
    assert promtool is not None
    for path in (metrics, n.root / "metrics" / "nodegen_rollback.prom"):  # the exposition format, linted
        checked = subprocess.run([promtool, "check", "metrics"], input=path.read_text(encoding="utf-8"),
                                 capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_one_deploy_at_a_time(node: Callable[[str], Node]) -> None:
    n = node("node1")
    deployable(n)
    (n.root / ".locks").mkdir()
    with open(n.root / ".locks" / "deploy.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for script, args in (("deploy.sh", ()), ("rollback.sh", ("--yes", "--to", "20260101T000000Z"))):
            proc = n.run(script, *args)
            assert proc.returncode in (1, 2), proc.stderr
        proc = n.run("deploy.sh")
        assert proc.returncode == 1
        assert "another deploy, rollback or switch-over holds" in proc.stderr
        assert not n.log() and not (n.root / "releases").exists()
    assert n.run("deploy.sh").returncode == 0


def test_rollback_of_a_dev_node_uses_the_dev_override(node: Callable[[str], Node]) -> None:
    n = node("node2")
    first_deploy(n)
    sync(n, {"infra/nginx/new-route.conf": "# new\n"})
    assert n.run("deploy.sh", STUB_BUILD="2").returncode == 0
    (n.stubs / "docker.log").unlink()
    assert n.run("rollback.sh", "--yes").returncode == 0, n.log()
    composes = [c for c in n.log() if c.startswith("compose")]
    assert composes and all(c.count(" -f ") == 2 and "docker-compose.dev.yml" in c for c in composes), composes


def test_rollback_undoes_migrations(node: Callable[[str], Node]) -> None:
    n = node("node1")
    first_deploy(n)
    sync(n, {"infra/nginx/new-route.conf": "# new\n"})
    assert n.run("deploy.sh", STUB_APPLIED="").returncode == 0
    (n.stubs / "psql.sql").unlink()
    proc = n.run("rollback.sh", "--yes", "--undo-migrations")
    assert proc.returncode == 0, proc.stderr
    sql = (n.stubs / "psql.sql").read_text(encoding="utf-8")
    assert sql.index("-- undo add_rooms") < sql.index("-- undo create_agents")
    both = n.run("rollback.sh", "--yes", "--restore-db", "--undo-migrations")
    assert both.returncode == 2


def test_rollback_restores_the_pre_deploy_backup(node: Callable[[str], Node]) -> None:
    n = node("node1")
    first_deploy(n)
    assert n.run("deploy.sh").returncode == 0
    backup = Path(release(n, current(n))["backup"])
    (n.stubs / "psql.sql").unlink()
    proc = n.run("rollback.sh", "--yes", "--restore-db")
    assert proc.returncode == 0, proc.stderr
    assert (n.stubs / "psql.sql").read_text(encoding="utf-8") == backup.read_text(encoding="utf-8")
    stop = next(c for c in n.log() if c.startswith("compose") and " stop " in c)
    assert "postgres" not in stop.split(" stop ", 1)[1].split()
    assert "agents-service" in stop


def test_rollback_needs_a_previous_release(node: Callable[[str], Node]) -> None:
    n = node("node1")
    first_deploy(n)
    proc = n.run("rollback.sh", "--yes")
    assert proc.returncode == 2
    assert "no release before the last deploy" in proc.stderr
    bad = n.run("rollback.sh", "--yes", "--to", "../../etc")
    assert bad.returncode == 2 and "is not a complete release" in bad.stderr


# --- backups: metrics, lock, encrypted shipping ---------------------------------------------------------

def metrics(n: Node) -> dict[str, float]:
    text = (n.root / "metrics" / "nodegen_backup.prom").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.split(" ")
            assert name.endswith('{node="node1",database="daarion_memory"}'), name
            out[name.split("{")[0]] = float(value)
    return out


def test_backup_writes_its_metrics_and_a_failure_is_not_swallowed(node: Callable[[str], Node]) -> None:
    n = node("node1")
    write_env(n.root, BACKUP_ENCRYPTION_KEY="k" * 32)
    ok = n.run("backup-db.sh")
    assert ok.returncode == 0, ok.stderr
    first = metrics(n)
    size = Path(ok.stdout.strip()).stat().st_size
    assert first["nodegen_backup_last_status"] == 1 and first["nodegen_backup_last_size_bytes"] == size
    assert first["nodegen_backup_last_success_timestamp_seconds"] == first["nodegen_backup_last_run_timestamp_seconds"]
    assert first["nodegen_backup_last_shipped_timestamp_seconds"] > 0
    assert first["nodegen_backup_last_duration_seconds"] >= 0
    failed = n.run("backup-db.sh", STUB_FAILING="daarion-postgres")
    assert failed.returncode == 1
    assert "backup FAILED (exit status 1)" in failed.stderr
    after = metrics(n)
    assert after["nodegen_backup_last_status"] == 0
    # The last good backup stays what it was: BackupTooOld measures from it.
    success = "nodegen_backup_last_success_timestamp_seconds"
    assert after[success] == first[success]
    assert after["nodegen_backup_last_size_bytes"] == size
    cron = (n.root / "scripts" / "backup-db.cron").read_text(encoding="utf-8").splitlines()
    [line] = [c for c in cron if c and not c.startswith("#") and "=" not in c.split()[0]]
    assert line.startswith("0 3 * * * root set -o pipefail; '/opt/microdao-daarion/scripts/backup-db.sh' 2>&1 | logger")
    assert "CRON_TZ=UTC" in cron


def test_backups_are_shipped_encrypted_to_the_backup_node(node: Callable[[str], Node]) -> None:
    require_tool("gpg", shutil.which("gpg") is not None)
    n = node("node1")
    key = "correct horse battery staple"
    write_env(n.root, BACKUP_ENCRYPTION_KEY=key)
    proc = n.run("backup-db.sh")
    assert proc.returncode == 0, proc.stderr
    local = Path(proc.stdout.strip())
    [call] = n.log("rsync.log")
    assert call.endswith(f"-- {n.root}/backups/outgoing/{local.name}.gpg "
                         "root@10.0.0.2:/opt/microdao-daarion/backups/received/node1/"), call
    assert "-e ssh -o BatchMode=yes" in call
    shipped = n.stubs / "shipped" / f"{local.name}.gpg"
    sealed = shipped.read_bytes()
    assert b"dump of daarion_memory" not in sealed and key.encode() not in sealed
    assert not (n.root / "backups" / "outgoing" / shipped.name).exists()
    plain = subprocess.run(["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", key,
                            "--homedir", str(n.stubs), "--decrypt", str(shipped)], capture_output=True, check=True)
    assert plain.stdout == local.read_bytes()
    # The received file restores on the backup node (or anywhere with the key): psql gets the plain dump.
    (n.stubs / "psql.sql").unlink(missing_ok=True)
    restored = n.run("backup-db.sh", "--restore", str(shipped), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert (n.stubs / "psql.sql").read_bytes() == local.read_bytes()
    wrong = n.run("backup-db.sh", "--restore", str(shipped), "--yes", BACKUP_ENCRYPTION_KEY="wrong")
    assert wrong.returncode != 0


def test_a_failed_shipment_fails_the_backup(node: Callable[[str], Node]) -> None:
    n = node("node1")
    write_env(n.root, BACKUP_ENCRYPTION_KEY="k" * 32)
    proc = n.run("backup-db.sh", STUB_RSYNC_FAIL="1")
    assert proc.returncode != 0
    assert "backup FAILED" in proc.stderr
    assert metrics(n)["nodegen_backup_last_status"] == 0
    assert metrics(n)["nodegen_backup_last_shipped_timestamp_seconds"] == 0
    assert len(list((n.root / "backups").glob("daarion_memory_*.sql"))) == 1  # the local backup is kept
    nokey = n.run("backup-db.sh", BACKUP_ENCRYPTION_KEY="CHANGE_ME")
    assert nokey.returncode != 0 and "BACKUP_ENCRYPTION_KEY is not set" in nokey.stderr
    local = n.run("backup-db.sh", "--no-ship", BACKUP_ENCRYPTION_KEY="CHANGE_ME")
    assert local.returncode == 0, local.stderr


def test_one_backup_at_a_time(node: Callable[[str], Node]) -> None:
    n = node("node1")
    (n.root / ".locks").mkdir()
    with open(n.root / ".locks" / "backup.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = n.run("backup-db.sh", "--no-ship", LOCK_WAIT="0")
        assert proc.returncode == 1
        assert "another backup still holds" in proc.stderr
        assert not any("pg_dump" in c for c in n.log())
        assert metrics(n)["nodegen_backup_last_status"] == 0


def test_the_backup_node_prunes_what_it_receives(node: Callable[[str], Node]) -> None:
    n = node("node2")
    assert "--prune-received" in (n.root / "scripts" / "backup-db.cron").read_text(encoding="utf-8")
    received = n.root / "backups" / "received" / "node1"
    received.mkdir(parents=True)
    start = dt.date(2025, 9, 1)
    days = [start + dt.timedelta(days=i) for i in range(60)]
    for day in days:
        (received / f"daarion_memory_{day:%Y%m%d}_030000.sql.gpg").write_text("x", encoding="utf-8")
    proc = n.run("backup-db.sh", "--prune-received")
    assert proc.returncode == 0, proc.stderr
    left = sorted(p.name for p in received.iterdir())
    assert left == sorted(f"daarion_memory_{d:%Y%m%d}_030000.sql.gpg" for d in expected_retention(days, 7, 4))
    assert "(received from node1)" in proc.stderr
    assert not n.log("rsync.log")  # the backup node keeps its own backups
    assert "SHIP_HOST" not in (n.root / "scripts" / "backup-db.sh").read_text(encoding="utf-8")


# --- switch-over from the hand-written stack --------------------------------------------------------------

REAL = ROOT / "tests" / "fixtures" / "real" / "docker-compose.all.yml"


def old_stack() -> tuple[list[str], dict[str, str], set[str]]:
    """The hand-written stack as Docker holds it: container names, volume key -> Docker volume, data services."""
    compose = yaml.safe_load(REAL.read_text(encoding="utf-8"))
    project = "microdao-daarion"  # no `name:`: Compose names the project after /opt/microdao-daarion
    containers = [svc["container_name"] for svc in compose["services"].values()]
    volumes = {key: f"{project}_{key}" for key in compose["volumes"]}
    data = {name for name, svc in compose["services"].items()
            if any(str(v).split(":")[0] in volumes for v in svc.get("volumes", []))}
    return containers, volumes, data


def adopting_node1(tmp_path: Path, adopt: dict[str, str]) -> Node:
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "nodes", ws / "nodes")
    manifest = ws / "nodes" / "node1.yaml"
    lines = "".join(f"  {k}: {v}\n" for k, v in adopt.items())
    manifest.write_text(manifest.read_text(encoding="utf-8") + "adopt_volumes:\n" + lines, encoding="utf-8")
    result = invoke("-C", str(ws), "render", "node1")
    assert result.code == 0, result.stderr
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, text in (("docker", STUB_DOCKER), ("curl", STUB_CURL), ("rsync", STUB_RSYNC)):
        (stubs / name).write_text(text, encoding="utf-8")
        (stubs / name).chmod(0o755)
    root = tmp_path / "node1"
    shutil.copytree(ws / "output" / "node1", root)
    return Node(root, stubs)


def scripts_probes(root: Path) -> list[Any]:
    """The new stack's containers, as its compose file names them."""
    compose = yaml.safe_load((root / "docker-compose.all.yml").read_text(encoding="utf-8"))
    return [type("C", (), {"container": svc["container_name"]}) for svc in compose["services"].values()]


def test_the_old_stack_would_start_postgres_empty(node: Callable[[str], Node]) -> None:
    containers, volumes, _ = old_stack()
    assert volumes["postgres_data"] == "microdao-daarion_postgres_data"
    compose = yaml.safe_load((OUTPUT / "node1" / "docker-compose.all.yml").read_text(encoding="utf-8"))
    assert compose["volumes"]["postgres_data"] == {"name": "postgres_data"}  # not the running stack's volume
    new = {svc["container_name"] for svc in compose["services"].values()}
    assert {"daarion-postgres", "daarion-redis", "daarion-nats", "daarion-city-service"} <= new & set(containers)
    n = node("node1")
    write_env(n.root)
    proc = n.run("switch-over.sh", "--old-project", "microdao-daarion", "--yes", STUB_OLD=",".join(containers),
                 STUB_VOLUMES=",".join(volumes.values()), STUB_NEW="")
    assert proc.returncode == 1
    assert ("volume postgres_data does not exist: postgres would start empty, although microdao-daarion runs it"
            in proc.stderr)
    assert "grafana is new on this node: it starts with an empty grafana_data" in proc.stderr
    assert "FAILED at step 1/5 (check)" in proc.stderr and "the old stack was not touched" in proc.stderr
    assert not [c for c in n.log() if c.startswith(("stop", "rm"))]


def test_adopted_volumes_are_external(tmp_path: Path) -> None:
    n = adopting_node1(tmp_path, {"postgres": "microdao-daarion_postgres_data", "redis": "microdao-daarion_redis_data",
                                  "nats": "microdao-daarion_nats_data"})
    compose = yaml.safe_load((n.root / "docker-compose.all.yml").read_text(encoding="utf-8"))
    assert compose["volumes"]["postgres_data"] == {"name": "microdao-daarion_postgres_data", "external": True}
    assert compose["volumes"]["grafana_data"] == {"name": "grafana_data"}
    # The init script is mounted too; on adopted (non-empty) data postgres skips it (docs/decisions.md).
    assert compose["services"]["postgres"]["volumes"] == ["postgres_data:/var/lib/postgresql/data",
                                                          "./infra/postgres/initdb:/docker-entrypoint-initdb.d:ro"]
    require_tool("shellcheck", shutil.which("shellcheck") is not None)
    assert subprocess.run(["shellcheck", str(n.root / "scripts" / "switch-over.sh")]).returncode == 0


def test_switch_over_stops_the_old_stack_in_order_and_adopts_its_data(tmp_path: Path) -> None:
    containers, volumes, data = old_stack()
    n = adopting_node1(tmp_path, {"postgres": volumes["postgres_data"], "redis": volumes["redis_data"],
                                  "nats": volumes["nats_data"]})
    deployable(n)
    env = {"STUB_OLD": ",".join(containers), "STUB_DATA": ",".join(sorted(data)),
           "STUB_VOLUMES": ",".join(volumes.values()),
           "STUB_NEW": ",".join(p.container for p in scripts_probes(n.root))}
    refused = n.run("switch-over.sh", "--old-project", "microdao-daarion", **env)
    assert refused.returncode == 1 and "not switching over without --yes" in refused.stderr
    proc = n.run("switch-over.sh", "--old-project", "microdao-daarion", "--database-from", "daarion", "--yes", **env)
    assert proc.returncode == 0, proc.stderr
    calls = n.log()
    stops = [c.split()[-1] for c in calls if c.startswith("stop ")]
    assert sorted(stops) == sorted(containers)
    assert stops[0] == "daarion-gateway"  # the public entry first: no new requests reach the old stack
    assert set(stops[-len(data):]) == {f"daarion-{d}" for d in data} == {"daarion-postgres", "daarion-redis",
                                                                          "daarion-nats", "daarion-matrix-synapse"}
    assert sorted(c.split()[-1] for c in calls if c.startswith("rm ")) == sorted(containers)
    assert not [c for c in calls if c.startswith("volume rm") or " down" in c or "rm -v" in c]
    dump = calls.index("exec daarion-postgres pg_dumpall -U postgres")
    assert dump < calls.index("stop --time 30 daarion-gateway")
    [saved] = (n.root / "backups").glob("switch-over-*.sql")
    assert saved.read_text(encoding="utf-8") == "-- every database of daarion-postgres\n"
    sql = (n.stubs / "psql.sql").read_text(encoding="utf-8")
    assert 'ALTER DATABASE :"from" RENAME TO :"to";' in sql and "ALTER USER :\"user\" PASSWORD :'password';" in sql
    assert any("-v from=daarion -v to=daarion_memory" in c for c in calls)
    assert "\\getenv password NODEGEN_PASSWORD\n" in sql
    assert not [c for c in calls if "s3cret" in c]  # the password is on no command line
    assert "NODEGEN_PASSWORD is set: yes" in calls
    # The new stack is deployed under the switch-over's lock: a first release.
    assert "step 10/10 (monitor)" in proc.stderr
    assert release(n, current(n))["status"] == "deployed"
    # The adopted data directory is not empty, so the image runs no init script: the deploy runs the roles
    # script after the database has its new name and before any other service starts.
    rename = next(i for i, c in enumerate(calls) if "-v from=daarion -v to=daarion_memory" in c)
    roles = next(i for i, c in enumerate(calls)
                 if c.endswith("exec -T postgres sh /docker-entrypoint-initdb.d/10-databases.sh"))
    everything = next(i for i, c in enumerate(calls) if c.endswith("up -d --remove-orphans"))
    assert rename < roles < everything, calls


def test_switch_over_refuses_foreign_containers(tmp_path: Path) -> None:
    containers, volumes, _ = old_stack()
    n = adopting_node1(tmp_path, {"postgres": volumes["postgres_data"]})
    write_env(n.root)
    proc = n.run("switch-over.sh", "--old-project", "microdao-daarion", "--yes", STUB_OLD=",".join(containers),
                 STUB_OWNER="someone-else", STUB_VOLUMES=",".join([*volumes.values(), "grafana_data",
                                                                   "prometheus_data", "redis_data", "nats_data"]))
    assert proc.returncode == 1
    assert "container name daarion-postgres is taken by someone-else, not by microdao-daarion" in proc.stderr
    bad = n.run("switch-over.sh", "--old-project", "daarion")
    assert bad.returncode == 2 and "this stack's own project" in bad.stderr



# --- certificates ------------------------------------------------------------------------------------------

def issued_certificate(folder: Path, domain: str) -> Path:
    """A certificate for domain signed by a throwaway CA, as the ACME client would leave it."""
    folder.mkdir()
    ca = ["-subj", "/CN=Test CA", "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem")]
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *ca],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={domain}", "-keyout",
                    str(folder / "privkey.pem"), "-out", str(folder / "req.csr")], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(folder / "req.csr"), "-CA", str(folder / "ca.pem"),
                    "-CAkey", str(folder / "ca.key"), "-days", "90", "-out", str(folder / "fullchain.pem")],
                   check=True, capture_output=True)
    for name in ("ca.key", "ca.pem", "req.csr"):
        (folder / name).unlink()
    return folder


def test_certificate_issuance_installs_and_reloads(node: Callable[[str], Node], tmp_path: Path) -> None:
    require_tool("openssl", shutil.which("openssl") is not None)
    n = node("node1")
    write_env(n.root)
    missing = n.run("certs.sh", "renew")
    assert missing.returncode == 1 and "ACME_EMAIL is not set in .env" in missing.stderr
    write_env(n.root, ACME_EMAIL="ops@example.invalid")
    assert n.run("certs.sh", "bootstrap").returncode == 0
    issued = issued_certificate(tmp_path / "issued", "gateway.daarion.city")
    proc = n.run("certs.sh", "renew", STUB_ISSUED=str(issued))
    assert proc.returncode == 0, proc.stderr
    certs = n.root / "infra" / "nginx" / "certs"
    assert (certs / "fullchain.pem").read_bytes() == (issued / "fullchain.pem").read_bytes()
    assert (certs / "privkey.pem").read_bytes() == (issued / "privkey.pem").read_bytes()
    assert (certs / "privkey.pem").stat().st_mode & 0o777 == 0o600
    calls = n.log()
    [run] = [c for c in calls if c.startswith("run ")]
    assert f"-v {n.root}/certbot:/etc/letsencrypt -v {n.root}/infra/nginx/acme:/var/www/acme certbot/certbot:" in run
    assert run.endswith("certonly --webroot -w /var/www/acme -d gateway.daarion.city --email ops@example.invalid "
                        "--agree-tos --non-interactive --keep-until-expiring")
    test = calls.index("exec daarion-gateway-nginx nginx -t -q -c /etc/nginx/nodegen/nginx.conf")
    assert calls[test + 1] == "exec daarion-gateway-nginx nginx -s reload -c /etc/nginx/nodegen/nginx.conf"
    prom = (n.root / "metrics" / "nodegen_certificate.prom").read_text(encoding="utf-8")
    assert 'nodegen_certificate_self_signed{node="node1",domain="gateway.daarion.city"} 0' in prom
    # Nothing new from the client: nothing installed, nginx not reloaded.
    (n.stubs / "docker.log").unlink()
    again = n.run("certs.sh", "renew", STUB_ISSUED=str(issued))
    assert again.returncode == 0 and "the certificate is current" in again.stderr
    assert not [c for c in n.log() if "reload" in c]
    cron = (n.root / "scripts" / "certs.cron").read_text(encoding="utf-8")
    assert "17 3,15 * * * root '/opt/microdao-daarion/scripts/certs.sh' renew" in cron


def test_port_80_serves_the_acme_challenge_before_redirecting() -> None:
    conf = (OUTPUT / "node1" / "infra" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    plain = conf[conf.index("listen 80;"):conf.index("listen 443 ssl")]
    acme = plain.index("location ^~ /.well-known/acme-challenge/ {")
    assert acme < plain.index("return 301")
    assert "root /etc/nginx/nodegen/acme;" in plain[acme:]
    compose = yaml.safe_load((OUTPUT / "node1" / "docker-compose.all.yml").read_text(encoding="utf-8"))
    gateway = compose["services"]["gateway-nginx"]
    assert "./infra/nginx:/etc/nginx/nodegen:ro" in gateway["volumes"]  # acme/ and nginx.conf with it
    assert gateway["command"] == ["nginx", "-c", "/etc/nginx/nodegen/nginx.conf", "-g", "daemon off;"]
    assert not [v for v in gateway["volumes"] if v.split(":")[0].endswith(".conf")]  # no single-file mount
