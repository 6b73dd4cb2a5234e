"""The port ledger: every port of every node in the layout of the standard's port tables, and the next free one.

Rows come from the resolved node views (what the rendered files really publish); conflicts come from
the manifests, so that each side of a clash is named with its file:line:col.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nodegen.loader import Manifests
from nodegen.resolve import NodeView, Svc
from nodegen.topology import host_port, private_consumers
from nodegen.validate import CLASS_RANGE, node_service_entries, parse_bind, parse_range, service_ports
from nodegen.yamlio import Document, Loc

# The standard's four port tables, in its order and with its headings, then everything else.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("core", "Core Infrastructure"),
    ("dagi", "DAGI Stack (Production)"),
    ("mvp", "Phase 1-3 MVP Services"),
    ("multimodal", "Multimodal Services (НОДА2 initially)"),
    ("other", "Other Services"),
)
PROTOCOLS = {"tcp": "TCP", "http": "HTTP", "http+ws": "HTTP + WS"}
NEXT_CLASSES = ("mvp", "utility", "multimodal", "dagi")


@dataclass(frozen=True, order=True)
class PortRow:
    """One line of a port table: a service's port (or run of ports) on one node."""

    section: int  # index into SECTIONS
    first: int  # lowest port, for ordering
    title: str
    ports: str  # 7001, 8890-8891, 80/443
    protocol: str
    note: str
    klass: str
    node: str
    host: str  # how the host exposes it: binds, or "internal"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Conflict:
    """Two owners of one port, each with where it is written."""

    port: int
    scope: str  # "catalog" or a node id
    first: str
    second: str

    def __str__(self) -> str:
        return f"port {self.port} ({self.scope}): {self.first} and {self.second}"


def section_of(s: Svc) -> int:
    """Which of the standard's tables a service belongs to."""
    if s.klass in ("core", "multimodal"):
        key = s.klass
    elif "dagi" in (s.klass, s.stack, s.phase):
        key = "dagi"
    elif s.phase == "mvp":
        key = "mvp"
    else:
        key = "other"
    return [k for k, _ in SECTIONS].index(key)


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
        binds.append(f"{host_port(view.address, s.port)} (private: {', '.join(s.private_for)})")
    dev = [p for p in dev_ports(view, s) if p in ports]
    if dev:
        binds.append(", ".join(host_port("127.0.0.1", p) for p in dev) + " (dev)")
    return "; ".join(binds) or "internal"


def node_rows(view: NodeView) -> list[PortRow]:
    """Every port of one node, one row per service (and per port that is not next to the main one)."""
    rows: list[PortRow] = []
    for s in view.services:
        section = section_of(s)
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


def _by_section(rows: Iterable[PortRow | FleetRow]) -> Iterator[tuple[str, list[PortRow | FleetRow]]]:
    listed = list(rows)
    for index, (_, title) in enumerate(SECTIONS):
        found = [r for r in listed if r.section == index]
        if found:
            yield title, found


def fleet_tables(rows: Iterable[FleetRow], level: str = "###") -> str:
    """The fleet's ports in the standard's tables, with the nodes that run each."""
    out: list[str] = []
    for title, found in _by_section(rows):
        body = [(r.title, r.ports, r.protocol, r.note, r.klass, ", ".join(r.nodes))
                for r in found if isinstance(r, FleetRow)]
        out.append(f"{level} {title}\n\n" + table(("Service", "Port", "Protocol", "Note", "Class", "Nodes"), body))
    return "\n".join(out)


def node_tables(rows: Iterable[PortRow], level: str = "###") -> str:
    """One node's ports in the standard's tables, with what the host publishes."""
    out: list[str] = []
    for title, found in _by_section(rows):
        body = [(r.title, r.ports, r.protocol, r.note, r.klass, r.host) for r in found if isinstance(r, PortRow)]
        out.append(f"{level} {title}\n\n" + table(("Service", "Port", "Protocol", "Note", "Class", "Host"), body))
    return "\n".join(out)


# --- conflicts --------------------------------------------------------------------------------------

def _at(doc: Document, loc: Loc, what: str) -> str:
    line, col = doc.where(loc)
    return f"{what} ({doc.path}:{line}:{col})"


def catalog_conflicts(m: Manifests) -> list[Conflict]:
    """Two catalog services listening on the same port."""
    fd = m.fleet_doc
    owner: dict[int, str] = {}
    out: list[Conflict] = []
    for name, svc in m.fleet.services.items():
        if svc.gateway:
            continue
        for loc, port in service_ports(svc):
            here = _at(fd, ("services", name, *loc), name)
            if port in owner and not owner[port].startswith(f"{name} ("):
                out.append(Conflict(port, "catalog", owner[port], here))
            owner.setdefault(port, here)
    return out


def _binds(m: Manifests, node_id: str) -> Iterator[tuple[str | None, int, str]]:
    """(address or None for every address, host port, owner with location) of every host bind of a node."""
    node, doc, fd = m.nodes[node_id], m.node_docs[node_id], m.fleet_doc
    for key in ("http_port", "https_port"):
        yield node.gateway.listen, getattr(node.gateway, key), _at(doc, ("gateway", key), "the gateway")
    for i, name, override in node_service_entries(m, node_id):
        svc = m.fleet.services.get(name)
        if svc is None or svc.gateway:
            continue
        publish: list[tuple[str, Document, Loc]]
        if override is not None and override.publish is not None:
            publish = [(bind, doc, ("services", i, name, "publish", j)) for j, bind in enumerate(override.publish)]
        else:
            publish = [(bind, fd, ("services", name, "publish", j)) for j, bind in enumerate(svc.publish)]
        for bind, where_doc, loc in publish:
            parsed = parse_bind(bind)
            if parsed is not None:
                yield parsed[0].strip("[]"), parsed[1], _at(where_doc, loc, name)
        for consumer in private_consumers(m, node_id, name):
            yield node.address, svc.port, _at(m.node_docs[consumer], ("uses", name, "via"), f"{name} for {consumer}")


def host_conflicts(m: Manifests, node_id: str) -> list[Conflict]:
    """Two binds of one node on the same host port and overlapping addresses."""
    seen: list[tuple[str | None, int, str]] = []
    out: list[Conflict] = []
    for address, port, where in _binds(m, node_id):
        for other_address, other_port, other_where in seen:
            if port == other_port and (address is None or other_address is None or address == other_address):
                out.append(Conflict(port, node_id, other_where, where))
                break
        seen.append((address, port, where))
    return out


def conflicts(m: Manifests) -> list[Conflict]:
    found = catalog_conflicts(m)
    for node_id in sorted(m.nodes):
        found += host_conflicts(m, node_id)
    return found


# --- next free port ---------------------------------------------------------------------------------

def taken_ports(m: Manifests) -> set[int]:
    """Every port the fleet uses anywhere: catalog services (placed or not), core ports, gateways, host binds."""
    taken = set(m.fleet.standard.core_ports)
    for svc in m.fleet.services.values():
        taken.update(port for _, port in service_ports(svc))
    for node_id, node in m.nodes.items():
        taken.update((node.gateway.http_port, node.gateway.https_port, node.gateway.internal_port))
        taken.update(port for _, port, _ in _binds(m, node_id))
    return taken


def next_free(m: Manifests, klass: str) -> int | None:
    """The first free port after the highest one of the class, within the class's range (wrapping to its start)."""
    ranges = {str(k): v for k, v in m.fleet.standard.port_classes.items()}
    rng = parse_range(ranges.get(CLASS_RANGE[klass], ""))
    if rng is None:
        return None
    low, high = rng
    taken = taken_ports(m)
    own: list[int] = [p for svc in m.fleet.services.values() if svc.class_ == klass
                      for _, p in service_ports(svc) if low <= p <= high]
    start: int = max(own) + 1 if own else low
    return next((p for p in [*range(start, high + 1), *range(low, start)] if p not in taken), None)
