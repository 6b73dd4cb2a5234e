"""load -> validate -> resolve -> render, shared by every command."""

from __future__ import annotations

from dataclasses import dataclass

from nodegen.errors import ProblemsFound, UsageError
from nodegen.loader import Manifests, load_manifests
from nodegen.problems import Problem, has_errors
from nodegen.render import Files, render_fleet, render_node
from nodegen.resolve import NodeView, resolve_fleet, resolve_node
from nodegen.validate import validate
from nodegen.workspace import Workspace


@dataclass
class Fleet:
    """A validated workspace: manifests, and the warnings that did not stop it."""

    workspace: Workspace
    manifests: Manifests
    warnings: list[Problem]

    @property
    def node_ids(self) -> list[str]:
        return sorted(self.manifests.nodes)

    def select(self, nodes: tuple[str, ...], all_nodes: bool, *, default_all: bool = False) -> list[str]:
        """The node ids a command works on; unknown ids are a usage error."""
        if all_nodes and nodes:
            raise UsageError("give node names or --all, not both")
        if not nodes:
            if all_nodes or default_all:
                return self.node_ids
            raise UsageError("name at least one node, or use --all (nodes: " + ", ".join(self.node_ids) + ")")
        unknown = [n for n in nodes if n not in self.manifests.nodes]
        if unknown:
            raise UsageError(f"no node {unknown[0]!r} (nodes: {', '.join(self.node_ids)})")
        return sorted(set(nodes))

    def view(self, node_id: str) -> NodeView:
        return resolve_node(self.manifests, node_id)

    def render(self, node_id: str) -> Files:
        return render_node(self.view(node_id))

    def render_root(self) -> Files:
        """The fleet-wide files directly in output/ (FLEET.md), with their checksum file."""
        return render_fleet(resolve_fleet(self.manifests))


def load_fleet(ws: Workspace) -> Fleet:
    """The validated fleet, or ProblemsFound with every problem of every manifest."""
    manifests, problems = load_manifests(ws)
    # The rules run on whatever loaded, so one broken node manifest does not hide the fleet's other problems.
    if manifests is not None:
        problems.extend(validate(manifests))
    if manifests is None or has_errors(problems):
        raise ProblemsFound(problems)
    return Fleet(ws, manifests, problems)
