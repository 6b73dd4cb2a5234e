"""`nodegen diff --base REF`: the manifests at a Git revision against the working tree, summarised for review.

Both sides are validated and rendered in memory. The summary goes node → service → facet (image,
ports, routes and limits, websocket channels, environment keys; per node the scrape jobs and alert
rules), then a one-line plan and the file diff. Environment values never appear: keys only.
"""

from __future__ import annotations

import difflib
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nodegen.checksums import Files
from nodegen.errors import NodegenError, ProblemsFound, UsageError
from nodegen.pipeline import Fleet, load_fleet
from nodegen.view.resolve import NodeView, Svc
from nodegen.workspace import Workspace

Facets = dict[str, list[str]]
SERVICE_FACETS = ("image", "ports", "routes", "websocket channels", "environment keys")
NODE_FACETS = ("scrape jobs", "alert rules", "route limits")


@dataclass
class Change:
    """What changed in one service or node: per facet, the items added and removed."""

    name: str
    status: str  # added, removed, changed
    facets: dict[str, dict[str, list[str]]] = field(default_factory=dict)


@dataclass
class NodeChange(Change):
    services: list[Change] = field(default_factory=list)


@dataclass
class Review:
    nodes: list[NodeChange]
    files: list[tuple[str, str]]  # (path, added|removed|changed)
    diff: str

    @property
    def changed(self) -> bool:
        return bool(self.files)


# --- the two sides ---------------------------------------------------------------------------------

def _git(ws: Workspace, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(ws.root), *args], capture_output=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise UsageError("diff --base needs git") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"git {' '.join(args[:2])}: {message[-1] if message else 'failed'}")
    return done.stdout


def fleet_at(ws: Workspace, ref: str, scratch: Path) -> Fleet:
    """The workspace's manifests as they are at ref, loaded and validated from a scratch copy."""
    # Run in the workspace, git archive takes paths, and writes them, relative to it.
    data = _git(ws, "archive", "--format=tar", ref, "--", "nodes")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        _extract(tar, scratch)
    base = Workspace(scratch.resolve())
    try:
        return load_fleet(base)
    except ProblemsFound as exc:
        raise NodegenError(f"the manifests at {ref} do not validate ({len(exc.problems)} problem(s)); "
                           f"nothing to compare") from None


def _extract(tar: tarfile.TarFile, scratch: Path) -> None:
    """Only the archive's folders and regular files, each under scratch (links and devices are left out).

    Python before 3.11.4 (Debian 12's 3.11.2) has no extraction filters, so the check is done here.
    """
    root = scratch.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        if not target.is_relative_to(root) or not (member.isdir() or member.isfile()):
            continue
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is not None:
            target.write_bytes(source.read())


def rendered(fleet: Fleet) -> Files:
    """Every file of the fleet, keyed by its path under output/."""
    out = {f"{node}/{rel}": text for node, files in fleet.render_many(fleet.node_ids).items()
           for rel, text in files.items()}
    out.update(fleet.render_root())
    return out


def review(ws: Workspace, ref: str, head: Fleet) -> Review:
    with tempfile.TemporaryDirectory(prefix="nodegen-base-") as tmp:
        base = fleet_at(ws, ref, Path(tmp))
        old, new = rendered(base), rendered(head)
        nodes = _node_changes(base, head, old, new)
    files = [(p, "added" if p not in old else "removed" if p not in new else "changed")
             for p in sorted(set(old) | set(new)) if old.get(p) != new.get(p)]
    return Review(nodes, files, _file_diff(old, new, [p for p, _ in files]))


# --- the summary -----------------------------------------------------------------------------------

def service_facets(s: Svc) -> Facets:
    return {
        "image": [s.image or f"build {s.build}"],
        "ports": [f"{s.port}/{s.protocol}", *(f"publish {a}:{p}" for a, p in s.publish)],
        "routes": [f"/api/{s.route}/"] if s.route else [],
        "websocket channels": [f"/ws/{s.route or s.short}/{c}" for c in s.websocket],
        "environment keys": [e.name for e in s.env],  # names only: values may be secrets
    }


def node_facets(view: NodeView, files: Files) -> Facets:
    limit = view.standard.rate_limit
    return {
        "scrape jobs": _names(files.get(f"{view.id}/infra/prometheus/prometheus.yml"), "scrape_configs", "job_name"),
        "alert rules": _alerts(files.get(f"{view.id}/infra/prometheus/alerts.yml")),
        "route limits": [f"rate {limit.rate} burst {limit.burst}"] if any(s.route for s in view.services) else [],
    }


def _names(text: str | None, key: str, name: str) -> list[str]:
    if text is None:
        return []
    data = yaml.safe_load(text) or {}
    return sorted({str(item.get(name)) for item in data.get(key) or [] if isinstance(item, dict)})


def _alerts(text: str | None) -> list[str]:
    if text is None:
        return []
    data = yaml.safe_load(text) or {}
    return sorted({f"{r.get('alert')} ({r.get('labels', {}).get('severity', '')})".replace(" ()", "")
                   for g in data.get("groups") or [] for r in g.get("rules") or [] if "alert" in r})


def _delta(old: Facets, new: Facets) -> dict[str, dict[str, list[str]]]:
    out = {}
    for facet in new.keys() | old.keys():
        before, after = set(old.get(facet, [])), set(new.get(facet, []))
        if before != after:
            out[facet] = {"added": sorted(after - before), "removed": sorted(before - after)}
    return dict(sorted(out.items()))


def _node_changes(base: Fleet, head: Fleet, old: Files, new: Files) -> list[NodeChange]:
    changes = []
    empty: Facets = {}
    for node in sorted(set(base.node_ids) | set(head.node_ids)):
        a = base.view(node) if node in base.node_ids else None
        b = head.view(node) if node in head.node_ids else None
        status = "added" if a is None else "removed" if b is None else "changed"
        change = NodeChange(node, status, _delta(node_facets(a, old) if a else empty,
                                                 node_facets(b, new) if b else empty))
        sa = {s.name: s for s in a.services} if a else {}
        sb = {s.name: s for s in b.services} if b else {}
        for name in sorted(set(sa) | set(sb)):
            facets = _delta(service_facets(sa[name]) if name in sa else empty,
                            service_facets(sb[name]) if name in sb else empty)
            st = "added" if name not in sa else "removed" if name not in sb else "changed"
            if facets or st != "changed":
                change.services.append(Change(name, st, facets))
        if change.services or change.facets or status != "changed":
            changes.append(change)
    return changes


def plan(r: Review) -> str:
    """One line: how many services changed, were added or removed; routes; nodes; files."""
    count: dict[str, int] = {}
    for node in r.nodes:
        if node.status != "changed":
            count[f"node {node.status}"] = count.get(f"node {node.status}", 0) + 1
        for svc in node.services:
            count[f"service {svc.status}"] = count.get(f"service {svc.status}", 0) + 1
            routes = svc.facets.get("routes", {})
            for kind in ("added", "removed"):
                if routes.get(kind):
                    count[f"route {kind}"] = count.get(f"route {kind}", 0) + len(routes[kind])
    order = ["node added", "node removed", "service changed", "service added", "service removed",
             "route added", "route removed"]
    parts = [f"{count[k]} {_plural(k, count[k])}" for k in order if k in count]
    parts.append(f"{len(r.files)} file(s) changed" if r.files else "no file changes")
    return "; ".join(parts)


def _plural(label: str, n: int) -> str:
    """'service changed' -> 'services changed' for more than one."""
    noun, verb = label.split(" ", 1)
    return f"{noun}{'s' if n > 1 else ''} {verb}"


def _file_diff(old: Files, new: Files, paths: list[str]) -> str:
    chunks: list[str] = []
    for p in paths:
        a, b = old.get(p), new.get(p)
        chunks.extend(difflib.unified_diff((a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True),
                                           fromfile=f"a/output/{p}" if a is not None else "/dev/null",
                                           tofile=f"b/output/{p}" if b is not None else "/dev/null"))
        if chunks and not chunks[-1].endswith("\n"):
            chunks.append("\n\\ No newline at end of file\n")
    return "".join(chunks)


# --- output ----------------------------------------------------------------------------------------

def markdown(r: Review, ref: str) -> str:
    lines = [f"## nodegen diff against {ref}", "", f"**Plan:** {plan(r)}", ""]
    for node in r.nodes:
        lines.append(f"### {node.name} ({node.status})")
        lines += _facet_lines(node.facets, "- ")
        for svc in node.services:
            lines.append(f"- **{svc.name}** ({svc.status})")
            lines += _facet_lines(svc.facets, "  - ")
        lines.append("")
    if r.diff:
        lines += ["<details><summary>File diff</summary>", "", "```diff", r.diff.rstrip("\n"), "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def _facet_lines(facets: dict[str, dict[str, list[str]]], indent: str) -> list[str]:
    out = []
    for facet, delta in facets.items():
        items = [f"+{x}" for x in delta["added"]] + [f"-{x}" for x in delta["removed"]]
        out.append(f"{indent}{facet}: {', '.join(f'`{i}`' for i in items)}")
    return out


def as_json(r: Review, ref: str) -> dict[str, Any]:
    return {
        "base": ref,
        "plan": plan(r),
        "changed": r.changed,
        "nodes": [{"node": n.name, "status": n.status, "facets": n.facets,
                   "services": [{"service": s.name, "status": s.status, "facets": s.facets} for s in n.services]}
                  for n in r.nodes],
        "files": [{"path": f"output/{p}", "status": s} for p, s in r.files],
        "diff": r.diff,
    }
