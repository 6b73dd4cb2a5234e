"""The manifest format's default values and the one default that depends on another key.

Shared by the pydantic wire models (`wire`, for the JSON Schema and the error messages) and the plain
model the rest of nodegen reads (`model`, generated from `wire`), so both fill in the same values.
"""

from __future__ import annotations

import re
from typing import Any, Literal

# The standard's port tables in its order, then everything else (`other` always closes the list).
DEFAULT_TABLES: dict[str, str] = {
    "core": "Core Infrastructure",
    "dagi": "DAGI Stack (Production)",
    "mvp": "Phase 1-3 MVP Services",
    "multimodal": "Multimodal Services (НОДА2 initially)",
    "other": "Other Services",
}
OTHER_TABLE = "other"

DEFAULT_CLASSES: dict[str, dict[str, str]] = {
    "core": {"table": "core"},
    "mvp": {"range": "mvp", "visibility": "public"},
    "utility": {"range": "utility"},
    "multimodal": {"range": "utility", "table": "multimodal"},
    "dagi": {"range": "dagi", "table": "dagi"},
}
DEFAULT_ROLES: dict[str, dict[str, bool]] = {"production": {}, "dev": {"dev": True}, "federation": {}}
DEFAULT_UPTIMES: dict[str, dict[str, bool]] = {"24/7": {}, "on-demand": {"on_demand": True}}
DEFAULT_RANGES: dict[str, str] = {"mvp": "7000-7999", "utility": "8000-8999", "dagi": "9000-9999"}
RotationKey = Literal["max_size", "max_file"]
DEFAULT_ROTATION: dict[RotationKey, str] = {"max_size": "10m", "max_file": "3"}
DEFAULT_LIMITS: dict[str, dict[str, str | int]] = {
    "core": {"memory": "1g", "cpus": "1.0", "pids": 512},
    "mvp": {"memory": "512m", "cpus": "1.0", "pids": 256},
    "utility": {"memory": "512m", "cpus": "1.0", "pids": 256},
    "multimodal": {"memory": "4g", "cpus": "2.0", "pids": 512},
    "dagi": {"memory": "1g", "cpus": "1.0", "pids": 256},
}
DEFAULT_CORE_PORTS: tuple[int, ...] = (80, 443, 3000, 4222, 5432, 6379, 8222, 9090)

_PROJECT = re.compile(r"[A-Za-z0-9._-]{1,100}")


def node_root_of_the_project(data: Any) -> Any:
    """fleet.yaml's standard.node_root defaults to /opt/<project>: no fleet's files land in another's folder."""
    project = data.get("project") if isinstance(data, dict) else None
    if not isinstance(project, str) or not _PROJECT.fullmatch(project):
        return data  # a bad project name is the name-format rule's to report, not node_root's
    std = data.get("standard", {})
    if not isinstance(std, dict) or "node_root" in std:
        return data
    return {**data, "standard": {**std, "node_root": f"/opt/{data['project']}"}}
