"""Find the workspace (the folder holding nodes/fleet.yaml) and the files in it."""

from __future__ import annotations

from pathlib import Path

from nodegen.errors import WorkspaceError
from nodegen.record import record

FLEET_FILE = "nodes/fleet.yaml"


@record
class Workspace:
    """A workspace root and the paths nodegen reads and writes below it."""

    root: Path

    @property
    def nodes_dir(self) -> Path:
        return self.root / "nodes"

    @property
    def fleet_file(self) -> Path:
        return self.root / FLEET_FILE

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    def node_files(self) -> dict[str, Path]:
        """Node id (file stem) -> manifest path, sorted by id."""
        found = {
            p.stem: p
            for p in self.nodes_dir.iterdir()
            if p.suffix in (".yaml", ".yml") and p.name not in ("fleet.yaml", "fleet.yml")
        }
        return dict(sorted(found.items()))

    def display(self, path: Path) -> str:
        """The path as shown in messages: relative to the workspace, with forward slashes."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def find_workspace(start: Path | None = None, explicit: Path | None = None) -> Workspace:
    """The explicit workspace, or the nearest folder at or above start holding nodes/fleet.yaml."""
    if explicit is not None:
        root = explicit.resolve()
        if not (root / FLEET_FILE).is_file():
            raise WorkspaceError(f"{explicit}: not a nodegen workspace (no {FLEET_FILE})")
        return Workspace(root)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / FLEET_FILE).is_file():
            return Workspace(folder)
    raise WorkspaceError(f"not inside a nodegen workspace: no {FLEET_FILE} in {here} or above (use -C DIR)")
