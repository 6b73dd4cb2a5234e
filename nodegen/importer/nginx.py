"""Map a hand-written nginx gateway (parsed by crossplane) onto routes, websockets and proxy settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nodegen.importer.compose import ComposeMap
from nodegen.importer.draft import FLEET, NODE, Draft
from nodegen.importer.report import Kind, Where
from nodegen.importer.sources import ImportFailed, read_text
from nodegen.problems import Problem
from nodegen.record import record
from nodegen.standard import SECRET_VALUE

# What the generated gateway writes in every location itself: nothing of these is lost.
GENERATED = frozenset({"proxy_http_version", "proxy_set_header", "limit_req", "limit_req_status", "resolver",
                       "proxy_connect_timeout", "proxy_send_timeout", "proxy_buffering", "access_log"})
API = re.compile(r"^/api/([a-z0-9][a-z0-9-]*)/?$")
WS = re.compile(r"^/ws/([a-z0-9][a-z0-9-]*)/?$")


@record
class Directive:
    """One nginx directive, where it stands, and its block."""

    name: str
    args: tuple[str, ...]
    where: Where
    block: tuple[Directive, ...] | None


def parse(path: Path, display: str) -> tuple[list[Directive], list[Problem]]:
    """The file's directives (includes not followed), or located parse errors."""
    try:
        import crossplane
    except ImportError:
        raise ImportFailed("nodegen import: --nginx needs the crossplane package "
                           "(pip install 'nodegen[import]')") from None
    lines = read_text(path).splitlines()
    payload = crossplane.parse(str(path), catch_errors=True, single=True, check_ctx=False, check_args=False,
                               comments=False)
    problems = [Problem(display, int(e.get("line") or 1), 1, "nginx-syntax", str(e.get("error")))
                for e in payload.get("errors", [])]
    parsed = payload["config"][0].get("parsed", []) if payload.get("config") else []
    return [_directive(d, display, lines) for d in parsed], problems


def _directive(raw: dict[str, Any], display: str, lines: list[str]) -> Directive:
    line = int(raw.get("line", 1))
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    col = text.find(raw["directive"]) + 1 or 1
    block = raw.get("block")
    children = tuple(_directive(b, display, lines) for b in block) if block is not None else None
    return Directive(raw["directive"], tuple(raw.get("args", [])), Where(display, line, col), children)


class NginxImport:
    """The directives of one file, walked: each reported, routes put on the services behind them."""

    def __init__(self, draft: Draft, compose: ComposeMap, upstreams: dict[str, tuple[str, int]]) -> None:
        self.draft, self.compose, self.upstreams = draft, compose, upstreams

    def gap(self, d: Directive, kind: Kind, message: str) -> None:
        self.draft.gap(d.where, kind, label(d), message)

    def secret(self, d: Directive) -> bool:
        """Report a directive holding a secret (an Authorization header, a credential-looking value)."""
        header = d.name in ("proxy_set_header", "add_header") and d.args[:1] in (("Authorization",), ("Cookie",))
        what = "credentials in a header" if header else next(
            (w for pattern, w in SECRET_VALUE for arg in d.args if pattern.search(arg)), None)
        if what is not None:
            self.gap(d, "secret", f"holds {what}: not copied, and not imported")
            self.gap(d, "dropped", "holds a secret")
        return what is not None

    def walk(self, directives: tuple[Directive, ...] | list[Directive]) -> None:
        for d in directives:
            if self.secret(d):
                continue
            handler = getattr(self, f"_{d.name}", None)
            if handler is not None:
                handler(d)
            elif d.name in GENERATED:
                self.gap(d, "mapped", "the generated gateway sets it")
            else:
                self.gap(d, "dropped", "no manifest key carries it")

    def _upstream(self, d: Directive) -> None:
        target = self.upstreams.get(d.args[0]) if d.args else None
        service = self.compose.hosts.get(target[0]) if target else None
        if service is None:
            self._whole(d, "dropped", "no service of the compose file behind it")
        else:
            self._whole(d, "mapped", f"service {service} (upstreams are resolved per request)")

    def _server(self, d: Directive) -> None:
        self.gap(d, "mapped", "the node's gateway")
        self.walk(d.block or ())

    def _listen(self, d: Directive) -> None:
        self.gap(d, "mapped", "the gateway listens on 80 (redirect) and 443 (TLS)")

    def _server_name(self, d: Directive) -> None:
        name = d.args[0] if d.args else ""
        if "." in name and not name.startswith("."):
            self.draft.put(NODE, ("domain",), name, d.where)
            self.gap(d, "mapped", f"the node's domain {name}")
        else:
            self.gap(d, "needs-review", f"{name!r} is not a domain: the node's domain is a placeholder")

    def _client_max_body_size(self, d: Directive) -> None:
        self.gap(d, "needs-review", "proxy.max_body is set per route (default 20m)")

    def _proxy_read_timeout(self, d: Directive) -> None:
        self.gap(d, "needs-review", "proxy.timeout is set per route (default 60s)")

    def _location(self, d: Directive) -> None:
        path = d.args[-1] if d.args else ""
        exact = d.args[:1] == ("=",)
        target = self._proxied(d)
        if path in ("/health", "/health/") or (exact and path == "/health"):
            self._whole(d, "mapped", "the gateway's own /health")
        elif target is None:
            self._whole(d, "dropped", "no service of the compose file behind it")
        elif api := API.match(path):
            self._api(d, api[1], *target)
        elif ws := WS.match(path):
            self._ws(d, ws[1], *target)
        elif path == "/":
            self._put(target[0], ("spa",), True, d)
            self._put(target[0], ("visibility",), "public", d)
            self.gap(d, "needs-review", f"{target[0]} serves the web UI at / (spa: true: deep links fall back to "
                     "/index.html)")
            self._inner(d, target[0])
        elif path.rstrip("/") == "/_matrix":
            self._whole(d, "mapped", f"{target[0]}: nodegen routes /_matrix/ to Synapse itself")
        else:
            self._whole(d, "dropped", f"{path}: outside the standard's /api/<route>/ and /ws/<route>/ scheme")

    def _whole(self, d: Directive, kind: Kind, message: str) -> None:
        """A location and everything in it, with one verdict."""
        self.gap(d, kind, message)
        for c in d.block or ():
            self.gap(c, kind, f"part of {' '.join(d.args)}: {message}")

    def _proxied(self, d: Directive) -> tuple[str, str] | None:
        """(service, URI part of proxy_pass) of a location."""
        proxy = next((c for c in d.block or () if c.name == "proxy_pass" and c.args), None)
        if proxy is None:
            return None
        url = urlsplit(proxy.args[0])
        host, port = url.hostname or "", url.port
        if host in self.upstreams:
            host, port = self.upstreams[host]
        service = self.compose.hosts.get(host)
        if service is None and host in ("127.0.0.1", "localhost"):
            service = next((s for s, p in self.compose.ports.items() if p == port), None)
        return (service, url.path) if service else None

    def _api(self, d: Directive, route: str, service: str, uri: str) -> None:
        if uri not in ("", "/") and uri.rstrip("/") != f"/api/{route}":
            self._whole(d, "dropped", f"route {route} of {service} not imported: rewriting to {uri} cannot be "
                        f"expressed (nodegen calls the service at /x or /api/{route}/x)")
            return
        self._put(service, ("route",), route, d)
        if uri in ("", "/"):
            self.gap(d, "mapped", f"route {route} of {service} (/api/{route}/x -> /x)")
        else:
            self._put(service, ("proxy", "strip_prefix"), False, d)
            self.gap(d, "mapped", f"route {route} of {service}, path kept (proxy.strip_prefix: false)")
        self._inner(d, service)

    def _ws(self, d: Directive, channel: str, service: str, uri: str) -> None:
        self._put(service, ("protocol",), "http+ws", d)
        channels = self.draft.get(FLEET, ("services", service, "websocket")) or []
        self._put(service, ("websocket",), [*channels, channel], d)
        self.gap(d, "needs-review", f"websocket channel {channel} of {service}: nodegen proxies "
                 f"/ws/<route>/{channel}/... to /ws/{channel}/... (was {uri or '/'})")
        self._inner(d, service)

    def _inner(self, d: Directive, service: str) -> None:
        for c in d.block or ():
            if self.secret(c):
                continue
            if c.name == "proxy_pass" or c.name in GENERATED:
                self.gap(c, "mapped", "the generated gateway sets it")
            elif c.name == "proxy_read_timeout" and c.args:
                value = c.args[0] if c.args[0][-1:].isalpha() else f"{c.args[0]}s"
                if value in ("86400s",):  # websockets: the generated gateway keeps them open itself
                    self.gap(c, "mapped", "websockets stay open (the generated gateway's timeout)")
                    continue
                self._put(service, ("proxy", "timeout"), value, c)
                self.gap(c, "mapped", f"proxy.timeout {value}")
            elif c.name == "add_header" and c.args[:1] == ("Access-Control-Allow-Origin",):
                self._put(service, ("proxy", "cors"), [c.args[1]] if len(c.args) > 1 else ["*"], c)
                self.gap(c, "mapped", "proxy.cors")
            else:
                self.gap(c, "dropped", "no manifest key carries it")

    def _put(self, service: str, loc: tuple[str, ...], value: Any, d: Directive) -> None:
        self.draft.put(FLEET, ("services", service, *loc), value, d.where)


def label(d: Directive) -> str:
    """The directive as the report names it; a value that may be a secret is left out."""
    if d.name in ("proxy_set_header", "add_header") and d.args[:1] in (("Authorization",), ("Cookie",)):
        return f"{d.name} {d.args[0]}"
    if any(pattern.search(arg) for pattern, _ in SECRET_VALUE for arg in d.args):
        return d.name
    return f"{d.name} {' '.join(d.args)}".strip()


def upstreams(directives: list[Directive]) -> dict[str, tuple[str, int]]:
    """upstream name -> (host, port) of its first server."""
    found: dict[str, tuple[str, int]] = {}
    for d in directives:
        server = next((c for c in d.block or () if c.name == "server" and c.args), None)
        if d.name == "upstream" and d.args and server is not None:
            host, _, port = server.args[0].partition(":")
            found[d.args[0]] = (host, int(port) if port.isdigit() else 80)
    return found


def port_hints(files: list[list[Directive]]) -> dict[str, int]:
    """host -> port of every upstream server: the port of a service whose compose entry publishes none."""
    return {host: port for directives in files for host, port in upstreams(directives).values()}


def map_nginx(draft: Draft, compose: ComposeMap, files: list[list[Directive]]) -> None:
    known = {name: target for directives in files for name, target in upstreams(directives).items()}
    walker = NginxImport(draft, compose, known)
    for directives in files:
        walker.walk(directives)
