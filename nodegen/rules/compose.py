"""The standard's compose-level rules applied to any compose file, hand-written ones included; problems located.

The file is read through nodegen.yamlio, so every violation points at the line and column of the key
or value at fault. Where a rule exists for manifests, the compose rule shares its id.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nodegen.load.yamlio import Document, Loc, load
from nodegen.pins import too_old
from nodegen.problems import Problem
from nodegen.record import record
from nodegen.standard import SECRET_NAME, secret_kind

RULES: dict[str, str] = {
    "compose-version": "no top-level version key (Compose v2 calls it obsolete)",
    "restart-policy": "every service has a restart policy other than no",
    "log-rotation": "every service's logs rotate (json-file or local driver with max-size and max-file)",
    "labels": "every service carries the com.<project>.service, .tier and .phase labels",
    "gateway-tls": "exactly one gateway (nginx, caddy, traefik, haproxy) publishes 443 for TLS",
    "image-minimum": "a third-party image is not older than the release that fixed a known vulnerability",
}
GATEWAY_IMAGES = ("nginx", "caddy", "traefik", "haproxy", "envoy")
INTERPOLATED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$|^\$[A-Za-z_][A-Za-z0-9_]*$")
LABEL_KEYS = ("service", "tier", "phase")


@record
class Compose:
    """A loaded compose file and the project its names should carry."""

    doc: Document
    project: str | None

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        raw = self.doc.data.get("services") if isinstance(self.doc.data, dict) else None
        return {k: v for k, v in raw.items() if isinstance(v, dict)} if isinstance(raw, dict) else {}

    def at(self, loc: Loc, rule: str, message: str, *, key: bool = False) -> Problem:
        return self.doc.problem(loc, rule, message, key=key)


def load_compose(path: Path, display: str, project: str | None = None) -> tuple[Compose | None, list[Problem]]:
    """The compose file, with the project taken from --project, its name: key, or its container names."""
    doc, problem = load(path, display)
    if doc is None:
        return None, [problem] if problem else []
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("services"), dict):
        return None, [doc.problem((), "schema", "not a compose file: no services mapping")]
    return Compose(doc, project or _project(doc.data)), []


def _project(data: dict[str, Any]) -> str | None:
    if isinstance(data.get("name"), str):
        return str(data["name"])
    prefixes = Counter(str(s["container_name"]).split("-", 1)[0] for s in data["services"].values()
                       if isinstance(s, dict) and "-" in str(s.get("container_name", "")))
    return prefixes.most_common(1)[0][0] if prefixes else None


def _svc(name: str, *rest: str | int) -> Loc:
    return ("services", name, *rest)


# --- the rules, one function each ---------------------------------------------------------------------

def version_key(c: Compose) -> Iterator[Problem]:
    if "version" in c.doc.data:
        yield c.at(("version",), "compose-version",
                   "the top-level 'version' key is obsolete in Compose v2; remove it", key=True)


def pinned_images(c: Compose) -> Iterator[Problem]:
    for name, svc in c.services.items():
        image = svc.get("image")
        if not isinstance(image, str) or "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else None
        if tag is None or tag == "latest" or not re.search(r"[0-9]", tag):
            yield c.at(_svc(name, "image"), "image",
                       f"{name}: image {image!r} is not pinned to a version tag")


def image_minimums(c: Compose) -> Iterator[Problem]:
    for name, svc in c.services.items():
        image = svc.get("image")
        minimum = too_old(image) if isinstance(image, str) else None
        if minimum is not None:
            yield c.at(_svc(name, "image"), "image-minimum",
                       f"{name}: image {image!r} is older than {minimum.text} ({minimum.reason})")


def _environment(svc: dict[str, Any]) -> Iterator[tuple[str | int, str, str]]:
    """(loc key, variable, value) for dict and list forms of environment."""
    env = svc.get("environment")
    if isinstance(env, dict):
        for var, value in env.items():
            if value is not None:
                yield var, str(var), str(value)
    elif isinstance(env, list):
        for i, item in enumerate(env):
            var, _, value = str(item).partition("=")
            yield i, var, value


def literal_secrets(c: Compose) -> Iterator[Problem]:
    for name, svc in c.services.items():
        for key, var, value in _environment(svc):
            if not value or INTERPOLATED.match(value):
                continue
            where = _svc(name, "environment", key)
            if SECRET_NAME.search(var):
                yield c.at(where, "secret-literal", f"{name}: {var} is a literal secret; use ${{{var}}} from .env")
                continue
            what = secret_kind(value)
            if what is not None:
                yield c.at(where, "secret-literal", f"{name}: {var} holds {what}; take it from .env")


def _has_healthcheck(svc: dict[str, Any]) -> bool:
    check = svc.get("healthcheck")
    return isinstance(check, dict) and not check.get("disable") and bool(check.get("test"))


def healthchecks(c: Compose) -> Iterator[Problem]:
    services = c.services
    for name, svc in services.items():
        exempt = is_exporter(svc) and "healthcheck" not in svc
        if not _has_healthcheck(svc) and not exempt:
            yield c.at(_svc(name), "health-endpoint", f"{name}: no healthcheck (the standard: GET /health)", key=True)
        depends = svc.get("depends_on")
        if not isinstance(depends, dict):
            continue
        for dep, spec in depends.items():
            healthy = isinstance(spec, dict) and spec.get("condition") == "service_healthy"
            if healthy and dep in services and not _has_healthcheck(services[dep]):
                yield c.at(_svc(name, "depends_on", dep, "condition"), "health-endpoint",
                           f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck (fails at up)")


def restart_policies(c: Compose) -> Iterator[Problem]:
    for name, svc in c.services.items():
        restart = svc.get("restart")
        deploy = svc.get("deploy")
        if restart is None and isinstance(deploy, dict) and "restart_policy" in deploy:
            continue
        if restart is None:
            yield c.at(_svc(name), "restart-policy", f"{name}: no restart policy (e.g. unless-stopped)", key=True)
        elif str(restart) in ("no", "False", "false"):
            yield c.at(_svc(name, "restart"), "restart-policy", f"{name}: restart: {restart} never restarts it")


def log_rotation(c: Compose) -> Iterator[Problem]:
    for name, svc in c.services.items():
        logging = svc.get("logging")
        if not isinstance(logging, dict):
            yield c.at(_svc(name), "log-rotation", f"{name}: no logging options: its logs grow without limit",
                       key=True)
            continue
        options = logging.get("options")
        keys = set(options) if isinstance(options, dict) else set()
        driver = logging.get("driver", "json-file")
        if driver in ("json-file", "local") and not {"max-size", "max-file"} <= keys:
            yield c.at(_svc(name, "logging"), "log-rotation", f"{name}: the {driver} driver needs max-size, max-file")


def is_gateway(svc: dict[str, Any]) -> bool:
    image = svc.get("image")
    if not isinstance(image, str):
        return False
    repository = _repository(image)
    return repository.startswith(GATEWAY_IMAGES) and not repository.endswith("exporter")


def _repository(image: str) -> str:
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def is_exporter(svc: dict[str, Any]) -> bool:
    """A Prometheus exporter's image: Prometheus scraping it (`up`) is its health check."""
    image = svc.get("image")
    return isinstance(image, str) and _repository(image).endswith("exporter")


def _published(entry: Any) -> tuple[str | None, str] | None:
    """(host address, container port) of a ports entry, short or long form."""
    if isinstance(entry, dict):
        return (str(entry["host_ip"]) if "host_ip" in entry else None), str(entry.get("target", ""))
    parts = str(entry).split("/", 1)[0].rsplit(":", 2)
    if len(parts) == 3:
        return parts[0].strip("[]"), parts[2]
    if len(parts) == 2:
        return None, parts[1]
    return None, parts[0]


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def public_ports(c: Compose) -> Iterator[Problem]:
    for name, svc in c.services.items():
        ports = svc.get("ports")
        if is_gateway(svc) or not isinstance(ports, list):
            continue
        for i, entry in enumerate(ports):
            published = _published(entry)
            if published is not None and not _loopback(published[0]):
                yield c.at(_svc(name, "ports", i), "public-port",
                           f"{name}: publishes {entry} on every address; only the gateway publishes ports")


def gateway_tls(c: Compose) -> Iterator[Problem]:
    gateways = [n for n, s in c.services.items() if is_gateway(s)]
    if not gateways:
        yield c.at(("services",), "gateway-tls", "no gateway service (nginx) publishes 80/443", key=True)
        return
    for name in gateways:
        ports = c.services[name].get("ports")
        targets = {p[1] for p in map(_published, ports if isinstance(ports, list) else []) if p is not None}
        if "443" not in targets:
            yield c.at(_svc(name), "gateway-tls", f"{name}: the gateway does not publish 443 (TLS)", key=True)


def names(c: Compose) -> Iterator[Problem]:
    if c.project is None:
        return
    net, data = f"{c.project}_net", f"{c.project}_data"  # data: the data services' own (docs/decisions.md)
    for name, svc in c.services.items():
        want = f"{c.project}-{name}"
        if svc.get("container_name") != want:
            named = "container_name" in svc
            loc = _svc(name, "container_name") if named else _svc(name)
            yield c.at(loc, "name-format", f"{name}: container_name should be {want!r}", key=not named)
        networks = svc.get("networks")
        joined = list(networks) if isinstance(networks, (list, dict)) else []
        if not {net, data} & set(joined):
            loc = _svc(name, "networks") if networks is not None else _svc(name)
            yield c.at(loc, "name-format", f"{name}: on neither the {net} nor the {data} network",
                       key=networks is None)
        yield from _volume_names(c, name, svc)


def _volume_names(c: Compose, name: str, svc: dict[str, Any]) -> Iterator[Problem]:
    volumes = svc.get("volumes")
    for i, entry in enumerate(volumes if isinstance(volumes, list) else []):
        source = entry.get("source") if isinstance(entry, dict) else str(entry).split(":", 1)[0]
        if isinstance(source, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", source) and \
                source != f"{name}_data":
            yield c.at(_svc(name, "volumes", i), "name-format",
                       f"{name}: volume {source!r} should be named {name}_data")


def labels(c: Compose) -> Iterator[Problem]:
    if c.project is None:
        return
    for name, svc in c.services.items():
        raw = svc.get("labels")
        keys = set(raw) if isinstance(raw, dict) else {str(x).split("=", 1)[0] for x in raw or []}
        missing = [f"com.{c.project}.{k}" for k in LABEL_KEYS if f"com.{c.project}.{k}" not in keys]
        if missing:
            loc = _svc(name, "labels") if raw is not None else _svc(name)
            yield c.at(loc, "labels", f"{name}: missing label(s) {', '.join(missing)}", key=raw is None)


CHECKS: tuple[Callable[[Compose], Iterator[Problem]], ...] = (
    version_key, pinned_images, image_minimums, literal_secrets, healthchecks, restart_policies, log_rotation,
    public_ports, gateway_tls, names, labels,
)


def audit_compose(c: Compose) -> list[Problem]:
    """Every compose-level violation, sorted by place."""
    return sorted({p for check in CHECKS for p in check(c)})
