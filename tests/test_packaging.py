"""A regular (non-editable) install carries every subpackage and every template."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def _config() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["tool"]["setuptools"]  # type: ignore[no-any-return]


def test_every_subpackage_is_listed() -> None:
    listed = set(_config()["packages"])  # type: ignore[call-overload]
    found = {
        ".".join(p.relative_to(ROOT).parent.parts)
        for p in (ROOT / "nodegen").rglob("__init__.py")
    }
    assert found - listed == set()
    assert "nodegen.templates" in listed


def test_every_template_is_package_data() -> None:
    patterns = _config()["package-data"]["nodegen.templates"]  # type: ignore[index]
    generated = {"__pycache__", "__jinjacache__"}  # compiled modules and templates, made by the install
    templates = [p for p in (ROOT / "templates").rglob("*")
                 if p.is_file() and p.name != "__init__.py" and not generated & set(p.parts)]
    assert templates
    for path in templates:
        assert any(path.match(pattern) for pattern in patterns), f"{path.name} would not be installed"
