"""A fleet's own classes, roles and uptimes change what is rendered exactly as the standard's words do."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import invoke

VOCABULARY = """\
  port_classes: {web: 7000-7999}
  classes:
    infra: {table: base}
    web: {range: web, visibility: public}
  roles: {live: {}, bench: {dev: true}}
  uptimes: {always: {}, sometimes: {on_demand: true}, rarely: {on_demand: true}}
  port_tables: {base: Base, web: Web}
"""


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "w"
    assert invoke("init", str(ws), "--preset", "minimal", "--nodes", "2").code == 0
    fleet = ws / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    head, services = text.split("\nservices:\n")
    start = head.index("  port_classes:")
    end = head.index("  # Exporters keep")
    head = head[:start] + VOCABULARY + head[end:]
    services = services.replace("    class: core\n", "    class: infra\n")
    services += """
  shop:
    description: the web shop
    class: web
    build: services/shop
    cluster: {image: "registry.example/shop:1.0.0"}
    port: 7001
    route: shop
"""
    fleet.write_text(head + "\nservices:\n" + services, encoding="utf-8")
    for k, role, uptime in ((1, "live", "always"), (2, "bench", "sometimes")):
        node = ws / "nodes" / f"node{k}.yaml"
        text = node.read_text(encoding="utf-8").replace("role: production", f"role: {role}")
        text = text.replace("uptime: 24/7", f"uptime: {uptime}").replace("  - redis\n", "  - redis\n  - shop\n")
        node.write_text(text, encoding="utf-8")
    result = invoke("-C", str(ws), "render", "--all")
    assert result.code == 0, result.stderr
    return ws / "output"


def test_a_fleet_of_its_own_words_renders_with_their_meaning(tmp_path: Path) -> None:
    out = _workspace(tmp_path)
    # bench is a dev role: the dev override, DEBUG by default, a fleet-only route.
    assert (out / "node2" / "docker-compose.dev.yml").is_file()
    assert not (out / "node1" / "docker-compose.dev.yml").exists()
    assert "LOG_LEVEL=DEBUG" in (out / "node2" / ".env.example").read_text(encoding="utf-8")
    assert "LOG_LEVEL=INFO" in (out / "node1" / ".env.example").read_text(encoding="utf-8")
    assert "LOG_LEVEL" not in "".join(  # infra: no range, no LOG_LEVEL for the cache
        line for line in (out / "node1" / ".env.example").read_text(encoding="utf-8").splitlines()
        if "redis" in line.lower())
    # Two on-demand uptimes: the paging variants exclude both, sorted; Alertmanager pages neither.
    alerts = (out / "node1" / "infra" / "prometheus" / "alerts.yml").read_text(encoding="utf-8")
    assert 'uptime!~"rarely|sometimes"' in alerts and 'uptime=~"rarely|sometimes"' in alerts
    routes = yaml.safe_load((out / "node1" / "infra" / "alertmanager" / "alertmanager.yml").read_text(
        encoding="utf-8"))["route"]["routes"]
    assert ['severity="critical"', 'role=~"bench"'] in [r["matchers"] for r in routes]
    assert ['severity="critical"', 'uptime!~"rarely|sometimes"'] in [r["matchers"] for r in routes]
    # The fleet's own tables, in its order; the class web lands in the table named by its phase.
    fleet_md = (out / "FLEET.md").read_text(encoding="utf-8")
    assert fleet_md.index("### Base\n") < fleet_md.index("### Web\n")
    assert "| shop | 7001 | HTTP | the web shop | web |" in fleet_md
    assert "### Other Services" not in fleet_md


def test_a_fleet_without_on_demand_uptimes_pages_on_every_node(tmp_path: Path) -> None:
    ws = tmp_path / "w"
    assert invoke("init", str(ws), "--preset", "minimal").code == 0
    fleet = ws / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8").replace('uptimes: {"24/7": {}, on-demand: {on_demand: true}}',
                                                     'uptimes: {"24/7": {}}')
    fleet.write_text(text, encoding="utf-8")
    assert invoke("-C", str(ws), "render", "--all").code == 0
    alerts = (ws / "output" / "node1" / "infra" / "prometheus" / "alerts.yml").read_text(encoding="utf-8")
    assert "uptime" not in alerts.split("groups:")[1].split("by (")[0]
    assert 'uptime!="' not in alerts and 'severity: info' not in alerts
    manager = (ws / "output" / "node1" / "infra" / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
    assert "uptime!=" not in manager and 'role=~"dev"' in manager
