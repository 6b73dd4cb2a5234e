"""Per-route gateway settings: the frontend at /, prefixes kept, CORS, body size, headers fitting the content."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Gateway
from tests.e2e.fleet import DOMAIN, ORIGIN, Layout
from tests.e2e.harness import raw_request
from tests.e2e.test_gateway import HSTS, assert_security_headers, get

pytestmark = pytest.mark.e2e

WEB_CSP_START = "default-src 'self';"


def assert_web_headers(headers: dict[str, str]) -> None:
    assert headers["content-security-policy"].startswith(WEB_CSP_START), headers
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["strict-transport-security"] == HSTS
    assert headers.get("x-request-id")


@pytest.mark.parametrize("path", ["/", "/index.html", "/app.js?v=3"])
def test_frontend_answers_at_the_root(layout: Layout, gateway: Gateway, path: str) -> None:
    reply = get(layout, path)
    assert reply.status == 200
    assert reply.json()["service"] == "frontend" and reply.json()["path"] == path
    assert_web_headers(reply.headers)


@pytest.mark.parametrize("path", ["/rooms/42", "/settings/profile?tab=2", "/deep/link/"])
def test_deep_links_fall_back_to_the_index(layout: Layout, gateway: Gateway, path: str) -> None:
    reply = get(layout, path)
    assert reply.status == 200, reply.body
    assert reply.json()["service"] == "frontend"
    assert reply.json()["path"].split("?")[0] == "/index.html"  # the query string is kept
    assert reply.json()["headers"]["x-forwarded-for"]  # the fallback is proxied like the first try
    assert_web_headers(reply.headers)


def test_api_keeps_the_strict_policy_beside_the_frontend(layout: Layout, gateway: Gateway) -> None:
    assert_security_headers(get(layout, "/api/agents/x"))


def test_city_service_receives_its_prefixed_paths(layout: Layout, gateway: Gateway) -> None:
    assert get(layout, "/api/city/rooms/7?full=1").json()["path"] == "/api/city/rooms/7?full=1"
    assert get(layout, "/api/agents/rooms/7").json()["path"] == "/rooms/7"  # the default strips it


def test_cors_allows_the_listed_origin_only(layout: Layout, gateway: Gateway) -> None:
    allowed = get(layout, "/api/city/x", {"Origin": ORIGIN})
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert allowed.headers["vary"] == "Origin"
    assert_security_headers(allowed)  # the route's own headers did not drop the server's
    other = get(layout, "/api/city/x", {"Origin": "https://evil.e2e.test"})
    assert other.status == 200 and "access-control-allow-origin" not in other.headers
    no_cors = get(layout, "/api/agents/x", {"Origin": ORIGIN})
    assert "access-control-allow-origin" not in no_cors.headers


def test_cors_preflight_is_answered_by_the_gateway(layout: Layout, gateway: Gateway) -> None:
    reply = raw_request(layout.https_port, (
        f"OPTIONS /api/city/x HTTP/1.1\r\nHost: {DOMAIN}\r\nOrigin: {ORIGIN}\r\n"
        "Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n").encode())
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert b"city-service" not in reply.body  # never reached the service


def post(layout: Layout, path: str, size: int) -> int:
    head = f"POST {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    return raw_request(layout.https_port, head.encode() + b"x" * size).status


# The stubs answer GET only: a POST the gateway lets through is refused by the stub, which nginx reports as 502.
PASSED_ON = {200, 502}


def test_request_body_limit_is_per_route(layout: Layout, gateway: Gateway) -> None:
    size = 2 * 1024 * 1024
    assert post(layout, "/api/agents/upload", size) == 413  # proxy.max_body: 1m
    assert post(layout, "/api/agents/upload", 512 * 1024) in PASSED_ON
    assert post(layout, "/api/city/upload", size) in PASSED_ON  # the default, 20m
