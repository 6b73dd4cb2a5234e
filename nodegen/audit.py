"""The standard's compliance checklist for one node's files in output/<node>/, each item with its evidence.

Items read what is on disk (what would be deployed) and compare it with what the manifests render.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nodegen.checksums import SUM_FILE, UNMANAGED, Files
from nodegen.output import compare
from nodegen.pipeline import Fleet
from nodegen.record import record
from nodegen.rules.compose import audit_compose, is_gateway, load_compose
from nodegen.targets import TARGETS, alerts, compose, docs, nginx, prometheus, scripts
from nodegen.view.resolve import NodeView

DOCS = docs.PATH


def top_level() -> set[str]:
    """The standard's node layout, as far as nodegen writes it (the registry's paths, the checksum file and the
    operator's own files); services/, migrations/ and backups/ live on the host."""
    written = {path.split("/", 1)[0] for target in TARGETS.values() for path in target.paths}
    return written | {SUM_FILE} | {u.split("/", 1)[0] for u in UNMANAGED}


@dataclass
class Item:
    """One line of the checklist."""

    title: str
    ok: bool = True
    evidence: list[str] = field(default_factory=list)

    def fail(self, line: str) -> None:
        self.ok = False
        self.evidence.append(line)


@record
class NodeFiles:
    """What the audit looks at: the node's view, its rendered files, and its folder on disk."""

    fleet: Fleet
    view: NodeView
    rendered: Files
    folder: Path

    def text(self, rel: str) -> str | None:
        path = self.folder / rel
        try:
            return path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            return None

    def yaml(self, rel: str) -> Any:
        text = self.text(rel)
        try:
            return yaml.safe_load(text) if text is not None else None
        except yaml.YAMLError:
            return None


def layout(n: NodeFiles) -> Item:
    item = Item("standard directory layout")
    present = sorted(p.name for p in n.folder.iterdir()) if n.folder.is_dir() else []
    if not present:
        item.fail(f"{n.folder.name}/ does not exist: run nodegen render {n.view.id}")
        return item
    for extra in sorted(set(present) - top_level()):
        item.fail(f"{extra}: not part of the standard's node layout")
    missing = sorted(rel for rel in n.rendered if not (n.folder / rel).is_file())
    for rel in missing:
        item.fail(f"{rel}: missing")
    if item.ok:
        item.evidence.append(", ".join(_layout_summary(n.rendered)))
    return item


def _layout_summary(rendered: Files) -> list[str]:
    """The node's top-level files in the registry's order, then each folder: its subfolders, or its file count."""
    order = [path for target in TARGETS.values() for path in target.paths]
    files = [p for p in order if p in rendered and "/" not in p]
    folders = list(dict.fromkeys(p.split("/", 1)[0] for p in order if "/" in p))
    out = list(files)
    for folder in folders:
        inside = [rel.split("/")[1:] for rel in rendered if rel.startswith(folder + "/")]
        subs = sorted({parts[0] for parts in inside if len(parts) > 1})
        if subs:
            out.append(f"{folder}/{{{','.join(subs)}}}")
        elif len(inside) > 1:
            out.append(f"{folder}/ ({len(inside)} files)")
        elif inside:
            out.append(f"{folder}/")
    return out


def compose_services(n: NodeFiles) -> Item:
    item = Item("Docker Compose with all services")
    data = n.yaml(compose.PATH)
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        item.fail(f"{compose.PATH}: missing or not a compose file")
        return item
    want = {s.name for s in n.view.services}
    have = set(data["services"])
    for name in sorted(want - have):
        item.fail(f"{name}: in the manifests, not in {compose.PATH}")
    for name in sorted(have - want):
        item.fail(f"{name}: in {compose.PATH}, not in the manifests")
    loaded, problems = load_compose(n.folder / compose.PATH, f"{n.folder.name}/{compose.PATH}", n.view.project)
    problems += audit_compose(loaded) if loaded is not None else []
    for p in problems:
        item.fail(f"{p.path}:{p.line}:{p.col}: {p.rule}: {p.message}")
    for rel in _unmounted(data["services"], n.rendered):
        item.fail(f"{rel}: generated, but no service mounts it")
    if n.text(compose.PATH) != n.rendered.get(compose.PATH):
        item.fail(f"{compose.PATH}: differs from what the manifests render (nodegen render {n.view.id})")
    if item.ok:
        item.evidence.append(f"{len(have)} services, as {n.view.manifest} lists them; no compose-level violation")
    return item


def _unmounted(services: dict[str, Any], rendered: Files) -> list[str]:
    """Generated configs a container reads (the registry's mounted targets) that no bind mount of the compose
    file brings into a container."""
    sources = {str(v).split(":", 1)[0].removeprefix("./").rstrip("/")
               for svc in services.values() if isinstance(svc, dict)
               for v in svc.get("volumes") or [] if str(v).startswith("./")}
    mounted = [t for t in TARGETS.values() if t.mounted]
    return sorted(rel for rel in rendered if any(t.owns(rel) for t in mounted)
                  and not any(rel == src or rel.startswith(src + "/") for src in sources))


def health(n: NodeFiles) -> Item:
    item = Item("health endpoints on all services")
    data = n.yaml(compose.PATH) or {}
    services = data.get("services") if isinstance(data, dict) else None
    services = services if isinstance(services, dict) else {}
    built = scraped = 0
    for svc in n.view.services:
        check = (services.get(svc.name) or {}).get("healthcheck", {})
        test = check.get("test")
        if svc.health_test == ("NONE",) and svc.metrics and "healthcheck" not in (services.get(svc.name) or {}):
            scraped += 1  # no probe binary in the image: Prometheus' `up` is its health check
        elif not test:
            item.fail(f"{svc.name}: no healthcheck")
        elif svc.build and f"{svc.health_path}" not in " ".join(map(str, test)):
            item.fail(f"{svc.name}: its healthcheck does not probe GET {svc.health_path}")
        elif svc.build:
            built += 1
    if item.ok:
        item.evidence.append(f"{len(n.view.services) - scraped} healthchecks; {built} services we build probe GET "
                             f"/health; scripts/health-check.sh runs them all"
                             + (f"; {scraped} exporters without a probe binary are checked by Prometheus' up"
                                if scraped else ""))
    return item


def _scrape_targets(fleet: Fleet) -> set[tuple[str, str]]:
    """(node, service) label pairs of every target any Prometheus of the fleet scrapes, read from output/."""
    pairs: set[tuple[str, str]] = set()
    for config in sorted(fleet.workspace.output_dir.glob(f"*/{prometheus.CONFIG}")):
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for job in data.get("scrape_configs") or []:
            for static in job.get("static_configs") or []:
                labels = static.get("labels") or {}
                pairs.add((str(labels.get("node")), str(labels.get("service"))))
    return pairs


def metrics(n: NodeFiles) -> Item:
    item = Item("Prometheus metrics")
    scraped = _scrape_targets(n.fleet)
    wanted = [s for s in n.view.services if s.metrics]
    for svc in wanted:
        if (n.view.id, svc.short) not in scraped:
            item.fail(f"{svc.name}: exposes {svc.metrics_path} but no Prometheus of the fleet scrapes it")
    output = n.fleet.workspace.output_dir
    scrapers = sorted(p.relative_to(output).parts[0] for p in output.glob(f"*/{prometheus.CONFIG}"))
    for node in scrapers:
        if not (output / node / alerts.PATH).is_file():
            item.fail(f"output/{node}/{alerts.PATH}: missing beside its Prometheus")
    if item.ok:
        rules = ", ".join(f"output/{node}/{alerts.PATH}" for node in scrapers)
        item.evidence.append(f"{len(wanted)} services expose /metrics, scraped by the Prometheus of "
                             f"{', '.join(scrapers)}; alert rules in {rules}")
    return item


@record
class Watch:
    """What the fleet's Prometheus configs on disk watch: scrape targets, probes, alert delivery."""

    scraped: frozenset[tuple[str, str]]  # (node, service label)
    probed: frozenset[tuple[str, str, str]]  # (job, node, url)
    alerting: frozenset[str]  # nodes whose Prometheus sends alerts to an Alertmanager


def _watch(fleet: Fleet) -> Watch:
    scraped: set[tuple[str, str]] = set()
    probed: set[tuple[str, str, str]] = set()
    alerting: set[str] = set()
    output = fleet.workspace.output_dir
    for config in sorted(output.glob(f"*/{prometheus.CONFIG}")):
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if data.get("alerting"):
            alerting.add(config.relative_to(output).parts[0])
        for job in data.get("scrape_configs") or []:
            name = str(job.get("job_name"))
            for static in job.get("static_configs") or []:
                labels = static.get("labels") or {}
                node = str(labels.get("node"))
                if name.startswith("probe-"):
                    probed.update((name, node, str(t)) for t in static.get("targets") or [])
                else:
                    scraped.add((node, str(labels.get("service"))))
    return Watch(frozenset(scraped), frozenset(probed), frozenset(alerting))


def coverage(n: NodeFiles) -> Item:
    """Which of the node's services, its host, its certificate and its public routes a Prometheus watches."""
    item = Item("monitoring coverage")
    w = _watch(n.fleet)
    v = n.view
    watched: list[str] = []
    exporters = {s.exporter_of: s for s in v.services if s.exporter_of is not None}
    direct = [s.name for s in v.services if s.metrics and (v.id, s.short) in w.scraped]
    via = [f"{s.name} (through {exporters[s.name].name})" for s in v.services
           if not s.metrics and s.name in exporters and (v.id, exporters[s.name].short) in w.scraped]
    for s in v.services:
        if s.name not in direct and not any(x.startswith(s.name + " ") for x in via):
            item.fail(f"service {s.name}: not watched (no metrics scraped, no exporter beside it)")
    watched.append(f"{len(direct) + len(via)} of {len(v.services)} services"
                   + (f", {', '.join(via)}" if via else ""))
    host = exporters.get("*")
    if host is not None and (v.id, host.short) in w.scraped:
        watched.append(f"host ({host.name})")
    else:
        item.fail("host: not watched (no node exporter scraped)")
    gw = v.gateway_service
    cert = [url for job, node, url in w.probed if job == "probe-gateways" and node == v.id]
    if cert:
        watched.append(f"certificate of {v.domain} ({cert[0]})")
    else:
        item.fail(f"certificate of {v.domain}: not watched (no blackbox probe of {gw.name})")
    routes = {url for job, node, url in w.probed if job == "probe-routes" and node == v.id}
    missing = [s.route for s in v.routed if not any(f"/api/{s.route}/" in url for url in routes)]
    for route in missing:
        item.fail(f"route /api/{route}/: not probed from outside")
    if v.routed and not missing:
        watched.append(f"{len(v.routed)} public routes probed")
    if w.alerting:
        watched.append(f"alerts sent to Alertmanager by the Prometheus of {', '.join(sorted(w.alerting))}")
    else:
        item.fail("alerts: no Prometheus of the fleet sends them to an Alertmanager")
    item.evidence[:0] = ["watched: " + ", ".join(watched)]
    return item


def _executable(n: NodeFiles, rel: str) -> bool:
    path = n.folder / rel
    return path.is_file() and bool(path.stat().st_mode & 0o111)


def backup(n: NodeFiles) -> Item:
    item = Item("backup strategy")
    db = scripts.database(n.view)
    if db is None:
        item.evidence.append("no database on this node: nothing to back up")
        return item
    if not _executable(n, scripts.BACKUP):
        item.fail(f"{scripts.BACKUP}: missing or not executable")
    cron = n.text(scripts.BACKUP_CRON) or ""
    policy = n.view.standard.backup
    if f"{policy.schedule} root " not in cron:
        item.fail(f"{scripts.BACKUP_CRON}: no '{policy.schedule}' schedule")
    if item.ok:
        item.evidence.append(f"{scripts.BACKUP}: pg_dump {db.name} into backups/, keeps {policy.keep_daily} daily and "
                             f"{policy.keep_weekly} weekly; {scripts.BACKUP_CRON}: {policy.schedule} UTC")
    return item


def rollback(n: NodeFiles) -> Item:
    item = Item("rollback plan")
    for rel in (scripts.DEPLOY, scripts.ROLLBACK):
        if not _executable(n, rel):
            item.fail(f"{rel}: missing or not executable")
    deploy = n.text(scripts.DEPLOY) or ""
    if "releases/$RELEASE/images.txt" not in deploy or "release_set previous" not in deploy:
        item.fail(f"{scripts.DEPLOY}: does not record each release (files, images, the one before it)")
    if item.ok:
        item.evidence.append(f"{scripts.DEPLOY} records each release (generated files, images, backup) in "
                             f"releases/; {scripts.ROLLBACK} returns to the previous one")
    return item


def gateway_tls(n: NodeFiles) -> Item:
    item = Item("gateway with TLS")
    conf = n.text(nginx.CONF) or ""
    gw = n.view.gateway
    checks = {
        f"listen on {gw.https_port} with ssl": re.search(rf"listen [^;]*\b{gw.https_port} ssl\b", conf),
        "name a certificate and its key": "ssl_certificate " in conf and "ssl_certificate_key " in conf,
        "redirect HTTP to HTTPS": "return 301 https://" in conf,
        "send Strict-Transport-Security": "Strict-Transport-Security" in conf,
    }
    for what, found in checks.items():
        if not found:
            item.fail(f"{nginx.CONF}: does not {what}")
    data = n.yaml(compose.PATH)
    raw = data.get("services") if isinstance(data, dict) else None
    services: dict[str, Any] = raw if isinstance(raw, dict) else {}
    gateways = [name for name, s in services.items() if isinstance(s, dict) and is_gateway(s)]
    if len(gateways) != 1:
        item.fail(f"{compose.PATH}: {len(gateways)} gateway services, expected 1")
    else:
        ports = " ".join(map(str, services[gateways[0]].get("ports") or []))
        if f":{gw.https_port}/tcp" not in ports:
            item.fail(f"{compose.PATH}: {gateways[0]} does not publish {gw.https_port}")
    if item.ok:
        item.evidence.append(f"{gateways[0]} publishes {gw.http_port}/{gw.https_port}; TLS 1.2/1.3 for "
                             f"{n.view.domain}, HTTP redirects to HTTPS, HSTS")
    return item


def _glob_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def gitignore_match(lines: list[str], rel: str) -> int | None:
    """The 1-based line of the .gitignore pattern that ignores rel (a file path), or None if it is not ignored."""
    parts = rel.split("/")
    candidates = [("/".join(parts[:k]), k < len(parts)) for k in range(1, len(parts) + 1)]
    verdict: int | None = None
    for number, raw in enumerate(lines, 1):
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        dir_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        anchored = "/" in pattern
        regex = re.compile(_glob_regex(pattern.lstrip("/")))
        for path, is_dir in candidates:
            subject = path if anchored else path.rsplit("/", 1)[-1]
            if (is_dir or not dir_only) and regex.fullmatch(subject):
                verdict = None if negate else number
                break
    return verdict


def env_not_in_git(n: NodeFiles) -> Item:
    item = Item(".env not in Git")
    root = n.fleet.workspace.root
    gitignore = root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.is_file() else []
    rel = f"{n.folder.relative_to(root).as_posix()}/.env"
    line = gitignore_match(lines, rel)
    if line is None:
        item.fail(f".gitignore does not ignore {rel}")
    else:
        item.evidence.append(f".gitignore:{line}: '{lines[line - 1].strip()}' ignores {rel}")
    if gitignore_match(lines, rel + ".example") is not None:
        item.fail(f".gitignore also ignores {rel}.example, which belongs in Git")
    if _tracked(root, rel):
        item.fail(f"{rel} is tracked by Git: git rm --cached {rel}")
    return item


def _tracked(root: Path, rel: str) -> bool:
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return False
    proc = subprocess.run([git, "-C", str(root), "ls-files", "--error-unmatch", "--", rel],
                          capture_output=True, text=True, timeout=30, check=False)
    return proc.returncode == 0


def docs_current(n: NodeFiles) -> Item:
    item = Item("documentation current")
    cmp = compare(n.folder, n.rendered, n.view.id)
    for rel in cmp.stale + cmp.missing:
        item.fail(f"{rel}: {'stale' if rel in cmp.stale else 'missing'} (nodegen render {n.view.id})")
    for rel in cmp.extra:
        item.fail(f"{rel}: not generated by the manifests")
    if item.ok:
        docs = f"{DOCS} is current" if DOCS in n.rendered else f"no {DOCS} generated for this node"
        item.evidence.append(f"all {len(n.rendered)} generated files match the manifests; {docs}")
    return item


CHECKLIST: tuple[Callable[[NodeFiles], Item], ...] = (
    layout, compose_services, health, metrics, coverage, backup, rollback, gateway_tls, env_not_in_git, docs_current,
)


def audit_node(fleet: Fleet, node_id: str) -> list[Item]:
    """The standard's compliance checklist for one node, in the standard's order."""
    view = fleet.view(node_id)
    files = NodeFiles(fleet, view, fleet.render(node_id), fleet.workspace.output_dir / node_id)
    return [check(files) for check in CHECKLIST]
