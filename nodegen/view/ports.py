"""The port tables: every port of every node in the layout of the standard's tables, from the resolved views.

Rows show what the rendered files really publish; conflicts and the next free port are the port
ledger's (rules/ports.py), which reads the manifests so that each side of a clash is located.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from nodegen.load.model import Standard
from nodegen.record import record
from nodegen.standard import host_port, table_headings, table_keys, table_of
from nodegen.view.resolve import NodeView, Svc

PROTOCOLS = {"tcp": "TCP", "http": "HTTP", "http+ws": "HTTP + WS"}


@record(order=True)
class PortRow:
    """One line of a port table: a service's port (or run of ports) on one node."""

    section: int  # index into the fleet's tables (standard.table_keys)
    first: int  # lowest port, for ordering
    title: str
    ports: str  # 7001, 8890-8891, 80/443
    protocol: str
    note: str
    klass: str
    node: str
    host: str  # how the host exposes it: binds, or "internal"


@record
class FleetRow:
    """A port table line for the whole fleet: the same port on every node that runs the service."""

    section: int
    first: int
    title: str
    ports: str
    protocol: str
    note: str
    klass: str
    nodes: tuple[str, ...]


def section_of(std: Standard, s: Svc) -> int:
    """Which of the fleet's port tables a service belongs to."""
    return table_keys(std).index(table_of(std, s.klass, s.stack, s.phase))


# --- rows -------------------------------------------------------------------------------------------

def span(ports: list[int]) -> str:
    """7001; 8890-8891 for a run of consecutive ports."""
    return str(ports[0]) if len(ports) == 1 else f"{ports[0]}-{ports[-1]}"


def extra_ports(s: Svc) -> dict[int, str]:
    """Ports besides the main one, and what they are for."""
    if s.gateway:
        return {}
    out: dict[int, list[str]] = {}
    for port, what in ((s.health_port, "health"), (s.metrics_port, "metrics")):
        if port != s.port:
            out.setdefault(port, []).append(what)
    return {p: " + ".join(w) for p, w in out.items()}


def port_groups(s: Svc) -> list[tuple[list[int], str | None]]:
    """The main port with the extra ports next to it (the standard writes Swapper as 8890-8891), then the rest."""
    extras = extra_ports(s)
    run = [s.port]
    while run[-1] + 1 in extras:
        run.append(run[-1] + 1)
    while run[0] - 1 in extras:
        run.insert(0, run[0] - 1)
    rest = sorted(p for p in extras if p not in run)
    return [(run, None)] + [([p], extras[p]) for p in rest]


def dev_ports(view: NodeView, s: Svc) -> tuple[int, ...]:
    """Ports docker-compose.dev.yml publishes on 127.0.0.1 for debugging (none unless the node has dev overrides)."""
    if not view.dev_overrides or s.gateway:
        return ()
    taken = {view.gateway.http_port, view.gateway.https_port} | {p for o in view.services for _, p in o.publish}
    ports = {s.port, *extra_ports(s)}
    return tuple(sorted(p for p in ports if p not in taken))


def _host(view: NodeView, s: Svc, ports: list[int]) -> str:
    if s.gateway:
        where = view.gateway.listen or "*"
        return ", ".join(host_port(where, p) for p in (view.gateway.http_port, view.gateway.https_port))
    binds = [host_port(a.strip("[]"), p) for a, p in s.publish] if s.port in ports else []
    if s.private_for and s.port in ports:
        binds.append(f"{s.private_bind} (private: {', '.join(s.private_for)})")
    dev = [p for p in dev_ports(view, s) if p in ports]
    if dev:
        binds.append(", ".join(host_port("127.0.0.1", p) for p in dev) + " (dev)")
    return "; ".join(binds) or "internal"


def node_rows(view: NodeView) -> list[PortRow]:
    """Every port of one node, one row per service (and per port that is not next to the main one)."""
    rows: list[PortRow] = []
    for s in view.services:
        section = section_of(view.standard, s)
        if s.gateway:
            gw = view.gateway
            rows.append(PortRow(section, gw.http_port, s.title, f"{gw.http_port}/{gw.https_port}", "HTTP/HTTPS",
                                s.note, s.klass, view.id, _host(view, s, [])))
            if view.relays:
                rows.append(PortRow(section, gw.internal_port, f"{s.title} (internal)", str(gw.internal_port), "HTTP",
                                    "fallback routes for this node's services", s.klass, view.id, "internal"))
            continue
        for ports, what in port_groups(s):
            protocol = PROTOCOLS[s.protocol] if what is None else "HTTP"
            note = s.note if what is None else what
            rows.append(PortRow(section, ports[0], s.title, span(ports), protocol, note, s.klass, view.id,
                                _host(view, s, ports)))
    return sorted(rows)


def fleet_rows(rows: Iterable[PortRow]) -> list[FleetRow]:
    """Node rows merged: one line per port of a service, with the nodes that run it."""
    merged: dict[tuple[int, int, str, str, str, str, str], list[str]] = {}
    for r in rows:
        merged.setdefault((r.section, r.first, r.title, r.ports, r.protocol, r.note, r.klass), []).append(r.node)
    return [FleetRow(*key, nodes=tuple(sorted(set(nodes)))) for key, nodes in sorted(merged.items())]


# --- tables -----------------------------------------------------------------------------------------

def cell(text: str) -> str:
    """A Markdown table cell: pipes escaped, never a line break."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _by_section(
    rows: Iterable[PortRow | FleetRow], std: Standard
) -> Iterator[tuple[str, list[PortRow | FleetRow]]]:
    listed = list(rows)
    for index, title in enumerate(table_headings(std)):
        found = [r for r in listed if r.section == index]
        if found:
            yield title, found


def fleet_tables(rows: Iterable[FleetRow], std: Standard, level: str = "###") -> str:
    """The fleet's ports in the standard's tables, with the nodes that run each."""
    out: list[str] = []
    for title, found in _by_section(rows, std):
        body = [(r.title, r.ports, r.protocol, r.note, r.klass, ", ".join(r.nodes))
                for r in found if isinstance(r, FleetRow)]
        out.append(f"{level} {title}\n\n" + table(("Service", "Port", "Protocol", "Note", "Class", "Nodes"), body))
    return "\n".join(out)


def node_tables(rows: Iterable[PortRow], std: Standard, level: str = "###") -> str:
    """One node's ports in the standard's tables, with what the host publishes."""
    out: list[str] = []
    for title, found in _by_section(rows, std):
        body = [(r.title, r.ports, r.protocol, r.note, r.klass, r.host) for r in found if isinstance(r, PortRow)]
        out.append(f"{level} {title}\n\n" + table(("Service", "Port", "Protocol", "Note", "Class", "Host"), body))
    return "\n".join(out)
