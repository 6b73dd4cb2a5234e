"""load -> validate -> resolve -> render, shared by every command."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass

from nodegen import cache
from nodegen.errors import ProblemsFound, UsageError
from nodegen.loader import Manifests, load_manifests
from nodegen.problems import Problem, has_errors
from nodegen.render import Files, precompile, render_fleet, render_node, use_bytecode_cache
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

    def render_many(self, node_ids: list[str], *, workers: int | None = None) -> dict[str, Files]:
        """Every node's files, in node order; large fleets are rendered by forked workers."""
        return dict(self.render_iter(node_ids, workers=workers))

    def render_iter(
        self, node_ids: list[str], *, workers: int | None = None, root: bool = False
    ) -> Iterator[tuple[str, Files]]:
        """Each node's files as soon as they are rendered, in node order (see render_many); with root,
        the fleet-wide files (render_root) come last, under the id ROOT.

        Rendering is pure and each node's files depend only on the loaded manifests, so workers
        forked after loading produce exactly what one process would.
        """
        count = workers if workers is not None else _workers(len(node_ids))
        if count <= 1:
            for node_id in node_ids:
                yield node_id, self.render(node_id)
            if root:
                yield ROOT, self.render_root()
            return
        # Whatever the workers share is computed once, here, and inherited by the fork.
        for node_id in node_ids:
            self.view(node_id)
        precompile()
        global _FORKED
        _FORKED = self
        # The fleet-wide files go first, so a worker renders them while the other renders nodes.
        tasks = [ROOT, *node_ids] if root else node_ids
        try:
            with multiprocessing.get_context("fork").Pool(count) as pool:
                chunk = max(1, len(tasks) // (count * 4))
                results = zip(tasks, pool.imap(_render_forked, tasks, chunksize=chunk), strict=True)
                root_files = next(results)[1] if root else None
                yield from results
                if root_files is not None:
                    yield ROOT, root_files
        finally:
            _FORKED = None

    def render_root(self) -> Files:
        """The fleet-wide files directly in output/ (FLEET.md), with their checksum file."""
        return render_fleet(resolve_fleet(self.manifests))


ROOT = ""  # render_iter's id for the fleet-wide files (no node has an empty id)
PARALLEL_FROM = 16  # below this many nodes, starting workers costs more than it saves
_FORKED: Fleet | None = None  # the fleet a forked worker renders from (inherited, never pickled)


def _workers(nodes: int) -> int:
    if nodes < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def _render_forked(node_id: str) -> Files:
    assert _FORKED is not None
    return _FORKED.render_root() if node_id == ROOT else _FORKED.render(node_id)


def load_fleet(ws: Workspace) -> Fleet:
    """The validated fleet, or ProblemsFound with every problem of every manifest."""
    use_bytecode_cache(cache.template_dir(ws))
    manifests, problems = load_manifests(ws)
    # The rules run on whatever loaded, so one broken node manifest does not hide the fleet's other problems.
    if manifests is not None:
        problems.extend(validate(manifests))
    if manifests is None or has_errors(problems):
        raise ProblemsFound(problems)
    return Fleet(ws, manifests, problems)
