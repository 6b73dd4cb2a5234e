"""Map a hand-written prometheus.yml onto the services' metrics settings; everything else is reported."""

from __future__ import annotations

from typing import Any

from nodegen.importer.compose import ComposeMap
from nodegen.importer.draft import FLEET, Draft, where
from nodegen.importer.report import Kind
from nodegen.load.yamlio import Document

TOP: dict[str, tuple[Kind, str]] = {
    "global": ("mapped", "the standard's scrape and evaluation intervals apply"),
    "alerting": ("mapped", "Alertmanager beside Prometheus (fleet alertmanager: true)"),
    "rule_files": ("needs-review", "nodegen writes the standard's alert rules; hand-written rules are not imported"),
}
DROPPED: tuple[Kind, str] = ("dropped", "no manifest key carries it")
JOB_KEYS: dict[str, tuple[Kind, str]] = {
    "job_name": ("mapped", "nodegen names the job after the service"),
    "static_configs": ("mapped", "the service's own target"),
    "metrics_path": ("mapped", "metrics.path"),
    "scrape_interval": ("mapped", "the standard's interval applies"),
}


def map_prometheus(draft: Draft, compose: ComposeMap, doc: Document) -> None:
    data = doc.data if isinstance(doc.data, dict) else {}
    for key, value in data.items():
        if key == "scrape_configs":
            for i, job in enumerate(value or []):
                _job(draft, compose, doc, i, job if isinstance(job, dict) else {})
            continue
        kind, message = TOP.get(str(key), DROPPED)
        draft.gap(where(doc, (key,), key=True), kind, str(key), message)
        for sub in value if isinstance(value, dict) else ():
            draft.gap(where(doc, (key, sub), key=True), kind, f"{key}.{sub}", message)


def _job(draft: Draft, compose: ComposeMap, doc: Document, i: int, job: dict[str, Any]) -> None:
    name = str(job.get("job_name", i))
    targets = [str(t) for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]
    host, _, port = (targets[0] if targets else "").rpartition(":")
    service = compose.hosts.get(host)
    loc = ("scrape_configs", i)
    if service is None:
        draft.gap(where(doc, (*loc, "job_name")), "dropped", f"job {name}",
                  f"target {targets[0] if targets else '(none)'}: no service of the compose file")
        return
    for key in job:
        kind, message = JOB_KEYS.get(str(key), DROPPED)
        draft.gap(where(doc, (*loc, key), key=True), kind, f"job {name}.{key}", f"{service}: {message}")
    path = job.get("metrics_path")
    svc = ("services", service)
    if isinstance(path, str) and path != "/metrics":
        draft.put(FLEET, (*svc, "metrics", "path"), path, where(doc, (*loc, "metrics_path")))
    if port.isdigit() and int(port) != compose.ports.get(service):
        draft.put(FLEET, (*svc, "metrics", "port"), int(port), where(doc, (*loc, "static_configs", 0, "targets", 0)))
    draft.put(FLEET, (*svc, "metrics", "enabled"), True, where(doc, (*loc, "job_name")))
