"""nodegen/pins.py: a tag is compared with the fix of its own release line, or with the nearest newer line's."""

from __future__ import annotations

import re

import pytest

from nodegen.pins import MINIMUMS, Minimum, too_old
from tests.conftest import ROOT

FIX = Minimum(((2, 11, 16), (2, 12, 7), (2, 14, 0)), "a fix on three lines")


@pytest.mark.parametrize(("version", "below"), [
    ((2, 11, 15), (2, 11, 16)),   # its line has a fix: below it
    ((2, 11, 16), None),          # the fix itself
    ((2, 10, 29), (2, 11, 16)),   # an older line never got it: the nearest newer fix
    ((2, 13, 3), (2, 14, 0)),     # a line between fixed lines
    ((2, 12, 9), None),
    ((2, 15, 2), None),           # a line released after the fix
    ((2, 11), None),              # a floating tag follows its line's newest release
    ((2, 13), (2, 14, 0)),        # ... which never got the fix on 2.13
    ((2,), None),
])
def test_fixed_release_of_a_line(version: tuple[int, ...], below: tuple[int, ...] | None) -> None:
    assert FIX.below(version) == below


def test_every_minimum_names_its_fix() -> None:
    for repository, minimums in MINIMUMS.items():
        for minimum in minimums:
            assert minimum.fixed and all(len(fix) >= 2 for fix in minimum.fixed), repository
            assert minimum.reason.split(",", 1)[0].startswith(("CVE-", "GHSA-")), repository


def test_shipped_catalog_pins_pass() -> None:
    text = (ROOT / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    images = re.findall(r"^    image: (\S+)", text, flags=re.M)
    assert "nats:2.15.2-alpine" in images
    assert [image for image in images if too_old(image)] == []
