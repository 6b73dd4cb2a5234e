"""The standard's vocabulary: name and value shapes, port classes, binds, secret shapes; no rules, no I/O."""

from __future__ import annotations

import ipaddress
import re

from nodegen.load.defaults import OTHER_TABLE
from nodegen.load.model import Role, Service, ServiceClass, ServiceOverride, Standard, Uptime, Use
from nodegen.load.yamlio import Loc

SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{1,38}", re.ASCII)
PROJECT_NAME = re.compile(r"[a-z][a-z0-9]{1,30}", re.ASCII)
NODE_ID = re.compile(r"[a-z][a-z0-9-]{1,30}", re.ASCII)
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}", re.ASCII)
ROUTE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?", re.ASCII)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*", re.ASCII)
ORIGIN = re.compile(rf"https?://{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?", re.ASCII)  # a CORS origin
SECRET_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]{0,63})\}", re.ASCII)  # `${NAME}`: a secret in a command
ABS_PATH = re.compile(r"/[A-Za-z0-9._/-]{0,200}", re.ASCII)
REL_PATH = re.compile(r"(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_][A-Za-z0-9._/-]{0,200}", re.ASCII)
HTTP_PATH = re.compile(r"/[A-Za-z0-9._/-]{0,100}", re.ASCII)
IMAGE = re.compile(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@sha256:[a-f0-9]{64})?",
    re.ASCII,
)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1 (Compose refuses C1 too)
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL)", re.ASCII)
SECRET_VALUE = [
    # user:password@ or a password alone (redis://:pw@host)
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I), "a URL with credentials"),
    (re.compile(r"(?<![A-Za-z0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])"), "a Telegram bot token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b(ghp|gho|ghs|github_pat|glpat|xox[abpr]|sk|sk_live|rk_live)[-_][A-Za-z0-9_-]{16,}"),
     "an API token"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."), "a JSON Web Token"),
]


def secret_kind(value: str) -> str | None:
    """What value looks like, by the first of SECRET_VALUE it matches ("a URL with credentials"), or None."""
    for pattern, what in SECRET_VALUE:
        if pattern.search(value):
            return what
    return None


# The receivers' webhook URLs, handed to Alertmanager as files (targets/alertmanager.py routes to them).
ALERTMANAGER_RECEIVER_ENV = ("ALERTMANAGER_PAGE_WEBHOOK_URL", "ALERTMANAGER_NOTIFY_WEBHOOK_URL")
ALERTMANAGER = "alertmanager"  # the catalog service `alertmanager: true` places beside Prometheus
# With telegram_chat_id: the bot token, read by Alertmanager's native receiver from a file (bot_token_file).
TELEGRAM_TOKEN_ENV = "ALERTMANAGER_TELEGRAM_BOT_TOKEN"
# alert_webhooks: a receiver's name, its URL (no userinfo, query or fragment: the token is the secret).
WEBHOOK_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}", re.ASCII)
WEBHOOK_URL = re.compile(rf"https://{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?(/[A-Za-z0-9._~/-]*)?", re.ASCII)


def webhook_token_env(name: str) -> str:
    """The alertmanager service's secret file holding the bearer token of webhook `name`."""
    return f"ALERTMANAGER_WEBHOOK_{name.upper()}_TOKEN"
# The gateway's stub_status listener (nginx-exporter's --nginx.scrape-uri in the catalog names it).
GATEWAY_STATUS_PORT = 8081
PROMETHEUS = "prometheus"


def short_name(service: str) -> str:
    """The service's name in labels and metrics: agents-service -> agents."""
    return service[: -len("-service")] if service.endswith("-service") else service


def parse_range(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"([0-9]{1,5})-([0-9]{1,5})", text)
    if not match:
        return None
    low, high = int(match[1]), int(match[2])
    return (low, high) if 1 <= low <= high <= 65535 else None


def service_ports(svc: Service) -> list[tuple[Loc, int]]:
    """Every container port a service listens on, with where it is written."""
    ports: list[tuple[Loc, int]] = [(("port",), svc.port)]
    if svc.health.port is not None and svc.health.port != svc.port:
        ports.append((("health", "port"), svc.health.port))
    if svc.metrics.port is not None and svc.metrics.port != svc.port:
        ports.append((("metrics", "port"), svc.metrics.port))
    return ports


def parse_bind(text: str) -> tuple[str, int] | None:
    """'127.0.0.1:3000' or '[::1]:3000' -> (address, port)."""
    match = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[0-9.]+):([0-9]{1,5})", text)
    if not match:
        return None
    try:
        ipaddress.ip_address(match[1].strip("[]"))
    except ValueError:
        return None
    port = int(match[2])
    return (match[1], port) if 1 <= port <= 65535 else None  # 0 would be a random host port


def host_port(address: str, port: int) -> str:
    """address:port, with an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_ipv4(text: str) -> bool:
    """nginx and compose get the gateway's listen and resolver addresses unbracketed: IPv6 would not parse."""
    return is_ip(text) and ":" not in text


def ip_network_of(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An address or ADDRESS/PREFIX network with its host bits zero, else None."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


def use_of(value: str | Use) -> Use:
    """A node's `uses` entry in its long form."""
    return value if isinstance(value, Use) else Use(node=value)


def publish_of(svc: Service, override: ServiceOverride | None) -> list[str]:
    """What a service publishes on a node: the node's override, else the catalog's."""
    return override.publish if override is not None and override.publish is not None else svc.publish


# --- the fleet's vocabulary (standard.classes, roles, uptimes, port_tables) ---------------------------
# Until the vocabulary rule has passed, a name may be missing: the rules that run beside it see the defaults.

def class_of(std: Standard, name: str) -> ServiceClass:
    return std.classes.get(name) or ServiceClass()


def role_of(std: Standard, name: str) -> Role:
    return std.roles.get(name) or Role()


def uptime_of(std: Standard, name: str) -> Uptime:
    return std.uptimes.get(name) or Uptime()


def on_demand_uptimes(std: Standard) -> tuple[str, ...]:
    """The uptimes of nodes that are off by design (sorted: the output does not depend on manifest order)."""
    return tuple(sorted(name for name, spec in std.uptimes.items() if spec.on_demand))


def ranged_classes(std: Standard) -> tuple[str, ...]:
    """The classes whose ports come from a range (`nodegen ports --next` answers for these)."""
    return tuple(name for name, spec in std.classes.items() if spec.range is not None)


def table_keys(std: Standard) -> tuple[str, ...]:
    """The port tables in order; `other` closes the list."""
    return (*(k for k in std.port_tables if k != OTHER_TABLE), OTHER_TABLE)


def table_headings(std: Standard) -> tuple[str, ...]:
    return tuple(std.port_tables.get(k, "Other Services") for k in table_keys(std))


def table_of(std: Standard, klass: str, stack: str | None, phase: str) -> str:
    """The port table a service is listed in: its class's, else the one its stack or phase names, else other."""
    own = class_of(std, klass).table
    for key in (own, stack, phase):
        if key is not None and key in std.port_tables and key != OTHER_TABLE:
            return key
    return OTHER_TABLE


# --- PostgreSQL roles of the services (env `postgres:`) ------------------------------------------
POSTGRES = "postgres"  # the catalog service that is the node's PostgreSQL
PG_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # a role, schema or database name that needs no quoting
# The superuser, the pseudo-role PUBLIC, Synapse's own role; pg_* names belong to PostgreSQL.
RESERVED_ROLES = frozenset({"postgres", "public", "synapse"})


def pg_role_name(service: str) -> str:
    """The service's own PostgreSQL role (and schema): agents-service -> agents_service."""
    return service.replace("-", "_")


def pg_password_env(role: str) -> str:
    """The .env secret holding the role's password."""
    return f"{role.upper()}_DB_PASSWORD"
