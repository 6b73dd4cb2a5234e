"""Every rule of nodegen/rules/: a passing and a failing manifest, with the exact located error line.

The model is yamllint's `RuleTestCase.check`: one small inline manifest per case and the exact
`path:line:col: error[rule] message` lines it must produce (none for a passing case). FLEET and NODE are
a tiny valid workspace; a case edits one line with `sub` (positions stay put) or appends lines at the end
(first appended line of FLEET is line 23, of NODE line 8).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nodegen.rules.catalogue import RULES
from tests.conftest import invoke

FLEET = """\
project: demo
domain: demo.test
services:
  postgres:
    class: core
    image: postgres:15.10-alpine
    port: 5432
    protocol: tcp
    health: {command: [pg_isready]}
    metrics: {enabled: false}
  gateway:
    class: core
    gateway: true
    image: nginx:1.27.3-alpine
    port: 443
    metrics: {enabled: false}
  api:
    class: mvp
    build: services/api
    port: 7001
    route: api
    needs: [postgres]
"""

NODE = """\
node: n1
name: N1
role: production
uptime: 24/7
domain: n1.demo.test
address: 10.0.0.1
services: [postgres, gateway, api]
"""

NODE2 = """\
node: n2
name: N2
role: dev
uptime: on-demand
domain: n2.demo.test
address: 10.0.0.2
services: [postgres, gateway]
"""

F = "nodes/fleet.yaml"
N = "nodes/n1.yaml"
N2 = "nodes/n2.yaml"


def sub(text: str, old: str, new: str) -> str:
    """text with old replaced by new; old must occur exactly once, so a case cannot silently test nothing."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def write_workspace(root: Path, files: dict[str, str | bytes]) -> Path:
    """A workspace under root holding files (relative path -> text or bytes)."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def lint(root: Path, fleet: str | bytes = FLEET, node: str | bytes | None = NODE,
         more: dict[str, str | bytes] | None = None) -> list[str]:
    """The problem lines `nodegen validate` prints for this workspace ([] when it exits 0)."""
    files: dict[str, str | bytes] = {F: fleet}
    if node is not None:
        files[N] = node
    files.update(more or {})
    write_workspace(root, files)
    result = invoke("-C", str(root), "validate")
    assert "Traceback" not in result.stderr
    if result.code == 0:
        assert result.stdout.startswith("ok: ")
        return [line for line in result.stderr.splitlines() if line]
    assert result.code == 1, result.stderr
    *lines, summary = result.stderr.splitlines()
    errors = sum("error[" in line for line in lines)
    assert summary == f"{errors} error(s); nothing written"
    return lines


def check(root: Path, *expected: str, **kwargs: object) -> None:
    """The workspace produces exactly the expected problem lines, in order (none: it validates)."""
    assert lint(root, **kwargs) == list(expected)  # type: ignore[arg-type]


def test_base_workspace_is_valid(tmp_path: Path) -> None:
    check(tmp_path)


def test_every_rule_is_tested() -> None:
    # The rules here; reading a manifest (file, yaml, schema) in tests/load/test_manifests.py.
    source = Path(__file__).read_text(encoding="utf-8") + (Path(__file__).parent.parent / "load" /
                                                           "test_manifests.py").read_text(encoding="utf-8")
    untested = [rule for rule in RULES if f"error[{rule}]" not in source]
    assert untested == []


# --- vocabulary ----------------------------------------------------------------------------------

OWN_VOCABULARY = """\
standard:
  port_classes: {app: 7000-7999}
  classes: {core: {}, app: {range: app, visibility: public}}
  roles: {prod: {}, bench: {dev: true}}
  uptimes: {always: {}, sometimes: {on_demand: true}}
  limits: {app: {memory: 256m}}
"""


def test_vocabulary_a_fleet_of_its_own_words_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=sub(FLEET, "class: mvp", "class: app") + OWN_VOCABULARY,
          node=sub(sub(NODE, "role: production", "role: prod"), "uptime: 24/7", "uptime: always"))


def test_vocabulary_unknown_class(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:18:12: error[vocabulary] api: class 'mpv' is not in standard.classes "
          "(core, mvp, utility, multimodal, dagi); did you mean 'mvp'?", fleet=sub(FLEET, "class: mvp", "class: mpv"))


def test_vocabulary_the_standards_words_are_gone_once_a_fleet_has_its_own(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:18:12: error[vocabulary] api: class 'mvp' is not in standard.classes (core, app)",
          f"{N}:3:7: error[vocabulary] role 'production' is not in standard.roles (prod, bench)",
          f"{N}:4:9: error[vocabulary] uptime '24/7' is not in standard.uptimes (always, sometimes)",
          fleet=FLEET + OWN_VOCABULARY)


def test_vocabulary_unknown_role_suggests_the_one_it_begins(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:3:7: error[vocabulary] role 'prod' is not in standard.roles (production, dev, federation); "
          "did you mean 'production'?", node=sub(NODE, "role: production", "role: prod"))


def test_vocabulary_unknown_uptime(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:4:9: error[vocabulary] uptime '24x7' is not in standard.uptimes (24/7, on-demand); "
          "did you mean '24/7'?", node=sub(NODE, "uptime: 24/7", "uptime: 24x7"))


def test_vocabulary_a_class_range_names_a_port_class(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:36: error[vocabulary] class mvp: range 'mvpp' is not in standard.port_classes "
          "(mvp, utility, dagi); did you mean 'mvp'?",
          fleet=FLEET + "standard:\n  classes: {core: {}, mvp: {range: mvpp}}\n")


def test_vocabulary_a_class_table_names_a_port_table(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:48: error[vocabulary] class mvp: table 'mvpp' is not in standard.port_tables "
          "(core, dagi, mvp, multimodal, other); did you mean 'mvp'?",
          fleet=FLEET + "standard:\n  classes: {core: {}, mvp: {range: mvp, table: mvpp}}\n")


def test_vocabulary_limits_name_classes(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:12: error[vocabulary] limits of class 'mvpp' is not in standard.classes "
          "(core, mvp, utility, multimodal, dagi); did you mean 'mvp'?",
          fleet=FLEET + "standard:\n  limits: {mvpp: {memory: 1g}}\n")


# --- port-class ----------------------------------------------------------------------------------

def test_port_class_top_of_mvp_range_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=sub(FLEET, "port: 7001", "port: 7999"))


def test_port_class_mvp_port_in_dagi_range(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:20:11: error[port-class] api: port 9555 is outside the mvp range 7000-7999",
          fleet=sub(FLEET, "port: 7001", "port: 9555"))


def test_port_class_just_below_mvp_range(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:20:11: error[port-class] api: port 6999 is outside the mvp range 7000-7999",
          fleet=sub(FLEET, "port: 7001", "port: 6999"))


def test_port_class_core_port_taken_by_mvp(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:20:11: error[port-class] api: port 6379 is reserved for core infrastructure",
          fleet=sub(FLEET, "port: 7001", "port: 6379"))


def test_port_class_core_service_off_its_port(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:7:11: error[port-class] postgres: core service port 5433 is not a well-known core port "
          "(80, 443, 3000, 4222, 5432, 6379, 8222, 9090)",
          fleet=sub(FLEET, "port: 5432", "port: 5433"))


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_port_class_port_out_of_tcp_range(tmp_path: Path, port: int) -> None:
    check(tmp_path, f"{F}:20:11: error[port-class] api: port {port} is not in 1-65535",
          fleet=sub(FLEET, "port: 7001", f"port: {port}"))


SWAPPER = """\
  swapper:
    class: utility
    stack: dagi
    build: services/swapper
    port: 8890
    metrics: {port: 8891}
"""


def test_port_class_utility_with_dedicated_metrics_port_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + SWAPPER)


def test_port_class_secondary_port_is_checked_too(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:28:21: error[port-class] swapper: port 9891 is outside the utility range 8000-8999",
          fleet=FLEET + sub(SWAPPER, "8891", "9891"))


def test_port_class_multimodal_uses_the_utility_range(tmp_path: Path) -> None:
    stt = "  stt:\n    class: multimodal\n    build: services/stt\n    port: {}\n"
    check(tmp_path, fleet=FLEET + stt.format(8895))
    check(tmp_path, f"{F}:26:11: error[port-class] stt: port 7895 is outside the multimodal range 8000-8999",
          fleet=FLEET + stt.format(7895))


def test_port_class_range_must_be_low_high(tmp_path: Path) -> None:
    check(tmp_path,
          f"{F}:23:32: error[port-class] port class mvp: '7999-7000' is not a range LOW-HIGH within 1-65535",
          fleet=FLEET + "standard: {port_classes: {mvp: 7999-7000}}\n")


# --- port-conflict -------------------------------------------------------------------------------

WEB = """\
  web:
    class: mvp
    build: services/web
    port: {port}
"""


def test_port_conflict_distinct_ports_pass(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + WEB.format(port=7002),
          node=sub(NODE, "api]", "api, web]"))


def test_port_conflict_two_services_one_port(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:26:11: error[port-conflict] web: port 7001 is already used by api ({F}:20:11); "
          "the next free mvp port is 7002 (nodegen ports --next mvp)",
          fleet=FLEET + WEB.format(port=7001), node=sub(NODE, "api]", "api, web]"))


def test_port_conflict_with_a_secondary_port(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:28:21: error[port-class] swapper: port 7001 is outside the utility range 8000-8999",
          f"{F}:28:21: error[port-conflict] swapper: port 7001 is already used by api ({F}:20:11); "
          "the next free utility port is 8891 (nodegen ports --next utility)",
          fleet=FLEET + sub(SWAPPER, "8891", "7001"))


def test_port_conflict_gateway_ports_equal(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:10:15: error[port-conflict] gateway http_port and https_port are both 8443",
          node=NODE + "gateway:\n  http_port: 8443\n  https_port: 8443\n")


def test_port_conflict_loopback_publish_on_the_gateway_port(tmp_path: Path) -> None:
    node = sub(NODE, "services: [postgres, gateway, api]",
               "services:\n  - postgres\n  - gateway\n  - api: {publish: ['127.0.0.1:443']}")
    check(tmp_path, f"{N}:10:21: error[port-conflict] api: host port 443 is already published by the gateway",
          node=node)


def test_port_conflict_two_loopback_publishes(tmp_path: Path) -> None:
    fleet = FLEET + WEB.format(port=7002) + "    publish: ['127.0.0.1:7000']\n"
    node = sub(NODE, "services: [postgres, gateway, api]",
               "services:\n  - postgres\n  - gateway\n  - api: {publish: ['127.0.0.1:7000']}\n  - web")
    check(tmp_path, f"{N}:11:5: error[port-conflict] web: host port 7000 is already published by api ({N}:10:21)",
          fleet=fleet, node=node)


def test_port_conflict_private_bind_on_the_gateway_port(tmp_path: Path) -> None:
    # One ledger for validate and `nodegen ports`: a bind on the serving node's private address for another
    # node takes that host port too.
    node = sub(NODE, "[postgres, gateway, api]", "[gateway, api]") + "uses: {postgres: {node: n2, via: private}}\n"
    check(tmp_path, f"{N}:8:34: error[port-conflict] postgres for n1: host port 5432 is already published by "
          "the gateway", node=node, more={N2: NODE2 + "gateway: {http_port: 5432}\n"})

# --- name-format ---------------------------------------------------------------------------------

def test_name_format_project_is_lowercase(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:1:10: error[name-format] project 'Demo' must be lowercase ASCII letters and digits (2-31)",
          fleet=sub(FLEET, "project: demo", "project: Demo"))


@pytest.mark.parametrize("name", ["Api", "api_v2", "\u0430pi", "a"])
def test_name_format_service_name(tmp_path: Path, name: str) -> None:
    fleet = sub(FLEET, "  api:\n", f"  {name}:\n")
    node = sub(NODE, "api]", f"{name}]")
    check(tmp_path, f"{F}:17:3: error[name-format] service name {name!r} must match ^[a-z][a-z0-9-]{{1,38}}$ "
          "(ASCII only)", fleet=fleet, node=node)


def test_name_format_derived_label_names_collide(tmp_path: Path) -> None:
    fleet = sub(FLEET, "  api:\n", "  api-service:\n") + WEB.format(port=7002).replace("web", "api")
    node = sub(NODE, "api]", "api-service, api]")
    check(tmp_path, f"{F}:23:3: error[name-format] api: label name 'api' collides with service 'api-service'",
          fleet=fleet, node=node)


def test_name_format_env_variable(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:7: error[name-format] api: environment variable 'log_level' must match ^[A-Z_][A-Z0-9_]*$",
          fleet=FLEET + "    env:\n      log_level: debug\n")
    check(tmp_path, fleet=FLEET + "    env:\n      LOG_FORMAT: json\n")


def test_name_format_node_id(tmp_path: Path) -> None:
    check(tmp_path, "nodes/n_1.yaml:1:7: error[name-format] node id 'n_1' must match ^[a-z][a-z0-9-]{1,30}$",
          node=None, more={"nodes/n_1.yaml": sub(NODE, "node: n1", "node: n_1")})


def test_name_format_valid_names_pass(tmp_path: Path) -> None:
    fleet = sub(sub(FLEET, "project: demo", "project: demo2"), "  api:\n", "  agents-service:\n")
    check(tmp_path, fleet=fleet, node=sub(NODE, "api]", "agents-service]"),
          more={"nodes/node-b.yaml": sub(NODE2, "node: n2", "node: node-b")})


# --- health-endpoint / metrics-endpoint ---------------------------------------------------------

def test_health_endpoint_tcp_service_needs_a_probe(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:4:3: error[health-endpoint] postgres: a tcp service needs health.command "
          "(a probe that exists in its image)",
          fleet=sub(FLEET, "    health: {command: [pg_isready]}\n", "    health: {}\n"))


def test_health_endpoint_built_service_answers_health(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:20: error[health-endpoint] api: services we build answer GET /health, not /healthz",
          fleet=FLEET + "    health: {path: /healthz}\n")


def test_health_endpoint_third_party_image_keeps_its_own_path(tmp_path: Path) -> None:
    grafana = ("  grafana:\n    class: core\n    image: grafana/grafana:11.3.1\n    port: 3000\n"
               "    health: {path: /api/health}\n")
    check(tmp_path, fleet=FLEET + grafana)


def test_health_endpoint_explicit_health_path_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    health: {path: /health}\n")


def test_metrics_endpoint_built_service_cannot_disable_metrics(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:24: error[metrics-endpoint] api: services we build expose GET /metrics",
          fleet=FLEET + "    metrics: {enabled: false}\n")


def test_metrics_endpoint_built_service_metrics_path(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:21: error[metrics-endpoint] api: services we build expose GET /metrics",
          fleet=FLEET + "    metrics: {path: /stats}\n")


def test_metrics_endpoint_dedicated_port_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    metrics: {port: 7101, path: /metrics}\n")


# --- public-port ----------------------------------------------------------------------------------

def test_public_port_loopback_binds_pass(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    publish: ['127.0.0.1:7001', '[::1]:7001']\n")


def test_public_port_non_loopback_in_catalog(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:15: error[public-port] api: only the gateway publishes ports; '0.0.0.0:7001' must "
          "bind a loopback address", fleet=FLEET + "    publish: ['0.0.0.0:7001']\n")


def test_public_port_non_loopback_in_node_override(tmp_path: Path) -> None:
    node = sub(NODE, "services: [postgres, gateway, api]",
               "services:\n  - postgres\n  - gateway\n  - api:\n      publish: [10.0.0.1:7001]\n")
    check(tmp_path, f"{N}:11:17: error[public-port] api: only the gateway publishes ports; '10.0.0.1:7001' must "
          "bind a loopback address", node=node)


@pytest.mark.parametrize("bind", ["7001", "localhost:7001", "127.0.0.1:7001:7001"])
def test_public_port_bind_must_be_address_and_port(tmp_path: Path, bind: str) -> None:
    check(tmp_path, f"{F}:23:15: error[public-port] api: publish {bind!r} must be ADDRESS:PORT, e.g. 127.0.0.1:3000",
          fleet=FLEET + f"    publish: ['{bind}']\n")


def test_public_port_gateway_does_not_publish_by_hand(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    port: 443\n", "    port: 443\n    publish: ['127.0.0.1:8080']\n")
    check(tmp_path, f"{F}:16:15: error[public-port] gateway: the gateway's ports come from the node's gateway "
          "settings", fleet=fleet)


# --- unknown-dependency / dependency-cycle ------------------------------------------------------------

def test_unknown_dependency_not_in_catalog(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:22:23: error[unknown-dependency] api needs 'redis', which is not in the catalog",
          fleet=sub(FLEET, "needs: [postgres]", "needs: [postgres, redis]"))


def test_unknown_dependency_neither_run_nor_used(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:7:21: error[unknown-dependency] api needs postgres, which n1 neither runs nor uses",
          node=sub(NODE, "[postgres, gateway, api]", "[gateway, api]"))


def test_unknown_dependency_used_from_another_node_passes(tmp_path: Path) -> None:
    # postgres has no API route: it is reached on n2's private address.
    check(tmp_path, node=sub(NODE, "[postgres, gateway, api]", "[gateway, api]")
          + "uses: {postgres: {node: n2, via: private}}\n", more={N2: NODE2})


WORKER = """\
  worker:
    class: mvp
    build: services/worker
    port: 7002
    needs: [api]
"""


def test_dependency_cycle_with_locations(tmp_path: Path) -> None:
    fleet = sub(FLEET, "needs: [postgres]", "needs: [postgres, worker]") + WORKER
    check(tmp_path, f"{F}:22:12: error[dependency-cycle] dependency cycle: api ({F}:22) -> worker ({F}:27) "
          f"-> api ({F}:22)", fleet=fleet, node=sub(NODE, "api]", "api, worker]"))


def test_dependency_cycle_service_needs_itself(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:22:23: error[dependency-cycle] api needs itself",
          fleet=sub(FLEET, "needs: [postgres]", "needs: [postgres, api]"))


def test_dependency_chain_without_cycle_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + WORKER, node=sub(NODE, "api]", "api, worker]"))


# --- postgres-role -------------------------------------------------------------------------------

def test_postgres_role_url_user_and_password_pass(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    env:\n      DATABASE_URL: {postgres: url}\n      PGUSER: {postgres: user}\n"
          "      PGPASSWORD: {postgres: password}\n    postgres_rights: schema\n")


def test_postgres_role_with_a_secret_too(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:45: error[postgres-role] api: DATABASE_URL is filled in from the service's own "
          "PostgreSQL role; drop secret",
          fleet=FLEET + "    env:\n      DATABASE_URL: {postgres: url, secret: true}\n")


def test_postgres_role_without_needing_postgres(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    needs: [postgres]\n", "")
    check(tmp_path, f"{F}:23:32: error[postgres-role] api: DATABASE_URL connects to PostgreSQL as the service's own "
          "role; the service must need postgres (needs: [postgres])",
          fleet=fleet + "    env:\n      DATABASE_URL: {postgres: url}\n")


def test_postgres_role_rights_without_a_role(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:22: error[postgres-role] api: postgres_rights needs an env entry with postgres: "
          "(url, user or password)", fleet=FLEET + "    postgres_rights: monitor\n")


def test_postgres_role_reserved_role_name(tmp_path: Path) -> None:
    fleet = sub(FLEET, "  api:\n", "  pg-api:\n")
    node = sub(NODE, "gateway, api]", "gateway, pg-api]")
    check(tmp_path, f"{F}:18:5: error[postgres-role] pg-api: its PostgreSQL role would be 'pg_api', which is "
          "reserved (pg_*, postgres, public, synapse); rename the service",
          fleet=fleet + "    env:\n      DATABASE_URL: {postgres: url}\n", node=node)


def test_postgres_role_database_name_reaches_sql(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    metrics: {enabled: false}\n  gateway:", "    metrics: {enabled: false}\n"
                "    env: {POSTGRES_DB: 'app\"; DROP'}\n  gateway:")
    check(tmp_path, f"{F}:11:24: error[postgres-role] postgres: POSTGRES_DB 'app\"; DROP' must be a plain PostgreSQL "
          "name (lowercase letters, digits, _) where services connect as their own roles",
          fleet=fleet + "    env:\n      DATABASE_URL: {postgres: url}\n")


def test_postgres_role_on_a_node_override(tmp_path: Path) -> None:
    node = sub(NODE, "services: [postgres, gateway, api]\n",
               "services:\n  - postgres\n  - gateway\n  - api:\n      env:\n"
               "        DATABASE_URL: {postgres: url, value: x}\n")
    check(tmp_path, f"{N}:12:46: error[postgres-role] api: DATABASE_URL is filled in from the service's own "
          "PostgreSQL role; drop value", node=node)


# --- secret-literal ---------------------------------------------------------------------------------

def test_secret_literal_marked_secret_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    env:\n      DB_PASSWORD: {secret: true, description: the password}\n")


def test_secret_literal_password_written_out(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:20: error[secret-literal] api: DB_PASSWORD looks like a secret; write {{secret: true}} "
          "and set it in .env (or {secret: false, value: ...} for a setting)",
          fleet=FLEET + "    env:\n      DB_PASSWORD: hunter2\n")


def test_secret_literal_explicit_setting_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    env:\n      PASSWORD_MIN_LENGTH: {secret: false, value: '12'}\n")
    check(tmp_path, f"{F}:24:28: error[secret-literal] api: PASSWORD_MIN_LENGTH looks like a secret; write "
          "{secret: true} and set it in .env (or {secret: false, value: ...} for a setting)",
          fleet=FLEET + "    env:\n      PASSWORD_MIN_LENGTH: {value: '12'}\n")


def test_secret_literal_secret_with_a_value(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:40: error[secret-literal] api: API_TOKEN is secret and must not have a value in a "
          "manifest (set it in .env)", fleet=FLEET + "    env:\n      API_TOKEN: {secret: true, value: abc}\n")


def test_secret_literal_url_with_credentials_anywhere(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:15: error[secret-literal] value looks like a URL with credentials; secrets belong in .env",
          fleet=FLEET + "    env:\n      DB_URL: postgres://app:s3cret@postgres:5432/app\n")


def test_secret_literal_password_only_url(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:18: error[secret-literal] value looks like a URL with credentials; secrets belong in .env",
          fleet=FLEET + "    env:\n      CACHE_URL: 'redis://:s3cret@redis:6379/0'\n")


def test_secret_literal_telegram_bot_token_under_a_neutral_name(tmp_path: Path) -> None:
    token = "123456789:AA" + "Hk3_xZ-q" * 4 + "a"
    check(tmp_path, f"{F}:24:17: error[secret-literal] value looks like a Telegram bot token; secrets belong in .env",
          fleet=FLEET + f"    env:\n      BOT_LINK: '{token}'\n")


def test_secret_literal_lookalikes_pass(tmp_path: Path) -> None:
    # No password (redis://redis:6379), an empty one, and a time with a colon are not secrets.
    check(tmp_path, fleet=FLEET + "    env:\n      CACHE_URL: 'redis://redis:6379/0'\n      EMPTY: 'redis://:@redis'\n"
          "      WHEN: '20260101:120000'\n")


def test_secret_literal_token_in_a_description(tmp_path: Path) -> None:
    token = "ghp_" + "a1B2" * 9
    check(tmp_path, f"{F}:23:18: error[secret-literal] value looks like an API token; secrets belong in .env",
          fleet=FLEET + f"    description: {token}\n")


def test_secret_literal_private_key(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:24:13: error[secret-literal] value looks like a private key; secrets belong in .env",
          fleet=FLEET + "    env:\n      CERT: '-----BEGIN RSA PRIVATE KEY-----'\n")


def test_secret_literal_in_a_node_override(tmp_path: Path) -> None:
    node = sub(NODE, "services: [postgres, gateway, api]",
               "services:\n  - postgres\n  - gateway\n  - api:\n      env: {REDIS_PASSWORD: pw}\n")
    check(tmp_path, f"{N}:11:29: error[secret-literal] api: REDIS_PASSWORD looks like a secret; write "
          "{secret: true} and set it in .env (or {secret: false, value: ...} for a setting)", node=node)


def test_secret_literal_url_without_credentials_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    env:\n      NATS_URL: nats://nats:4222\n      TOKEN_TTL_NAME: ttl\n"
          .replace("TOKEN_TTL_NAME: ttl\n", ""))


# --- route --------------------------------------------------------------------------------------------

def test_route_names_pass(tmp_path: Path) -> None:
    fleet = sub(sub(FLEET, "route: api", "route: api-v2"), "    needs: [postgres]\n",
                "    needs: [postgres]\n    protocol: http+ws\n    websocket: [events, room-1]\n")
    check(tmp_path, fleet=fleet)


@pytest.mark.parametrize("route", ["a;b", "x{", "\"a'b\"", "\u0430pi", "'a b'", "API", "a$b", "a#b", "-a", "a/b"])
def test_route_rejects_syntax_and_look_alikes(tmp_path: Path, route: str) -> None:
    value = route.strip("\"'")
    check(tmp_path, f"{F}:21:12: error[route] api: route {value!r} must be lowercase ASCII letters, digits and '-'",
          fleet=sub(FLEET, "route: api", f"route: {route}"))


def test_route_websocket_channel(tmp_path: Path) -> None:
    fleet = FLEET + "    protocol: http+ws\n    websocket: [events, 'a;b', events]\n"
    check(tmp_path,
          f"{F}:24:25: error[route] api: websocket channel 'a;b' must be lowercase ASCII letters, digits and '-'",
          f"{F}:24:32: error[route] api: channel 'events' is listed twice",
          fleet=fleet)


def test_route_websocket_needs_http_ws(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:16: error[route] api: websocket channels need protocol http+ws and a route",
          fleet=FLEET + "    websocket: [events]\n")


def test_route_tcp_service_has_no_route(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    health: {command: [pg_isready]}\n", "    health: {command: [pg_isready]}\n    route: db\n")
    check(tmp_path, f"{F}:10:12: error[route] postgres: a tcp service cannot have an HTTP route", fleet=fleet)


def test_route_unique_per_node(tmp_path: Path) -> None:
    fleet = FLEET + WEB.format(port=7002) + "    route: api\n"
    check(tmp_path, f"{N}:7:36: error[route] n1: route /api/api/ is used by api and web",
          fleet=fleet, node=sub(NODE, "api]", "api, web]"))


# --- node-distribution ------------------------------------------------------------------------------

def test_node_distribution_unknown_service(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:7:31: error[node-distribution] n1: unknown service 'apii'; did you mean 'api'?",
          node=sub(NODE, "api]", "apii]"))


def test_node_distribution_service_listed_twice(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:7:36: error[node-distribution] n1: api is listed twice",
          node=sub(NODE, "api]", "api, api]"))


@pytest.mark.parametrize(("services", "count"), [("[postgres, api]", 0)])
def test_node_distribution_exactly_one_gateway(tmp_path: Path, services: str, count: int) -> None:
    check(tmp_path, f"{N}:7:1: error[node-distribution] n1: a node runs exactly one gateway service, not {count}",
          node=sub(NODE, "[postgres, gateway, api]", services))


def test_node_distribution_uses_a_node_that_does_not_exist(tmp_path: Path) -> None:
    node = sub(NODE, "[postgres, gateway, api]", "[gateway, api]") + "uses: {postgres: n9}\n"
    check(tmp_path, f"{N}:8:18: error[node-distribution] postgres: no node 'n9'", node=node)


def test_node_distribution_uses_a_node_that_does_not_run_it(tmp_path: Path) -> None:
    node = sub(NODE, "[postgres, gateway, api]", "[gateway, api]") + "uses: {postgres: n2}\n"
    check(tmp_path, f"{N}:8:18: error[node-distribution] postgres: node n2 does not run it",
          node=node, more={N2: sub(NODE2, "[postgres, gateway]", "[gateway]")})


def test_node_distribution_uses_an_unknown_service(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:8:8: error[node-distribution] uses unknown service 'postgress'; did you mean 'postgres'?",
          node=NODE + "uses: {postgress: n2}\n", more={N2: NODE2})


def test_node_distribution_node_id_matches_file_name(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:1:7: error[node-distribution] node id 'n3' differs from the file name 'n1'",
          node=sub(NODE, "node: n1", "node: n3"))


def test_node_distribution_two_nodes_pass(tmp_path: Path) -> None:
    check(tmp_path, more={N2: NODE2})


# --- image ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("image", ["nginx:latest", "nginx", "registry.example.com:5000/team/nginx"])
def test_image_must_be_pinned(tmp_path: Path, image: str) -> None:
    check(tmp_path, f"{F}:14:12: error[image] gateway: image {image!r} must be pinned to a version tag, never latest",
          fleet=sub(FLEET, "nginx:1.27.3-alpine", image))


@pytest.mark.parametrize("image", ["nginx:1.27.3-alpine", "registry.example.com:5000/team/nginx:1.27",
                                   "nginx@sha256:" + "a" * 64])
def test_image_pinned_passes(tmp_path: Path, image: str) -> None:
    check(tmp_path, fleet=sub(FLEET, "nginx:1.27.3-alpine", image))


def test_image_invalid_reference(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:14:12: error[image] gateway: 'Nginx:1.27' is not a valid image reference",
          fleet=sub(FLEET, "nginx:1.27.3-alpine", "Nginx:1.27"))


def test_image_exactly_one_of_image_or_build(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:17:3: error[image] api: give exactly one of image or build",
          fleet=FLEET + "    image: demo/api:1.0\n")
    check(tmp_path, f"{F}:17:3: error[image] api: give exactly one of image or build",
          fleet=sub(FLEET, "    build: services/api\n", ""))


def test_image_node_override_latest(tmp_path: Path) -> None:
    node = sub(NODE, "services: [postgres, gateway, api]",
               "services:\n  - postgres\n  - gateway: {image: 'nginx:latest'}\n  - api\n")
    check(tmp_path, f"{N}:9:22: error[image] gateway: image 'nginx:latest' must be pinned to a version tag, "
          "never latest", node=node)


# --- value-syntax -------------------------------------------------------------------------------

def test_value_syntax_fleet_domain(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:2:9: error[value-syntax] domain 'Demo.test' is not a lowercase DNS name",
          fleet=sub(FLEET, "domain: demo.test", "domain: Demo.test"))


def test_value_syntax_node_address_and_domain(tmp_path: Path) -> None:
    node = sub(sub(NODE, "address: 10.0.0.1", "address: 10.0.0.1;"), "domain: n1.demo.test", "domain: 'n1 x'")
    check(tmp_path, f"{N}:5:9: error[value-syntax] domain 'n1 x' is not a lowercase DNS name",
          f"{N}:6:10: error[value-syntax] address '10.0.0.1;' is not an IP address", node=node)


def test_value_syntax_control_character(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:18: error[value-syntax] value contains a newline or control character",
          fleet=FLEET + '    description: "line one\\nline two"\n')


def test_value_syntax_c1_control_character(tmp_path: Path) -> None:
    # U+0080..U+009F pass YAML and nginx but Docker Compose refuses the file later.
    check(tmp_path, f"{F}:23:18: error[value-syntax] value contains a newline or control character",
          fleet=FLEET + '    description: "one\\u0090two"\n')


def test_value_syntax_paths(tmp_path: Path) -> None:
    fleet = FLEET + "    data: data\n    mounts: {../etc: /etc/x}\n"
    check(tmp_path,
          f"{F}:23:11: error[value-syntax] api: 'data' must be an absolute container path",
          f"{F}:24:14: error[value-syntax] api: mount source '../etc' must be a relative path inside the node root",
          fleet=fleet)


def test_value_syntax_build_context(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:19:12: error[value-syntax] api: build context '../api' must be a relative path inside "
          "the node root", fleet=sub(FLEET, "build: services/api", "build: ../api"))


def test_value_syntax_health_path(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:20: error[health-endpoint] api: services we build answer GET /health, not /health;",
          f"{F}:23:20: error[value-syntax] api: '/health;' is not a plain URL path",
          fleet=FLEET + "    health: {path: '/health;'}\n")


def test_value_syntax_gateway_settings(tmp_path: Path) -> None:
    node = NODE + "gateway:\n  listen: localhost\n  resolver: 'dns;'\n  certificate: certs/x.pem\n"
    check(tmp_path,
          f"{N}:9:11: error[value-syntax] gateway listen 'localhost' is not an IPv4 address",
          f"{N}:10:13: error[value-syntax] resolver 'dns;' must be IPv4[:PORT] addresses (port 1-65535)",
          f"{N}:11:16: error[value-syntax] gateway certificate must be an absolute path",
          node=node)


def test_value_syntax_values_nginx_and_docker_refuse_later(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:36: error[value-syntax] rate_limit zone_size 1k is below nginx's minimum, 32k",
          fleet=FLEET + "standard: {rate_limit: {zone_size: 1k}}\n")
    check(tmp_path, fleet=FLEET + "standard: {rate_limit: {zone_size: 32k}}\n")
    check(tmp_path, f"{F}:23:37: error[value-syntax] log_rotation max_size 'lots' must be a size like 10m",
          f"{F}:23:53: error[value-syntax] log_rotation max_file 'x y' must be a count like 3",
          fleet=FLEET + "standard: {log_rotation: {max_size: lots, max_file: 'x y'}}\n")
    check(tmp_path, fleet=FLEET + "standard: {log_rotation: {max_size: 50m, max_file: '5'}}\n")


@pytest.mark.parametrize("bind", ["127.0.0.1:0", "127.0.0.1:65536"])
def test_public_port_bind_port_in_range(tmp_path: Path, bind: str) -> None:
    check(tmp_path, f"{F}:23:15: error[public-port] api: publish {bind!r} must be ADDRESS:PORT, e.g. 127.0.0.1:3000",
          fleet=FLEET + f"    publish: ['{bind}']\n")


def test_value_syntax_gateway_settings_pass(tmp_path: Path) -> None:
    node = NODE + "gateway:\n  listen: 10.0.0.1\n  resolver: 127.0.0.11 10.0.0.53:53\n"
    check(tmp_path, node=node)


def test_rate_limit_burst_nginx_accepts(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "standard: {rate_limit: {rate: 30r/m, burst: 1, zone_size: 512k}}\n")
    check(tmp_path, f"{F}:23:45: error[schema] standard.rate_limit.burst: input should be greater than or equal to 1",
          fleet=FLEET + "standard: {rate_limit: {rate: 30r/m, burst: 0, zone_size: 512k}}\n")


# --- the folder of bad manifests ----------------------------------------------------------------------

BAD = Path(__file__).parent.parent / "bad"
BAD_CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def bad_workspace(case: str, root: Path) -> Path:
    """A scratch copy of tests/bad/<case>; a `pad` file ("PATH SIZE") grows that manifest to SIZE bytes there."""
    shutil.copytree(BAD / case / "nodes", root / "nodes")
    pad = BAD / case / "pad"
    if pad.is_file():
        rel, size = pad.read_text(encoding="utf-8").split()
        path = root / rel
        raw = path.read_bytes()
        path.write_bytes(raw + b"#" * (int(size) - len(raw)))
    return root


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_manifests(tmp_path: Path, case: str) -> None:
    root = bad_workspace(case, tmp_path)
    result = invoke("-C", str(root), "validate")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == (BAD / case / "expected.txt").read_text(encoding="utf-8")
    rendered = invoke("-C", str(root), "render", "--all")
    assert (rendered.code, rendered.stderr) == (1, result.stderr)
    assert not (root / "output").exists()


def test_bad_manifests_cover_the_issue() -> None:
    wanted = {"mvp-port-9555", "port-of-another-service", "typo-key", "literal-password", "broken-yaml",
              "duplicate-key", "empty-file", "not-utf8", "alias-bomb", "oversized", "wrong-types",
              "unknown-service", "uses-missing-node", "dependency-cycle", "route-injection", "public-publish",
              "image-latest", "secret-with-value", "many-problems"}
    assert wanted <= set(BAD_CASES)
    assert all((BAD / case / "expected.txt").is_file() for case in BAD_CASES)


# --- visibility / client-identity -------------------------------------------------------------------

NODE_USES_API = sub(NODE, "[postgres, gateway, api]", "[postgres, gateway]") + "uses: {api: n2}\n"


def test_visibility_fleet_route_and_admin_network_pass(tmp_path: Path) -> None:
    check(tmp_path, fleet=sub(FLEET, "route: api", "route: api\n    visibility: fleet")
          + "admin_networks: [10.8.0.0/24, 192.0.2.7, 2001:db8::/48]\n")


def test_visibility_without_a_route(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:9:17: error[visibility] postgres: visibility fleet needs a route or spa: true (a service "
          "without one is never reachable through the gateway)",
          fleet=sub(FLEET, "    protocol: tcp\n", "    protocol: tcp\n    visibility: fleet\n"))


def test_visibility_node_override_without_a_route(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:7:45: error[visibility] gateway: visibility public needs a route in the catalog",
          node=sub(NODE, "[postgres, gateway, api]", "[postgres, {gateway: {visibility: public}}, api]"))


def test_visibility_admin_networks_must_be_networks(tmp_path: Path) -> None:
    check(tmp_path,
          f"{F}:23:18: error[visibility] admin network '10.0.0.1/24' is not an IP address or network "
          "ADDRESS/PREFIX (host bits zero)",
          f"{F}:23:31: error[visibility] admin network '0.0.0.0/0' is wider than /8: it would trust most of the "
          "internet",
          f"{F}:23:42: error[visibility] admin network 'lan' is not an IP address or network ADDRESS/PREFIX "
          "(host bits zero)",
          fleet=FLEET + "admin_networks: [10.0.0.1/24, 0.0.0.0/0, lan, 10.0.0.0/8]\n")


def test_visibility_used_through_a_gateway_that_does_not_route_it(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:8:13: error[visibility] api: n2's gateway has no route for it (visibility none); "
          "use via: private, or give it visibility fleet on that node",
          node=NODE_USES_API,
          more={N2: sub(NODE2, "[postgres, gateway]", "[postgres, gateway, {api: {visibility: none}}]")})


def test_visibility_fleet_route_used_by_a_fleet_node_passes(tmp_path: Path) -> None:
    check(tmp_path, node=NODE_USES_API, more={N2: sub(NODE2, "[postgres, gateway]", "[postgres, gateway, api]")})


def test_client_identity_load_balancer_networks(tmp_path: Path) -> None:
    check(tmp_path,
          f"{N}:8:28: error[client-identity] load balancer '0.0.0.0/1' is wider than /8: it would trust most "
          "of the internet",
          f"{N}:8:39: error[client-identity] load balancer '10.0.0.300' is not an IP address or network "
          "ADDRESS/PREFIX (host bits zero)",
          node=NODE + "gateway: {load_balancers: [0.0.0.0/1, 10.0.0.300, 10.1.0.0/16]}\n")


def test_client_identity_one_load_balancer_passes(tmp_path: Path) -> None:
    check(tmp_path, node=NODE + "gateway: {load_balancers: [10.0.0.10]}\n")


# --- route: per-route gateway settings ----------------------------------------------------------------

def test_route_proxy_settings_pass(tmp_path: Path) -> None:
    check(tmp_path, fleet=sub(FLEET, "route: api", "route: api\n    proxy: {timeout: 120s, max_body: 100m, "
                              "cors: [\"https://app.demo.test\", \"http://localhost:3000\"], strip_prefix: false}"))


def test_route_cors_origins_cannot_inject(tmp_path: Path) -> None:
    check(tmp_path,
          f"{F}:22:20: error[route] api: cors '*' allows every origin; list it alone",
          f"{F}:22:25: error[route] api: cors origin 'https://a.test/app' must be '*' or scheme://host[:port], "
          "lowercase, no path",
          f"{F}:22:45: error[route] api: cors origin '\"; add_header X 1; #' must be '*' or scheme://host[:port], "
          "lowercase, no path",
          fleet=sub(FLEET, "route: api", "route: api\n    proxy: {cors: ['*', https://a.test/app, "
                    "'\"; add_header X 1; #']}"))


def test_route_two_single_page_apps_on_one_node(tmp_path: Path) -> None:
    fleet = sub(FLEET, "route: api", "route: api\n    spa: true") + (
        "  web:\n    class: mvp\n    build: services/web\n    port: 7002\n    spa: true\n")
    check(tmp_path, f"{N}:7:36: error[route] n1: api and web are both served at / (spa: true)",
          fleet=fleet, node=sub(NODE, "[postgres, gateway, api]", "[postgres, gateway, api, web]"))


def test_route_max_body_must_be_a_size(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:22:23: error[schema] services.api.proxy.max_body: string should match pattern "
          "'^[1-9][0-9]{0,5}[km]?$'",
          fleet=sub(FLEET, "route: api", "route: api\n    proxy: {max_body: 1g}"))


# --- containers: hardening and limits -----------------------------------------------------------------

def test_hardening_secret_in_a_command_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "    command: [server, --pass, '${API_PASS}']\n"
          "    hardening: {user: '1000:1000', cap_add: [NET_BIND_SERVICE], tmpfs: [/tmp, /run]}\n"
          "    limits: {memory: 2g, cpus: '0.5', pids: 64}\n    env:\n      API_PASS: {secret: true}\n")


def test_hardening_command_refers_to_no_secret(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:31: error[value-syntax] api: ${{HOME}} in a command must name a secret of the "
          "service's env ({secret: true}, not a file)",
          fleet=FLEET + "    command: [server, --pass, '${HOME}']\n")


def test_hardening_tmpfs_must_be_a_path(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:25: error[value-syntax] api: tmpfs '/' must be an absolute container path below /",
          f"{F}:23:28: error[value-syntax] api: tmpfs 'tmp' must be an absolute container path below /",
          fleet=FLEET + "    hardening: {tmpfs: [/, tmp]}\n")


def test_hardening_unknown_capability(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:27: error[schema] services.api.hardening.cap_add.0: input should be 'CHOWN', "
          "'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETGID', 'SETUID' or 'SETPCAP'",
          fleet=FLEET + "    hardening: {cap_add: [SYS_ADMIN]}\n")


# --- operations: backup shipping, adopted volumes ---------------------------------------------------

def test_backup_ship_to_names_a_node(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "standard:\n  backup: {ship_to: n2}\n", more={N2: NODE2})
    check(tmp_path, f"{F}:24:21: error[node-distribution] backup ship_to 'n3' is not a node of the fleet",
          fleet=FLEET + "standard:\n  backup: {ship_to: n3}\n", more={N2: NODE2})


def test_adopt_volumes_of_a_data_service(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    port: 5432\n", "    port: 5432\n    data: /var/lib/postgresql/data\n")
    check(tmp_path, fleet=fleet, node=NODE + "adopt_volumes: {postgres: microdao-daarion_postgres_data}\n")
    check(tmp_path, f"{N}:8:17: error[node-distribution] adopt_volumes: api is not a service of n1 that keeps data",
          f"{N}:8:22: error[value-syntax] adopt_volumes: 'bad name;' is not a Docker volume name",
          fleet=fleet, node=NODE + "adopt_volumes: {api: 'bad name;'}\n")


# --- cluster targets --------------------------------------------------------------------------------

SWARM = "targets: [swarm]\n"
API_IMAGE = "    build: services/api\n    cluster: {image: registry.demo.test/api:1.2.0}\n"


def test_cluster_gateway_runs_one_replica(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    gateway: true\n", "    gateway: true\n    cluster: {replicas: 2}\n")
    check(tmp_path, f"{F}:14:25: error[cluster] gateway: the gateway runs one replica per node "
                    "(it publishes the node's ports)", fleet=fleet)


def test_cluster_data_service_runs_one_replica(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    protocol: tcp\n", "    protocol: tcp\n    data: /var/lib/postgresql/data\n"
                                              "    cluster: {replicas: 3}\n")
    check(tmp_path, f"{F}:10:25: error[cluster] postgres: a service with a data volume runs one replica "
                    "(two would share /var/lib/postgresql/data)", fleet=fleet)


def test_cluster_image_is_pinned(tmp_path: Path) -> None:
    pinned = "    build: services/api\n    cluster: {image: 'demo/api:latest'}\n"
    fleet = sub(FLEET, "    build: services/api\n", pinned)
    check(tmp_path, f"{F}:20:22: error[image] api: image 'demo/api:latest' must be pinned to a version tag, "
                    "never latest", fleet=fleet)


def test_swarm_image_needed_for_a_built_service(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:19:12: error[cluster-image] api: Swarm cannot build 'services/api'; give cluster.image, "
                    "the pushed and pinned image of this service", fleet=FLEET + SWARM)
    check(tmp_path, fleet=sub(FLEET, "    build: services/api\n", API_IMAGE) + SWARM)


def test_swarm_name_fits_the_limit(tmp_path: Path) -> None:
    long = "postgres-and-a-name-that-is-long"
    fleet = sub(sub(FLEET, "project: demo\n", "project: " + "d" * 31 + "\n"), "  postgres:\n", f"  {long}:\n")
    fleet = sub(sub(fleet, "needs: [postgres]", f"needs: [{long}]"), "    build: services/api\n", API_IMAGE)
    node = sub(NODE, "services: [postgres, gateway, api]", f"services: [{long}, gateway, api]")
    check(tmp_path, f"{N}:7:12: error[swarm-name] {long}: Swarm service '{'d' * 31}_n1-{long}' is longer "
                    "than 63 characters", fleet=fleet + SWARM, node=node)


def test_swarm_cannot_publish_on_the_private_address_alone(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    build: services/api\n", API_IMAGE) + SWARM
    node2 = NODE2 + "uses:\n  api: {node: n1, via: private}\n"
    check(tmp_path, f"{N2}:9:24: error[swarm-publish] api: via: private publishes on n1's private address, "
                    "which Swarm cannot bind alone; use via: gateway for the Swarm target",
          fleet=fleet, more={N2: node2})


def test_reserved_node_id(tmp_path: Path) -> None:
    node = NODE.replace("node: n1", "node: swarm")
    check(tmp_path, "nodes/swarm.yaml:1:7: error[name-format] node id 'swarm' is reserved: output/swarm/ "
                    "holds the swarm target", node=None, more={"nodes/swarm.yaml": node})


def test_cluster_max_replicas_only_on_a_stateless_service(tmp_path: Path) -> None:
    fleet = sub(FLEET, "    gateway: true\n", "    gateway: true\n    cluster: {max_replicas: 4}\n")
    check(tmp_path, f"{F}:14:29: error[cluster] gateway: max_replicas 4 needs a stateless, non-gateway service "
                    "with replicas (1) at most that many", fleet=fleet)
    scaled = sub(FLEET, "    route: api\n", "    route: api\n    cluster: {image: registry.demo.test/api:1.2.0, "
                                           "replicas: 2, max_replicas: 8}\n")
    check(tmp_path, fleet=scaled + "targets: [kubernetes]\n")


def test_cluster_image_needed_for_kubernetes_too(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:19:12: error[cluster-image] api: Kubernetes cannot build 'services/api'; "
                    "give cluster.image, the pushed and pinned image of this service",
          fleet=FLEET + "targets: [kubernetes]\n")


# --- target-version ------------------------------------------------------------------------------

SYNAPSE = """\
  matrix-synapse:
    class: utility
    image: matrixdotorg/synapse:v1.127.1
    port: 8448
    health: {path: /health}
"""


def test_target_version_compose_new_enough_for_synapse_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + SYNAPSE + "target_versions: {compose: '2.23.1'}\n",
          node=sub(NODE, "gateway, api]", "gateway, api, matrix-synapse]"))


def test_target_version_compose_too_old_for_synapse(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:28:28: error[target-version] Compose 2.20 cannot run n1: Synapse's configuration is an "
          "inline config (configs: content:), which needs Compose 2.23.1 or later",
          fleet=FLEET + SYNAPSE + "target_versions: {compose: '2.20'}\n",
          node=sub(NODE, "gateway, api]", "gateway, api, matrix-synapse]"))
    # Without Synapse anywhere, an older Compose runs what is rendered.
    check(tmp_path, fleet=FLEET + "target_versions: {compose: '2.20'}\n")
