"""Map a compose file's services onto catalog entries and a node's placements, key by key."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nodegen.importer.draft import FLEET, NODE, Draft, where
from nodegen.importer.report import Kind
from nodegen.importer.sources import ComposeSource
from nodegen.load.model import Standard
from nodegen.load.yamlio import Loc
from nodegen.standard import SECRET_NAME, parse_range, secret_kind
from nodegen.targets.matrix import DB_PASSWORD, FORM_SECRET, MACAROON, SYNAPSE
from nodegen.view.resolve import env_url_name

# Registered ports of images that publish none in a hand-written file (the catalog needs each service's port).
IMAGE_PORTS = {"postgres": 5432, "redis": 6379, "nats": 4222, "synapse": 8008, "nginx": 443, "qdrant": 6333,
               "prometheus": 9090, "grafana": 3000}
DATA_IMAGES = ("postgres", "redis", "qdrant", "mysql", "mariadb", "mongo")
# Literal values that name the data itself: kept, so the new stack opens the same database (switch-over).
KEPT_LITERALS = frozenset({"POSTGRES_DB", "POSTGRES_USER"})
GATEWAY_IMAGES = ("nginx",)
TCP_IMAGES = ("postgres", "redis", "nats", "mysql", "mariadb", "mongo")  # not HTTP: no <NAME>_URL, no route
# Options whose value is a secret on a command line: redis-server --requirepass, redis-cli -a, mysql -p...
SECRET_OPTION = re.compile(r"(?i)(requirepass|masterauth|password|passwd|pass|token|secret|a|p)")
# `${NAME}`, `${NAME:-default}`, `${NAME?err}`: the value is read from the environment (.env).
INTERPOLATED_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*)|:?\?[^}]*)?\}")


@dataclass
class ComposeMap:
    """What the other sources need to know of the compose file once it is mapped."""

    project: str
    ports: dict[str, int] = field(default_factory=dict)  # service -> main port
    hosts: dict[str, str] = field(default_factory=dict)  # container name or service name -> service
    gateway: str | None = None


def repository(image: str) -> str:
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def fleet_project(src: ComposeSource) -> str:
    """The project nodegen names things with: the container names' common prefix, else Compose's project."""
    prefixes = Counter(str(s["container_name"]).split("-", 1)[0] for s in src.services().values()
                       if "-" in str(s.get("container_name", "")))
    guess = prefixes.most_common(1)[0][0] if prefixes else src.project
    return re.sub(r"[^a-z0-9]", "", guess.lower()) or "imported"


class ServiceImport:
    """One compose service: its keys, as written, each mapped onto the draft or reported."""

    def __init__(self, draft: Draft, src: ComposeSource, name: str, hints: dict[str, int]) -> None:
        self.draft, self.src, self.name, self.hints = draft, src, name, hints
        self.project = fleet_project(src)
        self.raw = src.services()[name]
        self.cfg = src.normalised(name)

    def loc(self, *rest: str | int) -> Loc:
        return ("services", self.name, *rest)

    def at(self, *rest: str | int, key: bool = False) -> Any:
        return where(self.src.doc, self.loc(*rest), key=key)

    def put(self, field_: str | tuple[str | int, ...], value: Any, *rest: str | int) -> None:
        parts = (field_,) if isinstance(field_, str) else field_
        self.draft.put(FLEET, ("services", self.name, *parts), value, self.at(*rest) if rest else self.at())

    def gap(self, key: str, kind: Any, message: str, *rest: str | int) -> None:
        self.draft.gap(self.at(*rest, key=not rest or rest == (key,)), kind, f"{self.name}.{key}", message)

    def run(self) -> int:
        port = self.port()
        self.put("port", port, *self.port_origin())
        if not port:
            self.draft.gap(self.at(key=True), "needs-review", f"{self.name}.port", "no port in its ports, the "
                           "nginx upstreams, PORT or its healthcheck: imported as 0, set the port it listens on")
        self.put(("class",), port_class(port), *self.port_origin())
        for key in self.raw:
            handler = HANDLERS.get(str(key))
            if handler is None:
                self.gap(str(key), "dropped", "no manifest key carries it", str(key))
            else:
                handler(self)
        if self.name == SYNAPSE:
            _synapse(self)
        return port

    # --- the port ---------------------------------------------------------------------------------------

    def port(self) -> int:
        found = self._port_candidates()
        return found[0][0] if found else 0

    def port_origin(self) -> tuple[str | int, ...]:
        found = self._port_candidates()
        return found[0][1] if found else ()

    def _port_candidates(self) -> list[tuple[int, tuple[str | int, ...]]]:
        found: list[tuple[int, tuple[str | int, ...]]] = []
        for i, entry in enumerate(self.cfg.get("ports") or []):
            if isinstance(entry, dict) and isinstance(entry.get("target"), int):
                found.append((int(entry["target"]), ("ports", i)))
        if self.name in self.hints:
            found.append((self.hints[self.name], ()))
        env = self.environment()
        if env.get("PORT", "").isdigit():
            found.append((int(env["PORT"]), ("environment",)))
        image = self.cfg.get("image")
        if isinstance(image, str) and repository(image) in IMAGE_PORTS:
            found.insert(0 if repository(image) in GATEWAY_IMAGES else len(found),
                         (IMAGE_PORTS[repository(image)], ("image",)))
        probe = _probe_port(self.cfg.get("healthcheck"))
        if probe:
            found.append((probe, ("healthcheck",)))
        return found

    def environment(self) -> dict[str, str]:
        env = self.cfg.get("environment")
        if isinstance(env, dict):
            return {str(k): "" if v is None else str(v) for k, v in env.items()}
        items = [str(x).partition("=") for x in env or []]
        return {k: v for k, _, v in items}


def port_class(port: int) -> str:
    """The standard's class of a port: core for its well-known ports, else the range it lies in."""
    standard = Standard()
    if port in standard.core_ports:
        return "core"
    for name, text in standard.port_classes.items():
        bounds = parse_range(text)
        if bounds and bounds[0] <= port <= bounds[1]:
            return str(name)
    return "utility"  # outside every range: the port-class rule reports it


def _probe_port(check: Any) -> int | None:
    test = check.get("test") if isinstance(check, dict) else None
    for word in test if isinstance(test, list) else []:
        if "://" in str(word):
            try:
                return urlsplit(str(word)).port
            except ValueError:
                return None
    return None


# --- one handler per compose service key -------------------------------------------------------------------

def _image(s: ServiceImport) -> None:
    image = str(s.cfg.get("image", ""))
    s.put("image", image, "image")
    s.gap("image", "mapped", f"image {image}", "image")
    repo = repository(image)
    if repo in GATEWAY_IMAGES:
        s.put("gateway", True, "image")
        s.put("tier", "gateway", "image")
        s.gap("image", "needs-review", "an nginx image: imported as the node's gateway (nodegen renders its "
              "nginx.conf from the routes)", "image")
    elif repo in DATA_IMAGES:
        s.put("tier", "data", "image")
        s.put(("metrics", "enabled"), False, "image")
    if repo in TCP_IMAGES:
        s.put("protocol", "tcp", "image")


def _build(s: ServiceImport) -> None:
    build = s.cfg.get("build") or {}
    context = str(build.get("context", ".")).removeprefix("./").rstrip("/") or "."
    s.put("build", context, "build")
    s.gap("build", "mapped", f"build context {context}", "build")
    dockerfile = build.get("dockerfile", "Dockerfile")
    if dockerfile != "Dockerfile":
        s.gap("build", "dropped", f"dockerfile {dockerfile}: nodegen builds {context}/Dockerfile", "build")


def _container_name(s: ServiceImport) -> None:
    old, new = s.cfg.get("container_name"), f"{s.project}-{s.name}"
    message = f"the container keeps its name {new}" if old == new else \
        f"renamed: the container becomes {new} (was {old}); scripts/switch-over.sh stops the old one"
    s.gap("container_name", "mapped", message, "container_name")


def _ports(s: ServiceImport) -> None:
    port = s.port()
    for i, entry in enumerate(s.cfg.get("ports") or []):
        target, host_ip = entry.get("target"), entry.get("host_ip")
        published = entry.get("published")
        gateway = _is_gateway(s)
        if target == port or (gateway and target in (80, 443)):
            kind, what = "mapped", f"port {target}"
        else:
            kind, what = "dropped", f"port {target}: a catalog service has one main port (and a metrics port)"
        if published and gateway:
            what += "; published by the gateway (80, 443)"
        elif published and host_ip in ("127.0.0.1", "::1"):
            s.draft.put(NODE, ("publish", s.name), f"{host_ip}:{published}", s.at("ports", i))
            what += f"; published on {host_ip}:{published}"
        elif published:
            what += f"; host port {published} no longer published (only the gateway publishes)"
        s.gap("ports", kind, what, "ports", i)


def _environment(s: ServiceImport) -> None:
    raw = s.raw.get("environment")
    keys: list[tuple[str, str | int]] = (
        [(str(k), str(k)) for k in raw] if isinstance(raw, dict)
        else [(str(x).partition("=")[0], i) for i, x in enumerate(raw or [])])
    values = s.environment()
    for var, key in keys:
        _variable(s, var, values.get(var, ""), key)


def _variable(s: ServiceImport, var: str, value: str, key: str | int) -> None:
    loc: tuple[str | int, ...] = ("environment", key)
    label = f"environment.{var}"
    ref = INTERPOLATED_REF.fullmatch(value)
    secret_value = secret_kind(value)
    secret = bool(SECRET_NAME.search(var)) or secret_value is not None
    entry: Any = {"secret": True, "description": f"{var} of {s.name} (imported)"} if secret else \
        {"description": f"{var} of {s.name} (imported)"}
    if not secret and not ref and _derived(s, var, value, loc):
        return
    if var in KEPT_LITERALS and value and not ref and not secret:
        s.put(("env", var), value, *loc)
        s.gap(label, "mapped", f"kept as the value {value!r}: it names the data the new stack opens", *loc)
        return
    s.put(("env", var), entry, *loc)
    if not secret and not ref and value:
        s.draft.settings.setdefault(var, {})[s.name] = (value, s.at(*loc))
    if secret_value is not None:
        s.gap(label, "secret", f"holds {secret_value}: the value is not copied; set {var} in .env", *loc)
    elif secret and value and not ref:
        s.gap(label, "secret", f"a literal secret: the value is not copied; set {var} in .env", *loc)
    if ref and ref["name"] != var:
        s.gap(label, "needs-review", f"read from .env as {ref['name']}: the .env variable is now {var}", *loc)
    elif ref and ref["default"] and secret_value is None:
        s.gap(label, "needs-review", f"default {ref['default']!r} not kept: put it in .env", *loc)
    elif secret_value is None and not (secret and value and not ref):
        s.gap(label, "mapped", f"{var} (name only: its value comes from .env)", *loc)


def _derived(s: ServiceImport, var: str, value: str, loc: tuple[str | int, ...]) -> bool:
    """A variable nodegen writes itself (PORT, LOG_LEVEL, <NEED>_URL): reported, not imported."""
    label = f"environment.{var}"
    if var == "PORT" and s.cfg.get("build"):
        same = value == str(s.port())
        s.gap(label, "mapped" if same else "needs-review",
              f"nodegen sets PORT to the service's port {s.port()}" + ("" if same else f" (was {value})"), *loc)
        return True
    if var == "LOG_LEVEL" and port_class(s.port()) != "core":
        same = value.upper() == "INFO"
        s.gap(label, "mapped" if same else "needs-review",
              "nodegen sets LOG_LEVEL by the node's role (INFO; DEBUG on dev nodes)" + ("" if same else
                                                                                          f" (was {value})"), *loc)
        return True
    target = next((n for n in s.src.services() if env_url_name(n) == var and n != s.name), None)
    if target is None or _tcp(s.src.normalised(target)):
        return False
    port = ServiceImport(s.draft, s.src, target, s.hints).port()
    if value.rstrip("/") != f"http://{target}:{port}":
        return False
    needs = s.draft.get(FLEET, ("services", s.name, "needs")) or []
    added = target not in needs and target not in (s.cfg.get("depends_on") or {})
    s.put("needs", sorted({*needs, target}), *loc)
    s.gap(label, "mapped", f"nodegen writes {var} from needs: {target}" +
          (f" ({target} added to needs: it starts first)" if added else ""), *loc)
    return True


def _is_gateway(s: ServiceImport) -> bool:
    image = s.cfg.get("image")
    return isinstance(image, str) and repository(image) in GATEWAY_IMAGES


def _tcp(cfg: dict[str, Any]) -> bool:
    image = cfg.get("image")
    return isinstance(image, str) and repository(image) in TCP_IMAGES


def _volumes(s: ServiceImport) -> None:
    top = s.src.config.get("volumes") or {}
    has_data = False
    for i, vol in enumerate(s.cfg.get("volumes") or []):
        kind, source, target = vol.get("type"), str(vol.get("source", "")), str(vol.get("target", ""))
        if kind == "volume" and source and not has_data:
            has_data = True
            real = str((top.get(source) or {}).get("name", source))
            s.put("data", target, "volumes", i)
            s.draft.put(NODE, ("adopt_volumes", s.name), real, s.at("volumes", i))
            s.gap("volumes", "mapped", f"data {target}: kept in the existing volume {real} (external, adopt_volumes;"
                  " scripts/switch-over.sh)", "volumes", i)
        elif kind == "bind" and _is_gateway(s) and target.startswith("/etc/nginx"):
            s.gap("volumes", "mapped", f"{source}: the generated gateway configuration takes its place (import the "
                  "file with --nginx)", "volumes", i)
        elif kind == "bind" and vol.get("read_only"):
            rel = source.removeprefix("./")
            s.put(("mounts", rel), target, "volumes", i)
            s.gap("volumes", "mapped", f"{rel} mounted read-only at {target}", "volumes", i)
        else:
            why = _why_dropped(kind, target)
            s.gap("volumes", "dropped", f"{source or '(anonymous)'}:{target}: {why}", "volumes", i)


def _why_dropped(kind: Any, target: str) -> str:
    if kind == "volume":
        return "a second volume: a service keeps its data in one (<service>_data)"
    if "log" in target:
        return "a writable bind mount for logs: they go to the log driver (docker logs) instead"
    return ("a writable bind mount: its files are not carried over (nodegen keeps writable data in the "
            "<service>_data volume; copy them in before the switch-over)")


def _depends_on(s: ServiceImport) -> None:
    depends = s.cfg.get("depends_on") or {}
    needs = s.draft.get(FLEET, ("services", s.name, "needs")) or []
    s.put("needs", sorted({*needs, *depends}), "depends_on")
    s.gap("depends_on", "mapped", f"needs {', '.join(sorted(depends))} (started first, once healthy)", "depends_on")


def secret_in(words: list[str]) -> str | None:
    """What secret a command line holds: a credential-looking word, or the value after a password option."""
    for i, word in enumerate(words):
        what = secret_kind(word)
        if what is not None:
            return what
        option = word.lstrip("-").split("=", 1)
        if word.startswith("-") and SECRET_OPTION.fullmatch(option[0]) and (len(option) > 1 or i + 1 < len(words)):
            value = option[1] if len(option) > 1 else words[i + 1]
            numeric = len(option[0]) == 1 and value.isdigit()  # pg_isready -p 5432: a port
            if not numeric and not INTERPOLATED_REF.fullmatch(value) and not value.startswith("$"):
                return f"the value of {word.split('=', 1)[0]}"
    return None


def _secret_words(s: ServiceImport, key: str, words: list[str]) -> bool:
    """Report a command line holding a secret (neither it nor the secret is copied); True when it does."""
    what = secret_in(words)
    if what is not None:
        s.gap(key, "secret", f"holds {what}: the {key} is not copied (take the secret from .env: ${{NAME}})", key)
        s.gap(key, "dropped", f"the {key} is not imported: it holds a secret", key)
    return what is not None


def _healthcheck(s: ServiceImport) -> None:
    check = s.cfg.get("healthcheck") or {}
    test = [str(x) for x in check.get("test") or []]
    if _secret_words(s, "healthcheck", test):
        return
    if _is_gateway(s):
        s.gap("healthcheck", "mapped", "the generated gateway's own probe (GET /health on its HTTP port)",
              "healthcheck")
        return
    path = next((urlsplit(w).path for w in test if "://" in w), None)
    if s.cfg.get("build") and path:
        s.put(("health", "path"), path, "healthcheck", "test")
        s.gap("healthcheck", "mapped", f"health path {path} (nodegen writes the probe)", "healthcheck")
    elif test[:1] == ["CMD"]:
        s.put(("health", "command"), test[1:], "healthcheck", "test")
        s.gap("healthcheck", "mapped", f"probe {' '.join(test[1:])}", "healthcheck")
    elif test[:1] == ["CMD-SHELL"]:
        s.put(("health", "command"), ["sh", "-c", " ".join(test[1:])], "healthcheck", "test")
        s.gap("healthcheck", "mapped", f"probe sh -c {' '.join(test[1:])!r}", "healthcheck")
    else:
        s.gap("healthcheck", "dropped", f"test {test!r} is not a probe nodegen can write", "healthcheck")
    timings = [k for k in ("interval", "timeout", "retries", "start_period") if k in check]
    if timings:
        s.gap("healthcheck", "needs-review", f"{', '.join(timings)}: the standard's timings apply "
              "(standard.healthcheck)", "healthcheck")


def _synapse(s: ServiceImport) -> None:
    """nodegen writes homeserver.yaml itself: on PostgreSQL, with its keys from .env."""
    secrets = ((DB_PASSWORD, "password of the synapse database role"),
               (MACAROON, "key Synapse signs access tokens with"), (FORM_SECRET, "key Synapse signs forms with"))
    for var, what in secrets:
        if s.draft.get(FLEET, ("services", s.name, "env", var)) is None:
            s.put(("env", var), {"secret": True, "description": what})
    needs = s.draft.get(FLEET, ("services", s.name, "needs")) or []
    if "postgres" in s.src.services() and "postgres" not in needs:
        s.put("needs", sorted([*needs, "postgres"]))
    s.draft.gap(s.at(key=True), "needs-review", s.name,
                "nodegen writes homeserver.yaml: Synapse runs on PostgreSQL (database synapse) with "
                f"{DB_PASSWORD}, {MACAROON} and {FORM_SECRET} from .env; a homeserver that kept SQLite in its "
                "data volume must be ported (synapse_port_db) before the switch-over")


def _command(s: ServiceImport) -> None:
    command = s.cfg.get("command")
    words = shlex.split(command) if isinstance(command, str) else [str(x) for x in command or []]
    if _secret_words(s, "command", words):
        return
    s.put("command", words, "command")
    s.gap("command", "mapped", "command", "command")


def _keyed(key: str, kind: Any, message: str) -> Callable[[ServiceImport], None]:
    def handler(s: ServiceImport) -> None:
        s.gap(key, kind, message, key)
    return handler


HANDLERS: dict[str, Callable[[ServiceImport], None]] = {
    "image": _image, "build": _build, "container_name": _container_name, "ports": _ports,
    "environment": _environment, "volumes": _volumes, "depends_on": _depends_on, "healthcheck": _healthcheck,
    "command": _command,
    "restart": _keyed("restart", "mapped", "restart: unless-stopped (the standard's)"),
    "networks": _keyed("networks", "mapped", "joins the node's <project>_net network (and <project>_data for data)"),
    "labels": _keyed("labels", "dropped", "nodegen writes the com.<project>.service/.tier/.phase labels"),
    "logging": _keyed("logging", "mapped", "the standard's log rotation applies (standard.log_rotation)"),
    "env_file": _keyed("env_file", "dropped", "not read: its variables' names are unknown to the import"),
    "deploy": _keyed("deploy", "dropped", "resources and devices (GPUs): nodegen sets limits per class"),
    "profiles": _keyed("profiles", "needs-review", "imported as a service the node runs: nodegen has no profiles "
                       "(leave it out of the node's services if it should not run)"),
}


def map_compose(draft: Draft, src: ComposeSource, hints: dict[str, int]) -> ComposeMap:
    """Every service of the file onto the draft; top-level keys reported."""
    result = ComposeMap(fleet_project(src))
    for name in src.services():
        port = ServiceImport(draft, src, name, hints).run()
        result.ports[name] = port
        result.hosts[name] = name
        container = src.normalised(name).get("container_name")
        if container:
            result.hosts[str(container)] = name
        if draft.get(FLEET, ("services", name, "gateway")):
            result.gateway = name
        draft.node.setdefault("services", []).append(name)
        draft.origins[(NODE, ("services", len(draft.node["services"]) - 1))] = where(src.doc, ("services", name),
                                                                                       key=True)
    _top_level(draft, src)
    _conflicts(draft)
    return result


def _conflicts(draft: Draft) -> None:
    """A setting with different values in different services: .env holds one value per node."""
    for var, uses in sorted(draft.settings.items()):
        if len({value for value, _ in uses.values()}) < 2:
            continue
        names = ", ".join(sorted(uses))
        for service, (_, spot) in sorted(uses.items()):
            draft.gap(spot, "needs-review", f"{service}.environment.{var}",
                      f"{var} has different values in {names}: .env holds one value per node (rename one)")


def _top_level(draft: Draft, src: ComposeSource) -> None:
    doc = src.doc
    messages: dict[str, tuple[Kind, str]] = {"version": ("dropped", "obsolete in Compose v2"),
                "name": ("mapped", "the Compose project: existing volume names are kept (adopt_volumes)"),
                "services": ("mapped", "each service below")}
    for key in doc.data:
        kind, message = messages.get(str(key), ("dropped", "no manifest key carries it"))
        if key in ("volumes", "networks"):  # each entry reported on its own
            for name in doc.data[key] or {}:
                used = key == "volumes" and name in _data_volumes(src)
                kind = "mapped" if used or key == "networks" else "dropped"
                note = ("kept as an external volume (adopt_volumes)" if used else "no data service keeps data in it")\
                    if key == "volumes" else "the node's networks are <project>_net and <project>_data"
                draft.gap(where(doc, (key, name), key=True), kind, f"{key}.{name}", note)
            continue
        draft.gap(where(doc, (key,), key=True), kind, str(key), message)


def _data_volumes(src: ComposeSource) -> set[str]:
    used: set[str] = set()
    for name in src.services():
        vols = [v for v in src.normalised(name).get("volumes") or [] if v.get("type") == "volume"]
        if vols:
            used.add(str(vols[0].get("source")))
    return used
