"""Fleet catalogs `nodegen init` starts a workspace from (daarion.yaml links to the shipped nodes/fleet.yaml)."""

from __future__ import annotations

from importlib import resources


def shipped_fleet() -> str:
    """The shipped nodes/fleet.yaml as the package carries it (a link in a checkout, a copy once built)."""
    return resources.files(__name__).joinpath("daarion.yaml").read_text(encoding="utf-8")
