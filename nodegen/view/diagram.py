"""Mermaid flowcharts of one node and of the fleet, as GitHub renders them in Markdown and pull requests."""

from __future__ import annotations

import functools
import re

from nodegen.view.resolve import FleetView, NodeView, Svc

INTERNET = "internet"


_NOT_ID = re.compile(r"[^A-Za-z0-9]")


@functools.cache
def _id_part(part: str) -> str:
    return _NOT_ID.sub("_", part)


def ident(*parts: str) -> str:
    """A Mermaid node id: ASCII letters, digits and underscores only."""
    return "_".join(map(_id_part, parts))


def label(text: str) -> str:
    """A quoted Mermaid label; quotes and angle brackets become entities so a label cannot break out."""
    safe = text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return f'"{safe}"'


def _box(view: NodeView, s: Svc) -> str:
    ports = f"{view.gateway.http_port}/{view.gateway.https_port}" if s.gateway else str(s.port)
    shape = ('[(', ')]') if s.tier == "data" else ('[', ']')
    return f"{ident(view.id, s.name)}{shape[0]}{label(f'{s.title} :{ports}')}{shape[1]}"


def _subgraph(view: NodeView, services: tuple[Svc, ...] | None = None, indent: str = "    ") -> list[str]:
    title = f"{view.name} · {view.id} · {view.role} · {view.uptime}"
    lines = [f"{indent}subgraph {ident(view.id)}[{label(title)}]"]
    lines += [f"{indent}    {_box(view, s)}" for s in (view.services if services is None else services)]
    lines.append(f"{indent}end")
    return lines


def _local_edges(view: NodeView) -> list[str]:
    lines: list[str] = []
    gw = view.gateway_service
    lines.append(f"    {INTERNET} -->|{label('HTTPS')}| {ident(view.id, gw.name)}")
    for s in view.routed:
        lines.append(f"    {ident(view.id, gw.name)} -->|{label('/api/' + (s.route or ''))}| {ident(view.id, s.name)}")
    for s in view.services:
        lines += [f"    {ident(view.id, s.name)} --> {ident(view.id, d)}" for d in s.depends]
    return lines


def node_diagram(view: NodeView) -> str:
    """One node: its gateway routes, local dependencies, what it uses from others and who uses it."""
    lines = ["flowchart LR", f"    {INTERNET}(({label('Internet')}))", *_subgraph(view), *_local_edges(view)]
    for r in view.remotes:
        target = ident(r.node, r.service)
        lines.append(f"    {target}[{label(f'{r.service} on {r.node}')}]")
        for s in view.services:
            if r.service in s.remote_needs:
                how = f"{r.env_name} via {r.via}" + (f", fallback {r.fallback}" if r.fallback else "")
                lines.append(f"    {ident(view.id, s.name)} -.->|{label(how)}| {target}")
    for user in sorted({u.node for u in view.users}):
        lines.append(f"    {ident(user)}[{label(f'node {user}')}]")
    for u in view.users:
        lines.append(f"    {ident(u.node)} -.->|{label(f'{u.kind} via {u.via}')}| {ident(view.id, u.service)}")
    return "\n".join(lines) + "\n"


def fleet_diagram(fleet: FleetView) -> str:
    """Every node with its services, the cross-node uses between them, and who scrapes whom."""
    lines = ["flowchart LR"]
    for view in fleet.nodes:
        lines += _subgraph(view)
    for view in fleet.nodes:
        for r in view.remotes:
            consumers = [s for s in view.services if r.service in s.remote_needs] or [view.gateway_service]
            for s in consumers:
                lines.append(f"    {ident(view.id, s.name)} -->|{label(r.via)}| {ident(r.node, r.service)}")
            if r.fallback and r.fallback != "local":
                fallback = ident(r.fallback, r.service)
                lines += [f"    {ident(view.id, s.name)} -.->|{label('fallback')}| {fallback}" for s in consumers]
    for view in fleet.nodes:
        prom = view.service("prometheus")
        for other in sorted({r.node for r in view.scrape_remote}):
            gw = fleet.node(other).gateway_service
            lines.append(f"    {ident(view.id, prom.name if prom else 'prometheus')} -.->|{label('scrape')}| "
                         f"{ident(other, gw.name)}")
    return "\n".join(lines) + "\n"
