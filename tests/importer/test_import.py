"""`nodegen import`: the real system's hand-written files become manifests, with a located gap report.

The sources are copies of the real files (tests/fixtures/real/). After the fixes the report asks for
(tests/fixtures/real/import-fixes.yaml, merged over the written manifests), the fleet validates and renders,
and the rendered node keeps what the report calls mapped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, invoke

REAL = "tests/fixtures/real"
COMPOSE = f"{REAL}/docker-compose.all.yml"
DAGI = f"{REAL}/docker-compose.yml"
NGINX = f"{REAL}/nginx/all-in-one.conf"
ROUTES = f"{REAL}/nginx/mvp-routes.conf"
PROM = f"{REAL}/monitoring/prometheus/prometheus.yml"
ENV = f"{REAL}/env.example"
FIXES = ROOT / REAL / "import-fixes.yaml"
PROJECT = "microdao-daarion"  # the folder the stack ran from (/opt/microdao-daarion): Compose's project


@pytest.fixture(autouse=True)
def _from_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def spot(path: str, line_text: str, needle: str | None = None, nth: int = 0) -> tuple[int, int]:
    """(line, col) of needle on the nth source line holding line_text; found by text, not by nodegen."""
    hits = [(i, text) for i, text in enumerate((ROOT / path).read_text(encoding="utf-8").splitlines(), 1)
            if line_text in text]
    number, text = hits[nth]
    return number, text.index(needle or line_text.strip()) + 1


def run_import(out: Path, *extra: str, sources: tuple[str, ...] = ("--nginx", NGINX)) -> tuple[int, dict[str, Any]]:
    result = invoke("import", COMPOSE, *sources, "--node", "node1", "--project-name", PROJECT, "--out", str(out),
                    "--format", "json", *extra)
    assert "Traceback" not in result.stderr
    return result.code, json.loads(result.stdout)


def gaps_at(report: dict[str, Any], path: str, where: tuple[int, int]) -> list[dict[str, Any]]:
    return [g for g in report["gaps"] if (g["path"], g["line"], g["col"]) == (path, *where)]


def kinds_at(report: dict[str, Any], path: str, where: tuple[int, int]) -> set[str]:
    return {g["kind"] for g in gaps_at(report, path, where)}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("imported")
    code, report = run_import(out, "--allow-lossy", "--prometheus", PROM, "--env-example", ENV)
    assert code == 1  # written, with violations left to fix
    return out, report


# --- lossy imports: refused unless asked for --------------------------------------------------------------

def test_a_lossy_import_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    result = invoke("import", COMPOSE, "--nginx", NGINX, "--node", "node1", "--out", str(tmp_path))
    assert result.code == 1
    assert "a lossy import; nothing written" in result.stderr and "--allow-lossy" in result.stderr
    assert "dropped[version] obsolete in Compose v2" in result.stdout  # the report says what would be lost
    assert list(tmp_path.iterdir()) == []


def test_allow_lossy_writes_the_manifests(imported: tuple[Path, dict[str, Any]]) -> None:
    out, report = imported
    assert report["lossy"] is True
    assert report["written"] == [str(out / "nodes/fleet.yaml"), str(out / "nodes/node1.yaml")]
    assert (out / "nodes/fleet.yaml").is_file() and (out / "nodes/node1.yaml").is_file()


def test_a_lossless_import_needs_no_flag_and_never_overwrites(tmp_path: Path) -> None:
    compose = tmp_path / "src" / "docker-compose.yml"
    compose.parent.mkdir()
    compose.write_text(
        "name: shop\nservices:\n  cache:\n    image: redis:7.4.7-alpine\n    restart: unless-stopped\n"
        "    healthcheck:\n      test: [CMD, redis-cli, ping]\n    volumes: [cache:/data]\n"
        "  gateway:\n    image: nginx:1.31.3-alpine\n    restart: unless-stopped\n    ports: ['80:80', '443:443']\n"
        "    healthcheck:\n      test: [CMD, wget, -q, -O, /dev/null, http://127.0.0.1/health]\n"
        "volumes:\n  cache: {}\n", encoding="utf-8")
    first = invoke("import", str(compose), "--node", "node1", "--out", str(tmp_path / "ws"))
    assert first.code == 0, first.stdout + first.stderr
    assert "0 dropped" in first.stdout and "wrote" in first.stderr
    node = yaml.safe_load((tmp_path / "ws/nodes/node1.yaml").read_text(encoding="utf-8"))
    assert node["adopt_volumes"] == {"cache": "shop_cache"}  # Compose's own name of the volume
    again = invoke("import", str(compose), "--node", "node1", "--out", str(tmp_path / "ws"))
    assert again.code == 1 and "already has nodes/fleet.yaml, nodes/node1.yaml; nothing written" in again.stderr


# --- every gap class, located in the source ---------------------------------------------------------------

def test_mapped_keys_are_located(imported: tuple[Path, dict[str, Any]]) -> None:
    _, report = imported
    route = gaps_at(report, NGINX, spot(NGINX, "location /api/auth/ {", "location"))
    assert [(g["kind"], g["message"]) for g in route] == [
        ("mapped", "route auth of auth-service (/api/auth/x -> /x)")]
    image = gaps_at(report, COMPOSE, spot(COMPOSE, "image: postgres:15-alpine", "image"))
    assert [g["kind"] for g in image] == ["mapped"]


def test_dropped_keys_are_located(imported: tuple[Path, dict[str, Any]]) -> None:
    _, report = imported
    assert kinds_at(report, COMPOSE, (1, 1)) == {"dropped", "violation"}  # version: obsolete, and a rule
    rewrite = gaps_at(report, NGINX, spot(NGINX, "location /api/living-map/", "location"))
    assert rewrite[0]["kind"] == "dropped" and "rewriting to /living-map/" in rewrite[0]["message"]
    job = gaps_at(report, PROM, spot(PROM, "job_name: 'telegram-gateway'", "'telegram-gateway'"))
    assert job[0]["kind"] == "dropped" and "no service of the compose file" in job[0]["message"]


def test_needs_review_is_located(imported: tuple[Path, dict[str, Any]]) -> None:
    _, report = imported
    ws = gaps_at(report, NGINX, spot(NGINX, "location /ws/agents/", "location"))
    assert ws[0]["kind"] == "needs-review" and "websocket channel agents of agents-service" in ws[0]["message"]
    name = gaps_at(report, NGINX, spot(NGINX, "server_name localhost", "server_name"))
    assert name[0]["kind"] == "needs-review"
    chosen = [g for g in report["gaps"] if g["path"] == "nodes/node1.yaml" and g["key"] == "address"]
    assert chosen and chosen[0]["kind"] == "needs-review"


def test_violations_are_mapped_back_to_the_source(imported: tuple[Path, dict[str, Any]]) -> None:
    _, report = imported
    at = spot(COMPOSE, "image: nats:latest", "nats:latest")
    found = gaps_at(report, COMPOSE, at)
    assert [g["key"] for g in found] == ["image"] and found[0]["kind"] == "violation"
    assert "imported as nodes/fleet.yaml:" in found[0]["message"]  # the model's rule, moved back
    # A scrape target on another port than the service's: the port-class rule, at the target in prometheus.yml.
    metrics = gaps_at(report, PROM, spot(PROM, "'dagi-router:9102'"))
    assert [(g["kind"], g["key"]) for g in metrics] == [("violation", "port-class")]
    # The compose rules on the source itself, told apart when the generated stack meets them.
    svc = gaps_at(report, COMPOSE, spot(COMPOSE, "  redis:", "redis"))
    assert {g["key"] for g in svc} >= {"restart-policy", "log-rotation", "labels"}
    assert all("(the generated stack meets it)" in g["message"] for g in svc if g["kind"] == "violation")


def test_secret_values_are_reported_never_copied(imported: tuple[Path, dict[str, Any]]) -> None:
    out, report = imported
    literal = gaps_at(report, COMPOSE, spot(COMPOSE, 'INTERNAL_SECRET: "dev-secret-token"', '"dev-secret'))
    assert ("secret", "auth-service.environment.INTERNAL_SECRET") in {(g["kind"], g["key"]) for g in literal}
    url = spot(COMPOSE, 'DATABASE_URL: "postgresql://postgres:postgres@postgres', '"postgresql')
    assert "secret" in kinds_at(report, COMPOSE, url)
    env = gaps_at(report, ENV, spot(ENV, "INTERNAL_SECRET=", "INTERNAL_SECRET"))
    assert {g["kind"] for g in env} == {"secret", "mapped"}
    text = (out / "nodes/fleet.yaml").read_text(encoding="utf-8") + (out / "nodes/node1.yaml").read_text("utf-8")
    for value in ("dev-secret-token", "postgres:postgres@", "daarion2025"):
        assert value not in text
    fleet = yaml.safe_load((out / "nodes/fleet.yaml").read_text(encoding="utf-8"))
    assert fleet["services"]["auth-service"]["env"]["INTERNAL_SECRET"]["secret"] is True


def test_environment_comes_in_as_names(imported: tuple[Path, dict[str, Any]]) -> None:
    out, report = imported
    fleet = yaml.safe_load((out / "nodes/fleet.yaml").read_text(encoding="utf-8"))
    env = fleet["services"]["auth-service"]["env"]
    assert sorted(env) == ["DATABASE_URL", "INTERNAL_SECRET", "NATS_URL", "REDIS_URL"]
    assert all(isinstance(v, dict) and "value" not in v for v in env.values())
    # What nodegen writes itself is reported, not imported: PORT from port, <NEED>_URL from needs.
    port = gaps_at(report, COMPOSE, spot(COMPOSE, 'PORT: "7011"', '"7011"'))
    assert [(g["kind"], g["message"]) for g in port] == [("mapped", "nodegen sets PORT to the service's port 7011")]
    url = gaps_at(report, COMPOSE, spot(COMPOSE, 'AUTH_SERVICE_URL: "http://auth-service:7011"', '"http'))
    assert url[0]["kind"] == "mapped" and "nodegen writes AUTH_SERVICE_URL from needs" in url[0]["message"]
    assert "auth-service" in fleet["services"]["pdp-service"]["needs"]
    unused = gaps_at(report, ENV, spot(ENV, "LEGACY_FEATURE_FLAG=", "LEGACY"))
    assert [g["kind"] for g in unused] == ["dropped"]


def test_every_key_of_the_sources_is_reported(imported: tuple[Path, dict[str, Any]]) -> None:
    _, report = imported
    from nodegen.load.yamlio import load

    doc, _ = load(ROOT / COMPOSE, COMPOSE)
    assert doc is not None
    placed = {(g["path"], g["line"], g["col"]) for g in report["gaps"]}
    keys = {g["key"] for g in report["gaps"] if g["path"] == COMPOSE}
    service_keys = [loc for loc in doc.keys if len(loc) == 3 and loc[0] == "services"]
    assert service_keys and all(f"{loc[1]}.{loc[2]}" in keys or any(k.startswith(f"{loc[1]}.{loc[2]}.") for k in keys)
                                for loc in service_keys)
    variables = [loc for loc in doc.keys if len(loc) == 4 and loc[2] == "environment"]
    assert variables and all((COMPOSE, *doc.keys[loc]) in placed or (COMPOSE, *doc.values[loc]) in placed
                             for loc in variables)
    nginx_lines = [i for i, text in enumerate((ROOT / NGINX).read_text().splitlines(), 1)
                   if text.strip() and not text.strip().startswith(("#", "}"))]
    assert [i for i in nginx_lines if not any(p == NGINX and line == i for p, line, _ in placed)] == []
    prom = yaml.safe_load((ROOT / PROM).read_text(encoding="utf-8"))
    assert {f"global.{k}" for k in prom["global"]} <= {g["key"] for g in report["gaps"] if g["path"] == PROM}
    for kind in ("mapped", "dropped", "needs-review", "violation", "secret"):
        assert report["counts"][kind] > 0, kind


# --- after the fixes: validates, renders, keeps the data ----------------------------------------------------

def merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


@pytest.fixture(scope="module")
def fixed(imported: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fixed")
    for rel in ("nodes/fleet.yaml", "nodes/node1.yaml"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes((imported[0] / rel).read_bytes())
    fleet = yaml.safe_load((out / "nodes/fleet.yaml").read_text(encoding="utf-8"))
    merge(fleet, yaml.safe_load(FIXES.read_text(encoding="utf-8"))["fleet"])
    (out / "nodes/fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False, allow_unicode=True), "utf-8")
    return out


def test_before_the_fixes_it_does_not_validate(imported: tuple[Path, dict[str, Any]]) -> None:
    result = invoke("-C", str(imported[0]), "validate")
    assert result.code == 1 and "error[image]" in result.stderr


def test_after_the_fixes_the_fleet_validates_and_renders(fixed: Path) -> None:
    assert invoke("-C", str(fixed), "validate").code == 0
    result = invoke("-C", str(fixed), "render", "--all")
    assert result.code == 0, result.stderr
    assert (fixed / "output/node1/docker-compose.all.yml").is_file()


def rendered_services(fixed: Path) -> dict[str, Any]:
    if not (fixed / "output/node1/docker-compose.all.yml").is_file():
        assert invoke("-C", str(fixed), "render", "--all").code == 0
    data = yaml.safe_load((fixed / "output/node1/docker-compose.all.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env_names(svc: dict[str, Any]) -> set[str]:
    env = svc.get("environment") or {}
    return set(env) if isinstance(env, dict) else {str(e).split("=", 1)[0] for e in env}


def test_the_rendered_node_keeps_what_the_report_calls_mapped(imported: tuple[Path, dict[str, Any]],
                                                              fixed: Path) -> None:
    _, report = imported
    source = yaml.safe_load((ROOT / COMPOSE).read_text(encoding="utf-8"))["services"]
    rendered = rendered_services(fixed)["services"]
    fixes = yaml.safe_load(FIXES.read_text(encoding="utf-8"))["fleet"]["services"]
    mapped = {g["key"] for g in report["gaps"] if g["kind"] == "mapped" and g["path"] == COMPOSE}
    for name, svc in source.items():
        assert name in rendered, name
        out = rendered[name]
        if f"{name}.image" in mapped and name not in fixes:
            assert out["image"] == svc["image"]
        if f"{name}.depends_on" in mapped:
            assert set(out.get("depends_on") or {}) >= set(svc["depends_on"])
        for var in svc.get("environment") or {}:
            if f"{name}.environment.{var}" in mapped or var in ("POSTGRES_PASSWORD", "INTERNAL_SECRET"):
                assert var in _env_names(out), (name, var)
        if f"{name}.command" in mapped:
            assert out["command"] == svc["command"].split()
        if f"{name}.healthcheck" in mapped and svc.get("image") and name != "gateway":
            test = svc["healthcheck"]["test"]
            assert out["healthcheck"]["test"] == (["CMD", "sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test)
        for volume in svc.get("volumes") or []:
            source_name, target = volume.split(":")[:2]
            if not source_name.startswith("."):  # a named volume: the data, at the same path
                assert f"{name}_data:{target}" in out["volumes"], (name, volume)
        if "PORT" in (svc.get("environment") or {}):
            assert out["environment"]["PORT"] == svc["environment"]["PORT"]  # written by nodegen, same value
    # The old gateway config is not mounted into the new gateway: the generated one replaces it.
    assert not any("all-in-one.conf" in v for v in rendered["gateway"].get("volumes") or [])
    text = (fixed / "output/node1/docker-compose.all.yml").read_text(encoding="utf-8")
    assert ":-None}" not in text  # a setting without a default reads an empty default, not the word None


def test_the_differences_are_the_ones_the_report_lists(imported: tuple[Path, dict[str, Any]], fixed: Path) -> None:
    """A source key whose rendered form differs has a gap other than mapped, or a mapped gap that says how."""
    _, report = imported
    by_key: dict[str, set[str]] = {}
    for g in report["gaps"]:
        by_key.setdefault(g["key"], set()).add(g["kind"])
    source = yaml.safe_load((ROOT / COMPOSE).read_text(encoding="utf-8"))["services"]
    rendered = rendered_services(fixed)["services"]
    for name, svc in source.items():
        said = [g["message"] for g in report["gaps"] if g["key"] == f"{name}.container_name"]
        if svc.get("container_name") != rendered[name].get("container_name"):
            assert any(f"renamed: the container becomes {rendered[name]['container_name']}" in m for m in said)
        else:
            assert said == [f"the container keeps its name {svc['container_name']}"]
        if "ports" in svc and rendered[name].get("ports") != svc["ports"] and name != "gateway":
            assert by_key.get(f"{name}.ports")
    assert "dropped" in by_key["location /api/living-map/"]
    # living-map's /api/ route was dropped: not in the import; the route in the rendered gateway is the fix's.
    imported_fleet = yaml.safe_load((imported[0] / "nodes/fleet.yaml").read_text(encoding="utf-8"))
    assert "route" not in imported_fleet["services"]["living-map-service"]
    assert yaml.safe_load(FIXES.read_text(encoding="utf-8"))["fleet"]["services"]["living-map-service"]["route"]
    nginx = (fixed / "output/node1/infra/nginx/nginx.conf").read_text(encoding="utf-8")
    assert "location /api/auth/ {" in nginx and "location /api/living-map/ {" in nginx


def test_the_switch_over_keeps_volumes_and_database_names(fixed: Path) -> None:
    node = yaml.safe_load((fixed / "nodes/node1.yaml").read_text(encoding="utf-8"))
    assert node["adopt_volumes"] == {"postgres": f"{PROJECT}_postgres_data", "redis": f"{PROJECT}_redis_data",
                                     "nats": f"{PROJECT}_nats_data", "matrix-synapse": f"{PROJECT}_matrix_data"}
    compose = rendered_services(fixed)
    volumes = compose["volumes"]
    assert volumes["postgres_data"] == {"name": f"{PROJECT}_postgres_data", "external": True}
    assert all(v.get("external") for k, v in volumes.items() if k in ("redis_data", "nats_data"))
    assert compose["services"]["postgres"]["environment"]["POSTGRES_DB"] == "daarion"  # the database kept
    script = (fixed / "output/node1/scripts/switch-over.sh").read_text(encoding="utf-8")
    assert f"postgres_data -> {PROJECT}_postgres_data" in script and "PG_DB='daarion'" in script
    # The generated containers carry the old names (project daarion): the switch-over replaces them one for one.
    assert "'daarion-postgres'" in script


# --- the other real files and the failure modes -------------------------------------------------------------

def test_the_dagi_compose_reports_renamed_env_and_secret_defaults(tmp_path: Path) -> None:
    result = invoke("import", DAGI, "--node", "node2", "--out", str(tmp_path), "--allow-lossy", "--format", "json")
    report = json.loads(result.stdout)
    renamed = gaps_at(report, DAGI, spot(DAGI, "DATABASE_URL=${RBAC_DATABASE_URL", "DATABASE_URL"))
    assert [g["kind"] for g in renamed] == ["needs-review"] and "as RBAC_DATABASE_URL" in renamed[0]["message"]
    dsn = gaps_at(report, DAGI, spot(DAGI, "PG_DSN=${PG_DSN", "PG_DSN"))
    assert [g["kind"] for g in dsn] == ["secret"]  # the default holds credentials: not copied
    assert "postgres:postgres@" not in (tmp_path / "nodes/fleet.yaml").read_text(encoding="utf-8")


def test_a_location_fragment_maps_loopback_ports_to_services(tmp_path: Path) -> None:
    _, report = run_import(tmp_path, "--allow-lossy", sources=("--nginx", ROUTES))
    city = gaps_at(report, ROUTES, spot(ROUTES, "location /api/city/", "location"))
    assert city[0]["kind"] == "mapped" and "city-service" in city[0]["message"]
    second = gaps_at(report, ROUTES, spot(ROUTES, "location /api/secondme/", "location"))
    assert second[0]["kind"] == "dropped"  # 127.0.0.1:7003: nothing of the compose file listens there
    cors = gaps_at(report, ROUTES, spot(ROUTES, "add_header Access-Control-Allow-Origin", "add_header"))
    assert cors[0]["kind"] == "mapped"


def test_text_report_lines_are_located(tmp_path: Path) -> None:
    result = invoke("import", COMPOSE, "--node", "node1", "--out", str(tmp_path), "--allow-lossy")
    line, col = spot(COMPOSE, "image: nats:latest", "nats:latest")
    assert f"{COMPOSE}:{line}:{col}: violation[image] nats: image 'nats:latest'" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("gap report: ")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert invoke("import", COMPOSE, "--out", str(tmp_path)).code == 2  # --node is required
    assert invoke("import", COMPOSE, "--node", "Node 1", "--out", str(tmp_path)).code == 2
    assert invoke("import", "no-such.yml", "--node", "node1").code == 2


def test_a_broken_compose_file_is_a_located_problem(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  web:\n    image: nginx:1.27\n    bogus: 1\n")
    result = invoke("import", str(bad), "--node", "node1", "--out", str(tmp_path / "ws"))
    assert result.code == 1 and "error[compose-config] docker compose config:" in result.stderr
    assert "additional properties 'bogus' not allowed" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_an_nginx_syntax_error_is_a_located_problem(tmp_path: Path) -> None:
    conf = tmp_path / "gw.conf"
    conf.write_text("server {\n    listen 80;\n    location / {\n        proxy_pass http://x\n}\n")
    result = invoke("import", COMPOSE, "--nginx", str(conf), "--node", "node1", "--out", str(tmp_path / "ws"))
    assert result.code == 1 and f"{conf.as_posix()}:" in result.stderr and "error[nginx-syntax]" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_without_crossplane_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "crossplane", None)  # import crossplane raises ImportError
    result = invoke("import", COMPOSE, "--nginx", NGINX, "--node", "node1", "--out", str(tmp_path))
    assert result.code == 1
    assert result.stderr.strip() == ("nodegen import: --nginx needs the crossplane package "
                                     "(pip install 'nodegen[import]')")


def test_other_commands_do_not_load_the_importer() -> None:
    code = ("import sys; from nodegen.cli import cli; cli.get_command(None, 'import'); "
            "print('crossplane' in sys.modules, 'nodegen.importer.run' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


def test_secrets_in_commands_and_nginx_are_reported_not_copied(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "services:\n  cache:\n    image: redis:7.4.7-alpine\n    command: [redis-server, --requirepass, hunter2-pw]\n"
        "    healthcheck:\n      test: [CMD, redis-cli, -a, hunter2-pw, ping]\n"
        "  db:\n    image: postgres:15.20-alpine\n    healthcheck:\n      test: [CMD, pg_isready, -p, '5432']\n",
        encoding="utf-8")
    conf = tmp_path / "gw.conf"
    conf.write_text("location /api/cache/ {\n    proxy_pass http://cache:6379/;\n"
                    '    proxy_set_header Authorization "Bearer hunter2-token";\n}\n', encoding="utf-8")
    result = invoke("import", str(compose), "--nginx", str(conf), "--node", "node1", "--out", str(tmp_path / "ws"),
                    "--allow-lossy", "--format", "json")
    assert "hunter2" not in result.stdout + result.stderr
    assert "hunter2" not in (tmp_path / "ws/nodes/fleet.yaml").read_text(encoding="utf-8")
    report = json.loads(result.stdout)
    secrets = {(g["key"], g["line"]) for g in report["gaps"] if g["kind"] == "secret"}
    assert secrets == {("cache.command", 4), ("cache.healthcheck", 5), ("proxy_set_header Authorization", 3)}
    fleet = yaml.safe_load((tmp_path / "ws/nodes/fleet.yaml").read_text(encoding="utf-8"))
    assert fleet["services"]["db"]["health"]["command"] == ["pg_isready", "-p", "5432"]  # a port, not a secret


def test_the_same_sources_give_byte_identical_manifests(tmp_path: Path) -> None:
    for name in ("a", "b"):
        code, _ = run_import(tmp_path / name, "--allow-lossy", "--prometheus", PROM, "--env-example", ENV)
        assert code == 1
    for rel in ("nodes/fleet.yaml", "nodes/node1.yaml"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


@pytest.mark.tools
def test_the_fixed_import_passes_the_real_tools(fixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker Compose, nginx -t, promtool, amtool and shellcheck accept what the imported fleet renders."""
    monkeypatch.setenv("PATH", os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    rendered_services(fixed)
    verify = invoke("-C", str(fixed), "verify", "--all", "--strict")
    assert verify.code == 0, verify.stdout + verify.stderr


def test_a_service_behind_a_profile_is_imported_and_flagged(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  a:\n    image: redis:7.4.7-alpine\n  debug:\n    image: redis:7.4.7-alpine\n"
                       "    profiles: [debug]\n", encoding="utf-8")
    result = invoke("import", str(compose), "--node", "node1", "--out", str(tmp_path / "ws"), "--format", "json")
    report = json.loads(result.stdout)
    flagged = [g for g in report["gaps"] if g["key"] == "debug.profiles"]
    assert [(g["kind"], g["line"]) for g in flagged] == [("needs-review", 6)]
    fleet = yaml.safe_load((tmp_path / "ws/nodes/fleet.yaml").read_text(encoding="utf-8"))
    assert fleet["services"]["debug"]["image"] == "redis:7.4.7-alpine"


def test_a_setting_with_two_values_is_flagged(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  a:\n    image: redis:7.4.7-alpine\n    environment: [MODE=fast]\n"
                       "  b:\n    image: redis:7.4.7-alpine\n    environment: [MODE=safe]\n", encoding="utf-8")
    result = invoke("import", str(compose), "--node", "node1", "--out", str(tmp_path / "ws"), "--format", "json")
    report = json.loads(result.stdout)
    flagged = {(g["key"], g["line"]) for g in report["gaps"]
               if g["kind"] == "needs-review" and "different values in a, b" in g["message"]}
    assert flagged == {("a.environment.MODE", 4), ("b.environment.MODE", 7)}
    assert "fast" not in (tmp_path / "ws/nodes/fleet.yaml").read_text(encoding="utf-8")


def test_an_unusable_compose_binary_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODEGEN_COMPOSE", str(tmp_path / "no-such-compose"))
    result = invoke("import", COMPOSE, "--node", "node1", "--out", str(tmp_path / "ws"))
    assert result.code == 1 and result.stderr.startswith("nodegen import: ") and len(result.stderr.splitlines()) == 1
    fake = tmp_path / "fake-compose"
    fake.write_text("#!/bin/sh\necho not json\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("NODEGEN_COMPOSE", str(fake))
    result = invoke("import", COMPOSE, "--node", "node1", "--out", str(tmp_path / "ws"))
    assert result.code == 1 and "printed no JSON document" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_a_file_that_is_no_compose_file_is_a_located_problem(tmp_path: Path) -> None:
    for name, text, expected in (("list.yml", "- a\n- b\n", ":1:1: error[schema] not a compose file"),
                                 ("dup.yml", "services: {}\nservices: {}\n", ":2:1: error[yaml]")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = invoke("import", str(path), "--node", "node1", "--out", str(tmp_path / "ws"))
        assert result.code == 1 and expected in result.stderr, result.stderr


def test_the_switch_over_script_adopts_the_old_stack_without_renaming_its_database(fixed: Path,
                                                                                    tmp_path: Path) -> None:
    """scripts/switch-over.sh of the imported node, under the stub docker of tests/targets/test_scripts.py."""
    from tests.targets.test_scripts import STUB_CURL, STUB_DOCKER, STUB_RSYNC, Node, deployable

    rendered_services(fixed)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, text in (("docker", STUB_DOCKER), ("curl", STUB_CURL), ("rsync", STUB_RSYNC)):
        (stubs / name).write_text(text, encoding="utf-8")
        (stubs / name).chmod(0o755)
    shutil.copytree(fixed / "output" / "node1", tmp_path / "node1")
    n = Node(tmp_path / "node1", stubs)
    deployable(n)
    source = yaml.safe_load((ROOT / COMPOSE).read_text(encoding="utf-8"))
    old = [svc["container_name"] for svc in source["services"].values()]
    volumes = [f"{PROJECT}_{key}" for key in source["volumes"]]
    new = [svc["container_name"] for svc in rendered_services(fixed)["services"].values()]
    proc = n.run("switch-over.sh", "--old-project", PROJECT, "--yes", STUB_OLD=",".join(old),
                 STUB_DATA="postgres,redis,nats,matrix-synapse", STUB_VOLUMES=",".join(volumes),
                 STUB_NEW=",".join(new), STUB_APPLIED="1")  # the adopted data holds the database `daarion`
    assert proc.returncode == 0, proc.stderr
    calls = n.log()
    assert sorted(c.split()[-1] for c in calls if c.startswith("stop ")) == sorted(old)
    assert not [c for c in calls if c.startswith("volume rm") or " down" in c or "rm -v" in c]
    sql = (n.stubs / "psql.sql").read_text(encoding="utf-8")
    assert "RENAME" not in sql and "ALTER USER" in sql  # the database kept its name: nothing to rename
    steps = [line.split("step ", 1)[1].split(" ")[0] for line in proc.stderr.splitlines() if " step " in line]
    assert steps[:5] == ["1/5", "2/5", "3/5", "4/5", "5/5"] and "(database)" in proc.stderr


def test_a_loopback_port_becomes_the_placement_s_publish(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  grafana:\n    image: grafana/grafana:11.3.1\n    ports: ['127.0.0.1:3000:3000']\n"
                       "  cache:\n    image: redis:7.4.7-alpine\n    ports: ['6379:6379']\n", encoding="utf-8")
    result = invoke("import", str(compose), "--node", "node1", "--out", str(tmp_path / "ws"), "--format", "json")
    report = json.loads(result.stdout)
    node = yaml.safe_load((tmp_path / "ws/nodes/node1.yaml").read_text(encoding="utf-8"))
    assert node["services"] == [{"grafana": {"publish": ["127.0.0.1:3000"]}}, "cache"]
    ports = {g["key"]: g["message"] for g in report["gaps"] if g["key"].endswith(".ports") and g["kind"] == "mapped"}
    assert ports == {"grafana.ports": "port 3000; published on 127.0.0.1:3000",
                     "cache.ports": "port 6379; host port 6379 no longer published (only the gateway publishes)"}
    public = [g for g in report["gaps"] if g["key"] == "public-port"]
    assert [(g["line"], "(the generated stack meets it)" in g["message"]) for g in public] == [(7, True)]
