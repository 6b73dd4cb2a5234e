"""A workspace-local cache that lets `nodegen check` skip rendering when nothing it reads has changed.

The key is a sha256 of everything rendering depends on: nodegen's own code and templates, the
Python and library versions, and every manifest's bytes. The value is the checksum of each file
the last clean check (or render) produced. On a hit, check hashes output/ and compares; any
difference at all falls back to the full render, which alone writes reports. Light imports only:
this module runs before pydantic or Jinja are loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from importlib import util
from pathlib import Path

from nodegen import __version__
from nodegen.checksums import SUM_FILE, is_unmanaged
from nodegen.workspace import Workspace

CACHE_DIR = ".nodegen-cache"
CACHE_FILE = "check.json"
LIBRARIES = ("jinja2", "pydantic", "pydantic-core", "PyYAML", "ruamel.yaml")

Snapshot = dict[str, dict[str, str]]  # node -> relative path -> "sha256 mode"


def enabled() -> bool:
    return os.environ.get("NODEGEN_NO_CACHE", "") in ("", "0")


GENERATED = ("__pycache__", "__jinjacache__")  # compiled modules and templates: derived from what is hashed


def _files_under(folder: Path, suffix: str) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in GENERATED)
        found += [Path(root, n) for n in sorted(names) if n.endswith(suffix)]
    return found


def _code_files() -> list[Path]:
    files = _files_under(Path(__file__).resolve().parent, ".py")
    spec = util.find_spec("nodegen.templates")
    for location in (spec.submodule_search_locations or []) if spec else []:
        files += _files_under(Path(location), ".j2")
    return files


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def library_versions() -> list[str]:
    """The installed LIBRARIES by their metadata folders' names (`jinja2-3.1.6.dist-info`), in the order
    of sys.path: the version is in the name. Listing sys.path spares importing importlib.metadata."""
    wanted = {_normal(lib) for lib in LIBRARIES}
    found = []
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        found += [n for n in names if n.endswith((".dist-info", ".egg-info")) and _normal(n.split("-")[0]) in wanted]
    return found


def fingerprint(ws: Workspace) -> str:
    """sha256 over nodegen's code and templates, library versions and the workspace's manifests."""
    h = hashlib.sha256()
    h.update(f"{__version__}\0{sys.version}\0".encode())
    for name in library_versions():
        h.update(f"{name}\0".encode())
    for path in _code_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for path in sorted(ws.nodes_dir.iterdir()):
        h.update(f"{path.name}\0{path.is_symlink()}\0".encode())
        if path.is_file() and not path.is_symlink():
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


ROOT_KEY = ""  # the snapshot of files directly in output/ (fleet-wide files)


def snapshot_folder(folder: Path, *, recurse: bool = True) -> dict[str, str]:
    """What a folder holds now: relative path -> 'sha256 mode' (unmanaged files left out)."""
    out: dict[str, str] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(dirs) if recurse else []
        for name in names:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if is_unmanaged(rel):
                continue
            data = path.read_bytes()
            out[rel] = f"{hashlib.sha256(data).hexdigest()} {0o755 if path.stat().st_mode & 0o100 else 0o644:o}"
    return out


def template_dir(ws: Workspace) -> Path | None:
    """Where compiled templates are kept between runs, or None when caching is off."""
    if not enabled():
        return None
    folder = ws.root / CACHE_DIR
    try:
        folder.mkdir(exist_ok=True)
        (folder / ".gitignore").write_text("*\n")
    except OSError:
        return None
    return folder / "templates"


def _cache_path(ws: Workspace) -> Path:
    return ws.root / CACHE_DIR / CACHE_FILE


def snapshot(ws: Workspace, nodes: list[str]) -> Snapshot:
    """The current state of every node folder and of the fleet-wide files in output/."""
    shot = {n: snapshot_folder(ws.output_dir / n) for n in nodes}
    shot[ROOT_KEY] = snapshot_folder(ws.output_dir, recurse=False)
    return shot


def store(ws: Workspace, key: str, snapshot: Snapshot) -> None:
    """Remember a clean state; failures to write the cache are not errors."""
    if not enabled():
        return
    path = _cache_path(ws)
    try:
        path.parent.mkdir(exist_ok=True)
        (path.parent / ".gitignore").write_text("*\n")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "nodes": snapshot}, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def _orphans(ws: Workspace, nodes: set[str]) -> bool:
    out = ws.output_dir
    return out.is_dir() and any(
        p.is_dir() and (p / SUM_FILE).is_file() and p.name not in nodes for p in out.iterdir()
    )


def clean_by_cache(ws: Workspace, nodes: list[str] | None, key: str | None = None) -> list[str] | None:
    """The nodes verified current from the cache alone, or None when the full check must run.

    key is the workspace's fingerprint when the caller has already computed it.
    """
    if not enabled():
        return None
    try:
        cached = json.loads(_cache_path(ws).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.get("key") != (key or fingerprint(ws)):
        return None
    known: dict[str, dict[str, str]] = dict(cached.get("nodes", {}))
    root = known.pop(ROOT_KEY, None)
    chosen = sorted(known) if nodes is None else sorted(set(nodes))
    if any(n not in known for n in chosen) or (nodes is None and _orphans(ws, set(known))):
        return None
    if ws.output_dir.is_symlink() or root is None:
        return None
    if nodes is None and snapshot_folder(ws.output_dir, recurse=False) != root:
        return None
    for node in chosen:
        folder = ws.output_dir / node
        if folder.is_symlink() or snapshot_folder(folder) != known[node]:
            return None
    return chosen
