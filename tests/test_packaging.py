"""A regular (non-editable) install carries every subpackage and every template."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

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


def test_the_daarion_preset_is_the_shipped_manifest_itself() -> None:
    # A link, not a copy: a catalog edit in nodes/fleet.yaml cannot leave the preset behind.
    preset = ROOT / "nodegen" / "presets" / "daarion.yaml"
    assert preset.is_symlink()
    assert preset.resolve() == (ROOT / "nodes" / "fleet.yaml").resolve()


def test_a_built_package_carries_the_shipped_manifest_as_the_daarion_preset(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for rel in ("pyproject.toml", "README.md", "build_templates.py", "nodes/fleet.yaml"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tree / rel)
    ignore = shutil.ignore_patterns("__pycache__", "__jinjacache__")
    for rel in ("nodegen", "templates"):
        shutil.copytree(ROOT / rel, tree / rel, symlinks=True, ignore=ignore)
    lib = tmp_path / "lib"
    built = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                            "--build-lib", str(lib)], cwd=tree, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    packaged = lib / "nodegen" / "presets" / "daarion.yaml"
    assert not packaged.is_symlink()
    assert packaged.read_bytes() == (ROOT / "nodes" / "fleet.yaml").read_bytes()
    # `nodegen init` from the built package (not this checkout) writes a fleet from that copy.
    ws = tmp_path / "ws"
    env = {**os.environ, "PYTHONPATH": str(lib)}
    made = subprocess.run([sys.executable, "-c", "import nodegen, sys; from nodegen.cli import main; "
                           "print(nodegen.__file__, file=sys.stderr); main()", "init", str(ws), "--project", "acme"],
                          env=env, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stderr.startswith(str(lib)), made.stderr
    fleet = (ws / "nodes" / "fleet.yaml").read_text(encoding="utf-8")
    assert "project: acme" in fleet and "\n  gateway-nginx:\n" in fleet


def test_a_wheel_carries_every_template_compiled(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for rel in ("pyproject.toml", "build_templates.py", "MANIFEST.in", "README.md", "nodes/fleet.yaml"):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, source / rel)
    ignore = shutil.ignore_patterns("__pycache__", "__jinjacache__")
    for rel in ("nodegen", "templates"):
        shutil.copytree(ROOT / rel, source / rel, symlinks=True, ignore=ignore)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
                   check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    compiled = [n for n in names if n.startswith("nodegen/templates/__jinjacache__/") and n.endswith(".cache")]
    assert len(compiled) == len(list((ROOT / "templates").glob("*.j2")))
    assert "build_templates.py" not in names  # the install step is not part of the installed package
