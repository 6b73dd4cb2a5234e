"""The manifests an import builds, with the source place every value came from, and the report so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodegen.importer.report import Gap, Kind, Where
from nodegen.load.yamlio import Document, Loc

FLEET, NODE = "fleet", "node"


@dataclass
class Draft:
    """fleet.yaml and nodes/<node>.yaml as plain data, their origins, and the gaps found."""

    fleet: dict[str, Any] = field(default_factory=dict)
    node: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, Loc], Where] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    settings: dict[str, dict[str, tuple[str, Where]]] = field(default_factory=dict)  # var -> service -> value

    def put(self, file: str, loc: Loc, value: Any, where: Where | None) -> None:
        """Set the value at loc (creating mappings on the way) and remember where it came from."""
        target: Any = self.fleet if file == FLEET else self.node
        for part in loc[:-1]:
            target = target.setdefault(part, {})
        target[loc[-1]] = value
        if where is not None:
            self.origins[(file, loc)] = where

    def get(self, file: str, loc: Loc) -> Any:
        target: Any = self.fleet if file == FLEET else self.node
        for part in loc:
            if not isinstance(target, dict) or part not in target:
                return None
            target = target[part]
        return target

    def gap(self, where: Where, kind: Kind, key: str, message: str) -> None:
        self.gaps.append(Gap.at(where, kind, key, message))

    def origin(self, file: str, loc: Loc) -> Where | None:
        """Where the value at loc (or the nearest enclosing value) came from."""
        probe = tuple(loc)
        while probe:
            if (file, probe) in self.origins:
                return self.origins[(file, probe)]
            probe = probe[:-1]
        return None


def where(doc: Document, loc: Loc, *, key: bool = False) -> Where:
    line, col = doc.where(loc, key=key)
    return Where(doc.path, line, col)
