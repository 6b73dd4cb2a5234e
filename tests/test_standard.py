"""nodegen/standard.py: the vocabulary the rules and the views share, one case per shape."""

from __future__ import annotations

import pytest

from nodegen.load.model import Service, ServiceOverride, Use
from nodegen.standard import (
    CLASS_RANGE,
    SECRET_NAME,
    host_port,
    is_ip,
    is_ipv4,
    parse_bind,
    parse_range,
    publish_of,
    service_ports,
    short_name,
    use_of,
)


@pytest.mark.parametrize(("text", "parsed"), [
    ("7000-7999", (7000, 7999)), ("1-65535", (1, 65535)), ("80-80", (80, 80)),
    ("7999-7000", None), ("0-10", None), ("1-65536", None), ("7000", None), (" 1-2", None),
])
def test_parse_range(text: str, parsed: tuple[int, int] | None) -> None:
    assert parse_range(text) == parsed


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1:3000", ("127.0.0.1", 3000)), ("[::1]:3000", ("[::1]", 3000)),
    ("127.0.0.1:0", None), ("127.0.0.1:65536", None), ("localhost:3000", None), ("::1:3000", None),
    ("999.0.0.1:3000", None), ("3000", None),
])
def test_parse_bind(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_bind(text) == parsed


def test_host_port_brackets_ipv6_only() -> None:
    assert (host_port("10.0.0.2", 443), host_port("::1", 443)) == ("10.0.0.2:443", "[::1]:443")


def test_ip_shapes() -> None:
    assert is_ip("::1") and is_ip("10.0.0.1") and not is_ip("node2")
    assert is_ipv4("10.0.0.1") and not is_ipv4("::1")


def test_short_name_drops_the_service_suffix_only() -> None:
    assert [short_name(n) for n in ("agents-service", "postgres", "service")] == ["agents", "postgres", "service"]


def test_every_class_but_core_has_a_range() -> None:
    assert set(CLASS_RANGE) == {"mvp", "utility", "multimodal", "dagi"}
    assert CLASS_RANGE["multimodal"] == "utility"  # the standard puts them in one range


def test_secret_names() -> None:
    assert SECRET_NAME.search("POSTGRES_PASSWORD") and SECRET_NAME.search("GITHUB_TOKEN")
    assert not SECRET_NAME.search("LOG_LEVEL") and not SECRET_NAME.search("PASS_MIN_LENGTH")


def test_service_ports_lists_distinct_secondary_ports_with_their_place() -> None:
    svc = Service.model_validate({"class": "utility", "image": "x:1", "port": 8890,
                                  "health": {"port": 8890}, "metrics": {"port": 8891}})
    assert service_ports(svc) == [(("port",), 8890), (("metrics", "port"), 8891)]


def test_publish_of_prefers_the_node_override() -> None:
    svc = Service.model_validate({"class": "core", "image": "x:1", "port": 3000, "publish": ["127.0.0.1:3000"]})
    assert publish_of(svc, None) == ["127.0.0.1:3000"]
    assert publish_of(svc, ServiceOverride.model_validate({"publish": []})) == []
    assert publish_of(svc, ServiceOverride.model_validate({"image": "x:2"})) == ["127.0.0.1:3000"]


def test_use_of_reads_the_short_form() -> None:
    assert use_of("node2") == Use(node="node2")
    long = Use(node="node2", via="private")
    assert use_of(long) is long
