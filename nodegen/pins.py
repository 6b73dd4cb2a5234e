"""The oldest release of each third-party image nodegen accepts in an audit, and why (a fixed vulnerability)."""

from __future__ import annotations

import re

from nodegen.record import record

_VERSION = re.compile(r"v?([0-9]+(?:\.[0-9]+)*)")

Version = tuple[int, ...]


@record
class Minimum:
    """A fixed vulnerability: the first fixed release on each release line that got one, and the fix's name.

    A fixed release's line is the release without its last number (7.4.6 -> 7.4, 15.11 -> 15). A tag on a
    line with a fix must be at least that fix; a tag on a line without one is compared with the newest fix:
    an older line never got the fix and needs the nearest newer fixed release (nats 2.10 for a fix made in
    2.11.15 and 2.12.6), a newer line was released with it (postgres 16 for a fix made in 15.11).
    """

    fixed: tuple[Version, ...]
    reason: str

    def below(self, version: Version) -> Version | None:
        """The fixed release `version` is older than, None if it has the fix."""
        for fix in self.fixed:
            if version[: len(fix) - 1] == fix[:-1] and len(version) >= len(fix) - 1:
                # A floating tag (`15-alpine`, `7.4`) follows its line's newest release: compared at its precision.
                return fix if version < fix[: len(version)] else None
        later = [fix for fix in self.fixed if version < fix[: len(version)]]
        return min(later) if later else None


@record
class Shortfall:
    """An image's tag is older than a fix: the release to reach and the vulnerability."""

    text: str
    reason: str


# Keep in step with docs/decisions.md (Current versions) and docs/rules.md (image-minimum). Only fixes whose
# fixed releases the project's advisory (or NVD) names are listed; several fixes of one repository are checked
# in order.
MINIMUMS: dict[str, tuple[Minimum, ...]] = {
    "redis": (Minimum(((7, 4, 6),), "CVE-2025-49844, Lua use-after-free and remote code execution"),),
    "postgres": (Minimum(((15, 11),), "CVE-2025-1094, SQL injection through libpq quoting"),),
    "nginx": (Minimum(((1, 27, 4),), "CVE-2025-23419, TLS session resumption bypasses client certificates"),),
    "matrixdotorg/synapse": (Minimum(((1, 127, 1),), "CVE-2025-30355, federation denial of service"),),
    "nats": (
        Minimum(((2, 10, 27), (2, 11, 1)),
                "CVE-2025-30215, secnote-2025-01: JetStream management API authorization bypass"),
        Minimum(((2, 11, 15), (2, 12, 6)),
                "CVE-2026-33248, secnote-2026-13: mTLS identity bypass for some DN patterns"),
        Minimum(((2, 11, 16), (2, 12, 7), (2, 14, 0)),
                "GHSA-38x3-76xf-cq45, secnote-2026-16: route and leafnode authentication bypass with no_auth_user"),
    ),
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


def tag_version(image: str) -> Version | None:
    """The numeric release of an image's tag (`7.4.6-alpine` -> (7, 4, 6)), None without one."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = _VERSION.match(last.split(":", 1)[1])
    return tuple(int(p) for p in match[1].split(".")) if match else None


def too_old(image: str) -> Shortfall | None:
    """The first fix the image's tag is older than, if there is one."""
    version = tag_version(image)
    if version is None:
        return None
    for minimum in MINIMUMS.get(repository(image), ()):
        fix = minimum.below(version)
        if fix is not None:
            return Shortfall(".".join(map(str, fix)), minimum.reason)
    return None
