"""load -> validate -> resolve (once) -> render, shared by every command that reads the fleet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from nodegen import collector
from nodegen.checksums import SUM_FILE, Files, sum_lines
from nodegen.errors import ProblemsFound, UsageError
from nodegen.load.manifests import Manifests, load_manifests
from nodegen.problems import Problem
from nodegen.rules.checks import validate
from nodegen.rules.cluster import target_problems
from nodegen.workspace import Workspace

if TYPE_CHECKING:  # the view is imported and built by the commands that use it, not by validate or nodes
    from nodegen.view.resolve import FleetView, NodeView


@dataclass
class Fleet:
    """A validated workspace: its manifests, the resolved view built from them, and what did not stop it."""

    workspace: Workspace
    manifests: Manifests
    warnings: list[Problem]
    errors: list[Problem] = field(default_factory=list)  # of the rules the loader was told to tolerate
    _templates_ready: bool = field(default=False, repr=False)
    _rendered: dict[str, Files] = field(default_factory=dict, repr=False)

    @cached_property
    def resolved(self) -> FleetView:
        """The view of the whole fleet, built once, on first use (`validate` and `nodes` need none)."""
        from nodegen.view.resolve import resolve_fleet

        view = resolve_fleet(self.manifests)
        collector.resume()  # what exists now lives until the process ends; rendering's garbage is collected
        return view

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
        return self.resolved.node(node_id)

    def render(self, node_id: str) -> Files:
        from nodegen.targets import render_node

        if node_id not in self._rendered:  # a cluster target renders from every node's files again
            self._prepare_templates()
            self._rendered[node_id] = render_node(self.view(node_id))
        return self._rendered[node_id]

    def targets(self, extra: tuple[str, ...] = ()) -> list[str]:
        """The cluster targets to cover: fleet.yaml's `targets`, those already in output/, and extra."""
        from nodegen.targets import CLUSTER_TARGETS

        out = self.workspace.output_dir
        present = {t for t in CLUSTER_TARGETS if (out / t / SUM_FILE).is_file()}
        return sorted({*self.manifests.fleet.targets, *present, *extra})

    def render_target(self, name: str) -> Files:
        """output/<name>/ of a cluster target, or ProblemsFound when the fleet cannot run there."""
        from nodegen.targets import CLUSTER_TARGETS
        from nodegen.templating import header_lines

        problems = target_problems(self.manifests, [name])
        if any(p.is_error for p in problems):
            raise ProblemsFound(problems)
        files = CLUSTER_TARGETS[name].render(self.resolved, {n: self.render(n) for n in self.node_ids})
        files[SUM_FILE] = header_lines(self.resolved.sources, f"nodegen render --target {name}") + sum_lines(files)
        return dict(sorted(files.items()))

    def render_root(self) -> Files:
        """The fleet-wide files directly in output/ (FLEET.md), with their checksum file."""
        from nodegen.targets import render_fleet

        self._prepare_templates()
        return render_fleet(self.resolved)

    def _prepare_templates(self) -> None:
        """Jinja and the targets are imported by the commands that render, not by validate or nodes."""
        if not self._templates_ready:
            from nodegen import cache
            from nodegen.templating import use_bytecode_cache

            use_bytecode_cache(cache.template_dir(self.workspace))
            self._templates_ready = True

    def render_many(self, node_ids: list[str], *, workers: int | None = None) -> dict[str, Files]:
        """Every node's files, in node order; large fleets are rendered by forked workers."""
        return dict(self.render_all(node_ids, workers=workers).nodes)

    def render_all(self, node_ids: list[str], *, workers: int | None = None) -> Rendering:
        """The nodes' files as they are rendered, and the fleet-wide files (see Rendering)."""
        return Rendering(self, node_ids, workers if workers is not None else _workers(len(node_ids)))


class Rendering:
    """Node files streamed in node order (`nodes`), fleet-wide files apart (`fleet_files`).

    Rendering is pure and reads only the resolved view, so workers forked after it was built
    produce exactly what one process would. With workers, one of them renders the fleet-wide
    files while the others render nodes; they are ready once `nodes` is exhausted.
    """

    def __init__(self, fleet: Fleet, node_ids: list[str], workers: int) -> None:
        self._fleet = fleet
        self._fleet_files: Files | None = None
        self.nodes: Iterator[tuple[str, Files]] = (
            self._serial(node_ids) if workers <= 1 else self._forked(node_ids, workers)
        )

    def fleet_files(self) -> Files:
        if self._fleet_files is None:
            self._fleet_files = self._fleet.render_root()
        return self._fleet_files

    def _serial(self, node_ids: list[str]) -> Iterator[tuple[str, Files]]:
        for node_id in node_ids:
            yield node_id, self._fleet.render(node_id)

    def _forked(self, node_ids: list[str], workers: int) -> Iterator[tuple[str, Files]]:
        import multiprocessing

        import nodegen.targets  # noqa: F401  (imported once here and inherited by the workers)
        from nodegen.templating import precompile

        self._fleet._prepare_templates()
        precompile()  # compiled once here and inherited, not compiled by every worker
        _ = self._fleet.resolved  # the view too: built here once and inherited, not built by every worker
        global _FORKED
        _FORKED = self._fleet
        tasks: list[str | None] = [None, *node_ids]  # None: the fleet-wide files, first so a worker starts on them
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                chunk = max(1, len(tasks) // (workers * 4))
                results = zip(tasks, pool.imap(_render_forked, tasks, chunksize=chunk), strict=True)
                self._fleet_files = next(results)[1]
                for node_id, files in results:
                    assert node_id is not None
                    yield node_id, files
        finally:
            _FORKED = None


PARALLEL_FROM = 16  # below this many nodes, starting workers costs more than it saves
_FORKED: Fleet | None = None  # the fleet a forked worker renders from (inherited, never pickled)


def _workers(nodes: int) -> int:
    if nodes < PARALLEL_FROM:
        return 1
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def _render_forked(node_id: str | None) -> Files:
    assert _FORKED is not None
    return _FORKED.render_root() if node_id is None else _FORKED.render(node_id)


def load_fleet(ws: Workspace, *, tolerate: tuple[str, ...] = ()) -> Fleet:
    """The validated fleet and its view, or ProblemsFound with every problem of every manifest.

    Errors of the rules in tolerate do not stop it: they are kept in Fleet.errors (the port ledger
    is still drawn for a fleet whose only problems are its ports).
    """
    manifests, problems = load_manifests(ws)
    # The rules run on whatever loaded, so one broken node manifest does not hide the fleet's other problems.
    if manifests is not None:
        problems.extend(validate(manifests))
        if not any(p.is_error for p in problems):  # the listed cluster targets' own rules
            problems.extend(target_problems(manifests))
    errors = [p for p in problems if p.is_error]
    if manifests is None or any(p.rule not in tolerate for p in errors):
        raise ProblemsFound(problems)
    warnings = [p for p in problems if not p.is_error]
    return Fleet(ws, manifests, warnings, errors)
