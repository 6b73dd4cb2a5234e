"""The cluster targets' own rules (fleet.yaml `targets`, `render --target`): what Swarm or Kubernetes cannot express."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from nodegen.load.manifests import Manifests
from nodegen.problems import Problem
from nodegen.topology import node_service_entries

NAME_LIMIT = 63  # Swarm service and DNS names: <stack>_<service>


def image_problems(m: Manifests, engine: str) -> list[Problem]:
    """Services Compose builds and a cluster engine cannot: each needs cluster.image."""
    out: list[Problem] = []
    fd = m.fleet_doc
    running = {name for node_id in m.nodes for _, name, _ in node_service_entries(m, node_id)}
    for name in sorted(running & set(m.fleet.services)):
        svc = m.fleet.services[name]
        if svc.build is not None and svc.cluster.image is None:
            out.append(fd.problem(("services", name, "build"), "cluster-image",
                                  f"{name}: {engine} cannot build {svc.build!r}; give cluster.image, "
                                  "the pushed and pinned image of this service"))
    return out


def swarm_problems(m: Manifests) -> list[Problem]:
    """What the fleet needs before it can run as a Swarm stack, located in the manifests."""
    out = image_problems(m, "Swarm")
    keys: dict[str, str] = {}
    for node_id in sorted(m.nodes):
        doc = m.node_docs[node_id]
        for i, name, _ in node_service_entries(m, node_id):
            key = f"{node_id}-{name}"
            full = f"{m.fleet.project}_{key}"
            if len(full) > NAME_LIMIT:
                out.append(doc.problem(("services", i), "swarm-name",
                                       f"{name}: Swarm service {full!r} is longer than {NAME_LIMIT} characters"))
            elif key in keys and keys[key] != node_id:
                out.append(doc.problem(("services", i), "swarm-name",
                                       f"{name}: Swarm service {key!r} collides with one of node {keys[key]!r}"))
            keys.setdefault(key, node_id)
    out += _private_binds(m)
    return sorted(set(out))


def _private_binds(m: Manifests) -> Iterator[Problem]:
    """A `via: private` use binds the node's private address; Swarm would publish on every address."""
    for node_id in sorted(m.nodes):
        doc = m.node_docs[node_id]
        for name, use in sorted(m.nodes[node_id].uses.items()):
            if not isinstance(use, str) and use.via == "private":
                yield doc.problem(("uses", name, "via"), "swarm-publish",
                                  f"{name}: via: private publishes on {use.node}'s private address, which Swarm "
                                  "cannot bind alone; use via: gateway for the Swarm target")


def kubernetes_problems(m: Manifests) -> list[Problem]:
    """What the fleet needs before it can run on Kubernetes, located in the manifests."""
    return sorted(set(image_problems(m, "Kubernetes")))


PROBLEMS: dict[str, Callable[[Manifests], list[Problem]]] = {
    "swarm": swarm_problems,
    "kubernetes": kubernetes_problems,
}


def target_problems(m: Manifests, names: tuple[str, ...] | list[str] | None = None) -> list[Problem]:
    """The rules of the named cluster targets (default: those fleet.yaml lists)."""
    chosen = m.fleet.targets if names is None else names
    return sorted({p for name in chosen for p in PROBLEMS[name](m)})
