"""The port ledger: the standard's four port tables reproduced row by row, the next free port, conflicts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke

# A copy of the standard (the tests never read outside the repository).
STANDARD = ROOT / "tests" / "fixtures" / "standard" / "NODE_INFRASTRUCTURE_STANDARDS.md"
STANDARD_TABLES = ("Core Infrastructure", "DAGI Stack (Production)", "Phase 1-3 MVP Services",
                   "Multimodal Services (НОДА2 initially)")

Row = tuple[str, str, str, str]  # Service, Port, Protocol, Note


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Heading (###) -> the body rows of the first Markdown table under it, cells unescaped."""
    found: dict[str, list[list[str]]] = {}
    heading = None
    for line in markdown.splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
        elif heading and line.startswith("|") and not re.fullmatch(r"\|[-| ]+\|", line):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            found.setdefault(heading, []).append(cells)
        elif heading and heading in found and not line.startswith("|"):
            heading = None
    return {h: rows[1:] for h, rows in found.items()}  # drop each header row


def standard_tables() -> dict[str, list[Row]]:
    if not STANDARD.is_file():
        pytest.fail(f"the standard is missing: expected {STANDARD}")
    text = STANDARD.read_text(encoding="utf-8")
    section = text[text.index("## 🔢 Стандартні Порти"):text.index("**Правило:**")]
    parsed = tables(section)
    assert sorted(parsed) == sorted(STANDARD_TABLES), "the standard's port tables changed: update the test"
    return {h: [(r[0], r[1], r[2], r[3]) for r in rows] for h, rows in parsed.items()}


def fleet_ledger() -> dict[str, list[Row]]:
    result = invoke("-C", str(ROOT), "ports")
    assert result.code == 0, result.stderr
    fleet = result.stdout[result.stdout.index("## Fleet\n"):result.stdout.index("\n## node1")]
    return {h: [(r[0], r[1], r[2], r[3]) for r in rows] for h, rows in tables(fleet).items()}


# Where the standard contradicts itself the ledger follows the manifests, and says so (docs/decisions.md):
# its routing section serves wss://<domain>/ws/agents/events, so the Agents Service speaks HTTP + WS.
DEVIATIONS: dict[Row, Row] = {
    ("Agents Service", "7002", "HTTP", "Agent Core"): ("Agents Service", "7002", "HTTP + WS", "Agent Core"),
}


def test_ports_reproduces_every_row_of_the_standard_tables() -> None:
    ledger = fleet_ledger()
    expected = standard_tables()
    assert sum(len(rows) for rows in expected.values()) == 19
    missing = [(heading, row) for heading, rows in expected.items() for row in rows
               if row not in ledger.get(heading, [])]
    assert [row for _, row in missing] == list(DEVIATIONS)
    assert all(DEVIATIONS[row] in ledger[heading] for heading, row in missing)


def test_the_ledger_lists_every_port_of_every_node_with_class_and_host() -> None:
    out = invoke("-C", str(ROOT), "ports", "node1").stdout
    assert "## Fleet" not in out and out.startswith("# Port ledger\n\n## node1: НОДА1 (production, 24/7)\n")
    node1 = tables(out)
    assert ["Grafana", "3000", "HTTP", "Dashboards", "core", "127.0.0.1:3000"] in node1["Core Infrastructure"]
    assert ["Nginx/Gateway", "80/443", "HTTP/HTTPS", "Public entry", "core", "*:80, *:443"] \
        in node1["Core Infrastructure"]
    assert ["Swapper", "8890-8891", "HTTP", "Model Swapper + Metrics", "utility", "internal"] \
        in node1["DAGI Stack (Production)"]
    fleet = invoke("-C", str(ROOT), "ports").stdout
    assert "| PostgreSQL | 5432 | TCP | Internal only | core | node1, node2, node3 |" in fleet
    assert "| Matrix Synapse | 8448-8449 | HTTP | Matrix Synapse homeserver | utility | node3 |" in fleet


@pytest.mark.parametrize(("klass", "port"), [("mvp", 7007), ("utility", 8900), ("multimodal", 8900), ("dagi", 9301)])
def test_next_free_port_of_a_class_across_the_fleet(klass: str, port: int) -> None:
    result = invoke("-C", str(ROOT), "ports", "--next", klass)
    assert (result.code, result.stdout, result.stderr) == (0, f"{port}\n", "")


def test_next_free_port_skips_every_port_in_use(workspace: Path) -> None:
    fleet = workspace / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    fleet.write_text(text.replace("port: 7006", "port: 7999"), encoding="utf-8")
    # The highest mvp port is the end of the range: the search wraps to the first free port after 7000.
    result = invoke("-C", str(workspace), "ports", "--next", "mvp")
    assert result.stdout == "7000\n"
    fleet.write_text(text.replace("port: 7006", "port: 7999").replace("port: 7005", "port: 7000"), encoding="utf-8")
    assert invoke("-C", str(workspace), "ports", "--next", "mvp").stdout == "7005\n"


def test_port_problems_still_print_the_ledger_and_fail(workspace: Path) -> None:
    fleet = workspace / "nodes" / "fleet.yaml"
    fleet.write_text(fleet.read_text(encoding="utf-8").replace("port: 7002", "port: 9555"), encoding="utf-8")
    at = f"nodes/fleet.yaml:{port_line(fleet, 'agents-service')}:11"
    problem = f"{at}: error[port-class] agents-service: port 9555 is outside the mvp range 7000-7999\n"
    ledger = invoke("-C", str(workspace), "ports")
    assert ledger.code == 1 and "| Agents Service | 9555 | HTTP + WS | Agent Core | mvp | node1 |" in ledger.stdout
    assert ledger.stderr == problem + "1 port problem(s)\n"
    suggestion = invoke("-C", str(workspace), "ports", "--next", "mvp")
    assert (suggestion.code, suggestion.stdout) == (1, "7007\n")  # still answered; the problem still fails it
    fleet.write_text(fleet.read_text(encoding="utf-8").replace("needs: [postgres, nats, router]", "needs: [nope]"),
                     encoding="utf-8")
    other = invoke("-C", str(workspace), "ports")
    assert other.code == 1 and other.stdout == ""  # any other problem stops it like every command
    assert "error[unknown-dependency]" in other.stderr


def port_line(fleet: Path, service: str) -> int:
    """The line of a catalog service's `port:`."""
    lines = fleet.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"  {service}:")
    return next(i for i, line in enumerate(lines[start:], start + 1) if line.startswith("    port: "))


def test_conflicts_are_shown_with_both_locations(workspace: Path) -> None:
    fleet = workspace / "nodes" / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    fleet.write_text(text.replace("port: 8896", "port: 8895"), encoding="utf-8")
    node1 = workspace / "nodes" / "node1.yaml"
    node1.write_text(node1.read_text(encoding="utf-8").replace(
        "  - frontend\n", "  - frontend:\n      publish: [\"127.0.0.1:3000\"]\n"), encoding="utf-8")
    result = invoke("-C", str(workspace), "ports")
    assert result.code == 1
    assert result.stdout.startswith("# Port ledger\n")  # the ledger is still printed: it is how a clash is read
    stt, ocr = port_line(fleet, "stt-service"), port_line(fleet, "ocr-service")
    node1_lines = node1.read_text(encoding="utf-8").splitlines()
    grafana = next(i for i, line in enumerate(node1_lines, 1) if "127.0.0.1:3000\"]   #" in line)
    frontend = next(i for i, line in enumerate(node1_lines, 1) if line == '      publish: ["127.0.0.1:3000"]')
    assert "## Conflicts" not in result.stdout  # conflicts are problems, on stderr like every command's
    assert result.stderr == (
        f"nodes/fleet.yaml:{ocr}:11: error[port-conflict] ocr-service: port 8895 is already used by stt-service "
        f"(nodes/fleet.yaml:{stt}:11); the next free multimodal port is 8900 (nodegen ports --next multimodal)\n"
        f"nodes/node1.yaml:{frontend}:17: error[port-conflict] frontend: host port 3000 is already published by "
        f"grafana (nodes/node1.yaml:{grafana}:17)\n"
        "2 port problem(s)\n")
