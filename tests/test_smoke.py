"""The shipped fleet validates, renders and is current in output/."""

from __future__ import annotations

from tests.conftest import ROOT, invoke


def test_shipped_fleet_validates() -> None:
    result = invoke("-C", str(ROOT), "validate")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("ok: 3 node(s)")


def test_output_is_current() -> None:
    result = invoke("-C", str(ROOT), "check", "--all")
    assert result.code == 0, result.stderr
