"""The small exception tree nodegen raises; the CLI turns each into an exit code."""

from __future__ import annotations

from nodegen.problems import Problem

__all__ = ["NodegenError", "ProblemsFound", "UsageError", "WorkspaceError"]


class NodegenError(Exception):
    """Base of every error nodegen expects; anything else is a bug."""

    exit_code = 1


class UsageError(NodegenError):
    """The command line asked for something that cannot be (exit 2)."""

    exit_code = 2


class WorkspaceError(UsageError):
    """No workspace (a folder with nodes/fleet.yaml) was found."""


class ProblemsFound(NodegenError):
    """Validation found problems; they are carried as data and formatted by the CLI."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = sorted(problems)
