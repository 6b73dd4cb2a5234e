"""The generated nginx gateway, run by the real nginx on 127.0.0.1, behaves as the standard says."""

from __future__ import annotations

import json
import math
import re
import time

import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import Gateway, Stubs
from tests.e2e.fleet import DOMAIN, NODE, PUBLIC, Layout
from tests.e2e.harness import LOOPBACK, Reply, keepalive, raw_request, request, tls_context, wait_until

pytestmark = pytest.mark.e2e

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
HSTS = "max-age=31536000; includeSubDomains"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
ROUTES = [("city-service", "city"), ("agents-service", "agents"), ("swapper", "swapper")]
KEEPS_PREFIX = {"city-service"}  # proxy.strip_prefix: false in the fixture fleet
CHANNELS = [("city-service", "city", "rooms"), ("city-service", "city", "presence"),
            ("agents-service", "agents", "events")]
# The fixture fleet keeps the standard's limit: 10r/s, burst 20.
RATE, BURST = 10, 20


def get(layout: Layout, path: str, headers: dict[str, str] | None = None) -> Reply:
    """One request; a 429 caused by earlier tests' traffic is waited out (bounded), never returned."""
    for _ in range(30):
        reply = request(layout.https_port, path, host=DOMAIN, headers=headers)
        if reply.status != 429:
            return reply
        time.sleep(0.2)
    raise AssertionError(f"{path}: still rate limited after 6s")


def assert_security_headers(reply: Reply, *, tls: bool = True) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get(name) == value, f"{name} on a {reply.status}: {reply.headers}"
    assert reply.headers.get("x-request-id"), f"no X-Request-ID on a {reply.status}"
    if tls:
        assert reply.headers.get("strict-transport-security") == HSTS


@pytest.mark.parametrize(("service", "route"), ROUTES)
def test_api_route_reaches_its_service_without_the_prefix(layout: Layout, gateway: Gateway,
                                                         service: str, route: str) -> None:
    reply = get(layout, f"/api/{route}/items/42?sort=name&q=a%20b")
    assert reply.status == 200, reply.body
    seen = reply.json()
    assert seen["service"] == service
    assert seen["port"] == layout.stub(service).port
    prefix = f"/api/{route}" if service in KEEPS_PREFIX else ""
    assert seen["path"] == prefix + "/items/42?sort=name&q=a%20b"
    headers = seen["headers"]
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-for"] == LOOPBACK
    assert headers["x-real-ip"] == LOOPBACK
    assert headers["x-forwarded-host"] == DOMAIN
    assert headers["host"] == DOMAIN
    assert REQUEST_ID.fullmatch(headers["x-request-id"]), headers
    assert reply.headers["x-request-id"] == headers["x-request-id"]
    assert_security_headers(reply)


def test_route_root_and_bare_route(layout: Layout, gateway: Gateway) -> None:
    root = get(layout, "/api/agents/")
    assert root.status == 200 and root.json()["path"] == "/"
    assert get(layout, "/api/city/").json()["path"] == "/api/city/"
    bare = get(layout, "/api/city?x=1")
    assert bare.status == 308
    assert bare.headers["location"].endswith("/api/city/?x=1")
    assert_security_headers(bare)


def test_client_request_id_is_passed_on_and_logged_as_json(layout: Layout, gateway: Gateway) -> None:
    hostile_agent = 'probe "quoted" \\ back\\slash {"json": 1}'
    reply = get(layout, "/api/agents/trace", headers={"X-Request-ID": "trace-e2e-0001", "User-Agent": hostile_agent})
    assert reply.status == 200
    assert reply.json()["headers"]["x-request-id"] == "trace-e2e-0001"
    assert reply.headers["x-request-id"] == "trace-e2e-0001"

    def logged() -> bool:
        return "trace-e2e-0001" in gateway.access_log.read_text(encoding="utf-8")
    wait_until("the access log line", logged, 5)
    entries = [json.loads(line) for line in gateway.access_log.read_text(encoding="utf-8").splitlines()]
    mine = [e for e in entries if e["request_id"] == "trace-e2e-0001"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["node"] == NODE and entry["service"] == "gateway-nginx"
    assert entry["status"] == 200 and entry["level"] == "INFO" and entry["path"] == "/trace"
    assert entry["upstream"] == f"{LOOPBACK}:{layout.stub('agents-service').port}"
    assert entry["user_agent"] == hostile_agent  # escaped into valid JSON, not breaking the line


@pytest.mark.parametrize(("service", "route", "channel"), CHANNELS)
def test_websocket_channel_keeps_its_path_and_round_trips(layout: Layout, gateway: Gateway,
                                                          service: str, route: str, channel: str) -> None:
    kept = f"/{route}" if service in KEEPS_PREFIX else ""
    for suffix, expected in (("", f"/ws{kept}/{channel}"), ("/room1?since=5", f"/ws{kept}/{channel}/room1?since=5")):
        uri = f"wss://{LOOPBACK}:{layout.https_port}/ws/{route}/{channel}{suffix}"
        with connect(uri, ssl=tls_context(), open_timeout=10, close_timeout=5,
                     additional_headers={"X-Request-ID": "ws-e2e"}) as ws:
            hello = json.loads(ws.recv(timeout=10))
            assert hello["service"] == service and hello["kind"] == "websocket"
            assert hello["path"] == expected
            assert hello["headers"]["x-request-id"] == "ws-e2e"
            assert hello["headers"]["x-forwarded-proto"] == "https"
            message = f"ping {channel} ✓"
            ws.send(message)
            assert ws.recv(timeout=10) == message


@pytest.mark.parametrize("path", ["/ws/city/nope", "/ws/city/roomsX", "/ws/agents/rooms", "/ws/swapper/events"])
def test_unknown_websocket_channels_are_not_routed(layout: Layout, gateway: Gateway, path: str) -> None:
    reply = get(layout, path)
    assert reply.status == 404
    assert_security_headers(reply)


@pytest.mark.parametrize("path", ["/api/city/x?a=1", "/", "/ws/city/rooms"])
def test_http_redirects_to_https(layout: Layout, gateway: Gateway, path: str) -> None:
    reply = request(layout.http_port, path, tls=False, host=DOMAIN)
    assert reply.status == 301
    assert reply.headers["location"] == f"https://{DOMAIN}:{layout.https_port}{path}"
    assert_security_headers(reply, tls=False)


def test_http_health_answers_without_redirect(layout: Layout, gateway: Gateway) -> None:
    reply = request(layout.http_port, "/health", tls=False, host=DOMAIN)
    assert reply.status == 200
    assert reply.json()["status"] == "healthy"


@pytest.mark.parametrize("tls", [True, False])
def test_health_has_the_standard_json_shape(layout: Layout, gateway: Gateway, tls: bool) -> None:
    port = layout.https_port if tls else layout.http_port
    reply = request(port, "/health", tls=tls, host=DOMAIN)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) >= {"status", "service", "node", "version", "uptime", "dependencies"}
    assert body["status"] == "healthy"
    assert body["service"] == "gateway-nginx" and body["node"] == NODE
    assert isinstance(body["version"], str) and body["version"]
    assert body["uptime"] is None or isinstance(body["uptime"], (int, float))
    assert isinstance(body["dependencies"], dict)
    assert_security_headers(reply, tls=tls)


@pytest.mark.parametrize("path", ["/healthXYZ", "/health/", "/healthz", "/health.json", "/HEALTH"])
def test_only_exact_health_is_health(layout: Layout, gateway: Gateway, path: str) -> None:
    reply = get(layout, path)
    # Everything outside /api/ and /ws/ is the frontend's (the fixture node serves one at /).
    assert reply.status == 200 and reply.json()["service"] == "frontend"
    assert reply.json()["path"] == "/index.html"
    assert b"healthy" not in reply.body


@pytest.mark.parametrize("route", ["city", "agents", "swapper"])
@pytest.mark.parametrize("path", ["metrics", "metrics/", "METRICS", "Metrics?x=1", "%6detrics", "x/../metrics",
                                  "/metrics", "metrics/sub", "metrics;x", "metrics.", "metrics%20"])
def test_service_metrics_are_not_reachable_through_the_gateway(layout: Layout, gateway: Gateway,
                                                               route: str, path: str) -> None:
    reply = get(layout, f"/api/{route}/{path}")
    assert reply.status == 404, reply.body
    assert b"stub_requests_total" not in reply.body
    assert_security_headers(reply)
    # The route itself works, so the 404 above is the block and not a broken route.
    assert get(layout, f"/api/{route}/health").json()["status"] == "healthy"


def test_unknown_paths_get_a_json_404_with_headers(layout: Layout, gateway: Gateway) -> None:
    for path in ("/ws/nope", "/ws/", "/api/", "/api/worker/x", "/api/nope/x", "/api/frontend/x"):
        reply = get(layout, path)
        assert reply.status == 404, path
        assert reply.json()["error"] == "not found"
        assert_security_headers(reply)


@pytest.mark.parametrize(("status", "data"), [
    (400, b"GET /api/city/x%00 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    (400, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\nConnection: close\r\n\r\n"),
    (405, b"TRACE /api/city/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    (413, b"POST /api/city/x HTTP/1.1\r\nHost: h\r\nContent-Length: 30000000\r\nConnection: close\r\n\r\n"),
    (414, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
], ids=["nul-in-path", "huge-header", "trace", "body-too-large", "uri-too-long"])
def test_errors_nginx_answers_itself_carry_the_security_headers(layout: Layout, gateway: Gateway,
                                                                status: int, data: bytes) -> None:
    reply = raw_request(layout.https_port, data)
    assert reply.status == status
    assert_security_headers(reply)


def test_burst_is_limited_then_recovers(layout: Layout, fresh_gateway: Gateway) -> None:
    statuses: list[int] = []
    with keepalive(layout.https_port, host=DOMAIN, source=PUBLIC) as fetch:
        started = time.monotonic()
        for _ in range(40):
            reply = fetch("/api/city/burst")
            statuses.append(reply.status)
            if reply.status == 429:
                assert reply.json()["error"] == "too many requests"
                assert_security_headers(reply)
        elapsed = time.monotonic() - started
    assert set(statuses) <= {200, 429}, statuses
    ok = statuses.count(200)
    # Tokens that came back while the burst was being sent are allowed for, however slow the machine.
    assert BURST + 1 <= ok <= BURST + 1 + math.ceil(elapsed * RATE), (ok, elapsed, statuses)
    assert statuses[: BURST + 1] == [200] * (BURST + 1)
    # Refused once the burst is spent; which of the later requests find a token again depends on the
    # machine's speed (a loaded machine sends them slower than the rate refills), so not the last one.
    assert 429 in statuses[BURST + 1:], statuses
    time.sleep(1.0)
    reply = request(layout.https_port, "/api/city/after", host=DOMAIN, source=PUBLIC)
    assert reply.status == 200


def test_stopped_service_gives_502_and_the_rest_keeps_working(layout: Layout, gateway: Gateway,
                                                              stubs: Stubs) -> None:
    stubs.stop("agents-service")
    try:
        down = get(layout, "/api/agents/x")
        assert down.status in (502, 503)
        assert down.json()["error"] in ("upstream unavailable", "service unavailable")
        assert_security_headers(down)
        for service, route in ROUTES:
            if service != "agents-service":
                assert get(layout, f"/api/{route}/x").json()["service"] == service
        assert request(layout.https_port, "/health", host=DOMAIN).status == 200
    finally:
        stubs.start("agents-service")
    assert get(layout, "/api/agents/x").status == 200


def test_gateway_started_while_a_service_is_down(layout: Layout, gateway: Gateway, stubs: Stubs) -> None:
    stubs.stop("swapper")
    try:
        gateway.restart()
        assert get(layout, "/api/swapper/x").status in (502, 503)
        assert get(layout, "/api/city/x").json()["service"] == "city-service"
        assert request(layout.https_port, "/health", host=DOMAIN).status == 200
    finally:
        stubs.start("swapper")
    # Names resolve per request: the service that came back is reachable without reloading nginx.
    assert get(layout, "/api/swapper/x").json()["service"] == "swapper"
