"""The `.nodegen.sum` format: what nodegen wrote, by sha256, so hand edits can be told apart."""

from __future__ import annotations

import hashlib

Files = dict[str, str]  # path relative to an output folder -> text, as rendered, compared and written
SUM_FILE = ".nodegen.sum"
# Files that may sit in a node folder without being generated (secrets stay out of Git); nodegen
# neither lists, replaces nor removes them.
UNMANAGED = (".env", "infra/nginx/certs/")


def is_unmanaged(rel: str) -> bool:
    """Whether a path relative to a node folder is one of the operator's own files."""
    return any(rel == u or (u.endswith("/") and rel.startswith(u) and not rel.endswith("README.md")) for u in UNMANAGED)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sum_lines(files: dict[str, str]) -> str:
    """One `<sha256>  <path>` line per file, sorted by path."""
    return "".join(f"{digest(text)}  {path}\n" for path, text in sorted(files.items()))


def parse_sum(text: str) -> dict[str, str]:
    """path -> sha256 from a checksum file; comments and malformed lines are ignored."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("  ", 1)
        if len(parts) == 2 and len(parts[0]) == 64 and not line.startswith("#"):
            out[parts[1]] = parts[0]
    return out
