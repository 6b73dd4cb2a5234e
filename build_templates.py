"""Install-time step: compile nodegen's templates into the package, so a workspace's first render is fast."""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPy(build_py):
    """build_py that also compiles the templates: into the wheel, or beside the checkout's templates
    when the install is editable (there the templates are the checkout's own)."""

    def run(self) -> None:
        super().run()
        source = ROOT / self.distribution.package_dir["nodegen.templates"]
        target = source if self.editable_mode else Path(self.build_lib, "nodegen", "templates")
        compile_templates(source, target)


def compile_templates(source: Path, target: Path) -> None:
    """Compile every template of source into target/__jinjacache__ (nodegen.templating decides the layout)."""
    sys.path.insert(0, str(ROOT))
    try:
        from nodegen import templating
    finally:
        sys.path.remove(str(ROOT))
    templating.compile_all(source, target / templating.COMPILED_FOLDER)
