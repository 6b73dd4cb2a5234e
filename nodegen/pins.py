"""The oldest release of each third-party image nodegen accepts in an audit, and why (a fixed vulnerability)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"v?([0-9]+(?:\.[0-9]+)*)")


@dataclass(frozen=True)
class Minimum:
    """A repository's oldest acceptable release and the fix that made it so."""

    version: tuple[int, ...]
    reason: str

    @property
    def text(self) -> str:
        return ".".join(map(str, self.version))


# Keep in step with docs/decisions.md (Current versions). A tag of another major line is compared as is:
# postgres 16.1 passes the 15.11 minimum, redis 7.2.x does not pass 7.4.6 (7.2 has its own fixed releases,
# but nodegen's catalog follows one line per image).
MINIMUMS: dict[str, Minimum] = {
    "redis": Minimum((7, 4, 6), "CVE-2025-49844, Lua use-after-free and remote code execution"),
    "postgres": Minimum((15, 11), "CVE-2025-1094, SQL injection through libpq quoting"),
    "nginx": Minimum((1, 27, 4), "CVE-2025-23419, TLS session resumption bypasses client certificates"),
    "matrixdotorg/synapse": Minimum((1, 127, 1), "CVE-2025-30355, federation denial of service"),
}


def repository(image: str) -> str:
    """`docker.io/library/redis:7.4-alpine` -> `redis`."""
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "library/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def tag_version(image: str) -> tuple[int, ...] | None:
    """The numeric release of an image's tag (`7.4.6-alpine` -> (7, 4, 6)), None without one."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = _VERSION.match(last.split(":", 1)[1])
    return tuple(int(p) for p in match[1].split(".")) if match else None


def too_old(image: str) -> Minimum | None:
    """The minimum the image's tag is below, if it is."""
    minimum = MINIMUMS.get(repository(image))
    version = tag_version(image)
    if minimum is None or version is None:
        return None
    # A floating tag (`15-alpine`, `7`) follows its line's newest release: compared at its own precision.
    return minimum if version < minimum.version[: len(version)] else None
