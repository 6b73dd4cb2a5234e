"""nodegen/standard.py: the vocabulary the rules and the views share, one case per shape."""

from __future__ import annotations

import pytest

from nodegen.load.model import Health, Metrics, Service, ServiceOverride, Standard, Use
from nodegen.standard import (
    SECRET_NAME,
    class_of,
    host_port,
    is_ip,
    is_ipv4,
    on_demand_uptimes,
    parse_bind,
    parse_range,
    publish_of,
    ranged_classes,
    role_of,
    service_ports,
    short_name,
    table_headings,
    table_keys,
    table_of,
    uptime_of,
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


def test_the_standards_own_vocabulary_is_the_default() -> None:
    std = Standard()
    assert ranged_classes(std) == ("mvp", "utility", "multimodal", "dagi")  # every class but core has a range
    assert class_of(std, "multimodal").range == "utility"  # the standard puts them in one range
    assert class_of(std, "mvp").visibility == "public" and class_of(std, "utility").visibility == "fleet"
    assert [n for n in std.roles if role_of(std, n).dev] == ["dev"]
    assert on_demand_uptimes(std) == ("on-demand",) and not uptime_of(std, "24/7").on_demand


def test_an_undeclared_name_gets_the_plain_defaults() -> None:
    std = Standard()
    assert class_of(std, "nope").range is None and not role_of(std, "nope").dev and not uptime_of(std, "x").on_demand


def test_the_port_table_of_a_service() -> None:
    std = Standard()
    assert table_keys(std) == ("core", "dagi", "mvp", "multimodal", "other")
    assert table_of(std, "core", None, "monitor") == "core"  # the class's own table wins
    assert table_of(std, "utility", "dagi", "utility") == "dagi"  # then the stack's
    assert table_of(std, "mvp", None, "mvp") == "mvp"  # then the phase's
    assert table_of(std, "mvp", None, "federation") == "other"
    own = Standard(port_tables={"other": "Rest", "app": "Apps"})
    assert table_keys(own) == ("app", "other") and table_headings(own) == ("Apps", "Rest")
    assert table_headings(Standard(port_tables={"app": "Apps"})) == ("Apps", "Other Services")


def test_secret_names() -> None:
    assert SECRET_NAME.search("POSTGRES_PASSWORD") and SECRET_NAME.search("GITHUB_TOKEN")
    assert not SECRET_NAME.search("LOG_LEVEL") and not SECRET_NAME.search("PASS_MIN_LENGTH")


def test_service_ports_lists_distinct_secondary_ports_with_their_place() -> None:
    svc = Service(class_="utility", image="x:1", port=8890, health=Health(port=8890), metrics=Metrics(port=8891))
    assert service_ports(svc) == [(("port",), 8890), (("metrics", "port"), 8891)]


def test_publish_of_prefers_the_node_override() -> None:
    svc = Service(class_="core", image="x:1", port=3000, publish=["127.0.0.1:3000"])
    assert publish_of(svc, None) == ["127.0.0.1:3000"]
    assert publish_of(svc, ServiceOverride(publish=[])) == []
    assert publish_of(svc, ServiceOverride(image="x:2")) == ["127.0.0.1:3000"]


def test_use_of_reads_the_short_form() -> None:
    assert use_of("node2") == Use(node="node2")
    long = Use(node="node2", via="private")
    assert use_of(long) is long
