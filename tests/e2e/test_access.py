"""Who may reach what, and who the client is: fleet routes, X-Forwarded-For and the client rate limit."""

from __future__ import annotations

import math
import time

import pytest

from tests.e2e.conftest import Gateway
from tests.e2e.fleet import ADMIN, DOMAIN, LOAD_BALANCER, PUBLIC, Layout
from tests.e2e.harness import LOOPBACK, Reply, keepalive, request
from tests.e2e.test_gateway import BURST, RATE, assert_security_headers

pytestmark = pytest.mark.e2e

FLEET_ROUTE = "/api/swapper/x"  # a utility service: fleet by default
PUBLIC_ROUTE = "/api/city/x"  # an mvp service: public by default


def get(layout: Layout, path: str, source: str, headers: dict[str, str] | None = None) -> Reply:
    """One request from source; a 429 left by earlier tests' traffic is waited out (bounded), never returned."""
    for _ in range(30):
        reply = request(layout.https_port, path, host=DOMAIN, headers=headers, source=source)
        if reply.status != 429:
            return reply
        time.sleep(0.2)
    raise AssertionError(f"{path} from {source}: still rate limited after 6s")


def test_public_client_gets_403_on_a_fleet_route(layout: Layout, gateway: Gateway) -> None:
    reply = get(layout, FLEET_ROUTE, PUBLIC)
    assert reply.status == 403, reply.body
    assert reply.json()["error"] == "forbidden"
    assert b"swapper" not in reply.body
    assert_security_headers(reply)
    assert get(layout, PUBLIC_ROUTE, PUBLIC).json()["service"] == "city-service"


@pytest.mark.parametrize("source", [LOOPBACK, ADMIN], ids=["node-address", "admin-network"])
def test_fleet_peers_pass_a_fleet_route(layout: Layout, gateway: Gateway, source: str) -> None:
    reply = get(layout, FLEET_ROUTE, source)
    assert reply.status == 200, reply.body
    assert reply.json()["service"] == "swapper"
    assert reply.json()["headers"]["x-forwarded-for"] == source


def test_spoofed_forwarded_for_is_not_passed_on_and_grants_nothing(layout: Layout, gateway: Gateway) -> None:
    spoof = {"X-Forwarded-For": f"{LOOPBACK}, 192.0.2.1", "X-Real-IP": LOOPBACK}
    seen = get(layout, PUBLIC_ROUTE, PUBLIC, spoof).json()["headers"]
    assert seen["x-forwarded-for"] == PUBLIC
    assert seen["x-real-ip"] == PUBLIC
    assert get(layout, FLEET_ROUTE, PUBLIC, spoof).status == 403


def test_load_balancer_names_the_client(layout: Layout, gateway: Gateway) -> None:
    seen = get(layout, PUBLIC_ROUTE, LOAD_BALANCER, {"X-Forwarded-For": "198.51.100.7"}).json()["headers"]
    assert seen["x-forwarded-for"] == "198.51.100.7"
    assert seen["x-real-ip"] == "198.51.100.7"
    # The balancer itself is no fleet peer; the client it names decides.
    assert get(layout, FLEET_ROUTE, LOAD_BALANCER, {"X-Forwarded-For": "198.51.100.7"}).status == 403
    assert get(layout, FLEET_ROUTE, LOAD_BALANCER, {"X-Forwarded-For": LOOPBACK}).status == 200


def burst(layout: Layout, path: str, source: str, count: int, spoof: bool = False) -> tuple[list[int], float]:
    """count requests on one connection as fast as possible: (statuses, seconds taken)."""
    statuses: list[int] = []
    with keepalive(layout.https_port, host=DOMAIN, source=source) as fetch:
        started = time.monotonic()
        for i in range(count):
            headers = {"X-Forwarded-For": f"192.0.2.{i % 250 + 1}"} if spoof else None
            statuses.append(fetch(path, headers).status)
        return statuses, time.monotonic() - started


def allowed(elapsed: float) -> int:
    """The most requests the limit lets through in elapsed seconds."""
    return BURST + 1 + math.ceil(elapsed * RATE)


def test_spoofed_forwarded_for_does_not_change_the_rate_limit_key(layout: Layout, fresh_gateway: Gateway) -> None:
    statuses, elapsed = burst(layout, PUBLIC_ROUTE, PUBLIC, 40, spoof=True)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) <= allowed(elapsed), (elapsed, statuses)
    assert statuses[-1] == 429


def test_unknown_routes_are_rate_limited(layout: Layout, fresh_gateway: Gateway) -> None:
    statuses, elapsed = burst(layout, "/api/nope/x", PUBLIC, 40)
    assert set(statuses) <= {404, 429}, statuses
    assert statuses[: BURST + 1] == [404] * (BURST + 1)
    assert statuses.count(404) <= allowed(elapsed) and statuses[-1] == 429, (elapsed, statuses)


@pytest.mark.parametrize(("source", "path"), [(LOOPBACK, PUBLIC_ROUTE), (ADMIN, FLEET_ROUTE)],
                         ids=["node-address", "admin-network"])
def test_fleet_peers_are_not_limited_by_the_client_limit(layout: Layout, fresh_gateway: Gateway,
                                                         source: str, path: str) -> None:
    statuses: list[int] = []
    beyond_the_limit = False
    with keepalive(layout.https_port, host=DOMAIN, source=source) as fetch:
        started = time.monotonic()
        for _ in range(500):  # bounded: stop once a client would certainly have been limited
            statuses.append(fetch(path).status)
            if len(statuses) > allowed(time.monotonic() - started) + 5:
                beyond_the_limit = True
                break
    assert beyond_the_limit, f"{len(statuses)} requests never outran the client limit: nothing proven"
    assert set(statuses) == {200}, statuses
