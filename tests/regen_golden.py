"""Regenerate tests/golden/<fleet>/ from tests/fixtures/fleets/<fleet>/: run by hand, never by the tests.

    python tests/regen_golden.py            # every fixture fleet
    python tests/regen_golden.py multi      # one fleet

Run it after a deliberate change to what nodegen renders, and review the diff before committing it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLEETS = ROOT / "tests" / "fixtures" / "fleets"
GOLDEN = ROOT / "tests" / "golden"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nodegen.pipeline import load_fleet  # noqa: E402
from nodegen.workspace import Workspace  # noqa: E402


def fleet_names() -> list[str]:
    return sorted(p.name for p in FLEETS.iterdir() if (p / "nodes" / "fleet.yaml").is_file())


def render_fleet(name: str) -> dict[str, str]:
    """Every file of every node of a fixture fleet, '<node>/<relative path>' -> text, and of each cluster
    target the fleet lists, '<target>/<relative path>' -> text."""
    fleet = load_fleet(Workspace(FLEETS / name))
    files = {f"{node}/{rel}": text for node in fleet.node_ids for rel, text in fleet.render(node).items()}
    for target in fleet.manifests.fleet.targets:
        files.update({f"{target}/{rel}": text for rel, text in fleet.render_target(target).items()})
    return files


def write_golden(name: str) -> int:
    files = render_fleet(name)  # before touching the old golden files: a failed render leaves them as they were
    target = GOLDEN / name
    if target.exists():
        shutil.rmtree(target)
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return len(files)


def main(argv: list[str]) -> int:
    names = argv or fleet_names()
    unknown = sorted(set(names) - set(fleet_names()))
    if unknown:
        print(f"no fixture fleet {unknown[0]!r} (fleets: {', '.join(fleet_names())})", file=sys.stderr)
        return 2
    for name in names:
        print(f"{name}: {write_golden(name)} file(s) in {(GOLDEN / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
