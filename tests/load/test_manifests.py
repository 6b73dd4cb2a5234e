"""nodegen/load/: a manifest is a regular file of YAML 1.2 that matches the strict schema, with exact located lines.

The cases use the tiny workspace of tests/rules/test_checks.py (FLEET and NODE; first appended line of FLEET
is line 23, of NODE line 8).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nodegen.load.yamlio import parse
from nodegen.pipeline import load_fleet
from nodegen.workspace import Workspace
from tests.rules.test_checks import FLEET, N2, NODE, F, N, check, sub

# --- schema ---------------------------------------------------------------------------------------

def test_schema_typo_key_did_you_mean(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:5: error[schema] unknown key 'protocl' in services.api; did you mean 'protocol'?",
          fleet=FLEET + "    protocl: http\n")


@pytest.mark.parametrize(("fleet", "node", "expected"), [
    (FLEET, sub(NODE, "services: [postgres, gateway, api]",
                "services:\n  - postgres\n  - gateway\n  - api: {publsh: ['127.0.0.1:7001']}"),
     f"{N}:10:11: error[schema] unknown key 'publsh' in services.2.api; did you mean 'publish'?"),
    (FLEET, NODE + "gateway: {htp_port: 81}\n",
     f"{N}:8:11: error[schema] unknown key 'htp_port' in gateway; did you mean 'http_port'?"),
    (FLEET + "standard: {healthcheck: {intervall: 30s}}\n", NODE,
     f"{F}:23:26: error[schema] unknown key 'intervall' in standard.healthcheck; did you mean 'interval'?"),
    (FLEET + "    env: {DB_PASSWORD: {secrt: true}}\n", NODE,
     f"{F}:23:25: error[schema] unknown key 'secrt' in services.api.env.DB_PASSWORD; did you mean 'secret'?"),
    (FLEET + "    health: {paht: /health}\n", NODE,
     f"{F}:23:14: error[schema] unknown key 'paht' in services.api.health; did you mean 'path'?"),
    (sub(FLEET, "project: demo", "projct: demo"), NODE,
     f"{F}:1:1: error[schema] unknown key 'projct' in top level; did you mean 'project'?"),
])
def test_schema_did_you_mean_at_every_depth(tmp_path: Path, fleet: str, node: str, expected: str) -> None:
    check(tmp_path, expected, fleet=fleet, node=node)


def test_schema_unknown_key_lists_allowed(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:8:1: error[schema] unknown key 'zzz' in top level; allowed: address, adopt_volumes, "
          "dev_overrides, domain, gateway, name, node, role, services, uptime, uses, visibility",
          node=NODE + "zzz: 1\n")


def test_schema_missing_key(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:17:3: error[schema] services.api: missing required key 'port'",
          fleet=sub(FLEET, "    port: 7001\n", ""))


@pytest.mark.parametrize("value", ["seven", "'7001'", "7001.0", "true"])
def test_schema_wrong_type(tmp_path: Path, value: str) -> None:
    check(tmp_path, f"{F}:20:11: error[schema] services.api.port: input should be a valid integer",
          fleet=sub(FLEET, "port: 7001", f"port: {value}"))


@pytest.mark.parametrize("value", ["'yes'", "on", "1", "'true'"])
def test_schema_yaml_1_2_strings_are_not_booleans(tmp_path: Path, value: str) -> None:
    check(tmp_path, f"{F}:13:14: error[schema] services.gateway.gateway: input should be a valid boolean",
          fleet=sub(FLEET, "gateway: true", f"gateway: {value}"))


def test_schema_wrong_literal(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:21:15: error[schema] services.api.protocol: input should be 'http', 'http+ws' or 'tcp'",
          fleet=sub(FLEET, "    port: 7001\n", "    port: 7001\n    protocol: udp\n"))


def test_schema_a_vocabulary_name_has_no_syntax(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:3:7: error[schema] role: string should match pattern '^[a-z0-9][a-z0-9/_-]{{0,31}}$'",
          node=sub(NODE, "role: production", 'role: "prod|dev"'))


def test_schema_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:1:1: error[schema] top level must be a mapping, not a list", node="- n1\n")


# --- yaml / file ------------------------------------------------------------------------------------

def test_yaml_broken_syntax(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:8:1: error[yaml] while parsing a flow sequence; did not find expected ',' or ']'",
          node=sub(NODE, "api]", "api"))


def test_yaml_duplicate_key(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:8:1: error[yaml] duplicate key 'role' (first defined at line 3)", node=NODE + "role: dev\n")


def test_yaml_empty_file(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:1:1: error[yaml] file is empty", node="\n")


def test_yaml_not_utf8(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:2:7: error[yaml] file is not valid UTF-8 (byte 0xcd)",
          node=NODE.encode().replace(b"N1", b"\xcd\xce\xc4\xc01"))


def test_yaml_custom_tag(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:2:7: error[yaml] custom tag tag:yaml.org,2002:python/name:os.system is not supported",
          node=sub(NODE, "name: N1", "name: !!python/name:os.system N1"))


def test_yaml_alias_bomb(tmp_path: Path) -> None:
    rows = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    check(tmp_path, f"{N}:1:42: error[yaml] document expands to more than 200000 values (alias bomb?)",
          node="\n".join(rows) + "\n")


def test_yaml_merge_key(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:8:1: error[yaml] merge keys (<<) are not supported; write the keys out",
          node=NODE + "<<: {x: 1}\n")


@pytest.mark.parametrize(("text", "value"), [
    ("22:22", "22:22"), ("NO", "NO"), ("on", "on"), ("yes", "yes"), ("1_000", "1_000"), ("2001-12-14", "2001-12-14"),
    ("0777", 777), ("0o17", 15), ("0x1F", 31), ("true", True), ("~", None),
])
def test_yaml_is_read_as_yaml_1_2(text: str, value: object) -> None:
    doc, problem = parse(f"key: {text}\n", "x.yaml")
    assert problem is None and doc is not None
    assert doc.data == {"key": value} and type(doc.data["key"]) is type(value)


def test_yaml_1_1_traps_stay_strings_through_to_compose(tmp_path: Path) -> None:
    env = "    env:\n      SSH_PORTS: 22:22\n      ANSWER: NO\n      MODE: on\n"
    check(tmp_path, fleet=FLEET + env)
    compose = load_fleet(Workspace(tmp_path)).render("n1")["docker-compose.all.yml"]
    assert '      SSH_PORTS: "22:22"\n' in compose
    assert '      ANSWER: "NO"\n' in compose
    assert '      MODE: "on"\n' in compose


def test_file_oversized(tmp_path: Path) -> None:
    check(tmp_path, f"{N}:1:1: error[file] file is 1048577 bytes; the limit is 1048576",
          node=NODE + "#" * (1024 * 1024 + 1 - len(NODE)))


def test_file_just_under_the_limit_passes(tmp_path: Path) -> None:
    check(tmp_path, node=NODE + "#" * (1024 * 1024 - 1 - len(NODE)) + "\n")


def test_file_no_node_manifests(tmp_path: Path) -> None:
    check(tmp_path, "nodes:1:1: error[file] no node manifests (nodes/<node>.yaml)", node=None)


def test_file_symlinked_manifest(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(NODE, encoding="utf-8")
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "n1.yaml").symlink_to(outside)
    check(tmp_path, f"{N}:1:1: error[file] manifest is a symlink or lies outside the workspace", node=None)


def test_file_one_node_in_two_manifests(tmp_path: Path) -> None:
    check(tmp_path, "nodes/n1.yml:1:1: error[file] n1.yaml and n1.yml both exist; keep one",
          more={"nodes/n1.yml": NODE})


def test_file_manifest_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "n2.yaml").mkdir(parents=True)
    check(tmp_path, f"{N2}:1:1: error[file] manifest is missing or not a regular file")


# --- schema: target versions ------------------------------------------------------------------------

def test_target_versions_nginx_passes(tmp_path: Path) -> None:
    check(tmp_path, fleet=FLEET + "target_versions: {nginx: '1.27.4'}\n")


def test_target_versions_nginx_must_be_a_version(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:23:26: error[schema] target_versions.nginx: string should match pattern "
          "'^[1-9]?[0-9]\\.[0-9]{1,3}(\\.[0-9]{1,3})?$'",
          fleet=FLEET + "target_versions: {nginx: 'latest; include /etc/passwd'}\n")


def test_schema_node_root_defaults_to_the_project_s_folder(tmp_path: Path) -> None:
    check(tmp_path)
    fleet = load_fleet(Workspace(tmp_path))
    assert fleet.manifests.fleet.standard.node_root == "/opt/demo"


def test_schema_a_bad_project_name_is_reported_once(tmp_path: Path) -> None:
    check(tmp_path, f"{F}:1:10: error[name-format] project 'demo app' must be lowercase ASCII letters and digits "
          "(2-31)", fleet=sub(FLEET, "project: demo", "project: demo app"))
