"""PyYAML, imported with the patterns its Python classes compile at import left to their first use.

PyYAML's pure-Python reader, resolver and constructor compile their regular expressions when
their modules are imported: ~5 ms of every run (more than half of importing PyYAML; the reader's
character class alone is ~3.5 ms). nodegen composes manifests with libyaml, which checks the
characters itself, and types scalars by its own rules (yamlio._Composer, yamlio._scalar), so on the
everyday path those patterns are never used. Here they are compiled when first used instead:
whatever reads or writes YAML through PyYAML's Python classes (nodegen import, review, audit, the
tests) gets exactly the patterns it always had, one call later.

Only `re.compile` calls made by PyYAML's own modules, during this one import, are deferred; if
PyYAML is already imported, or compiles its patterns some other way, nothing changes but the time.
"""

from __future__ import annotations

import re
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["LazyPattern", "import_pyyaml", "pyyaml"]


class LazyPattern:
    """A regular expression compiled on its first use; from then on its attributes are the compiled one's."""

    def __init__(self, pattern: Any, flags: int) -> None:
        self._source = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        compiled = re.compile(*self._source)
        for attr in ("match", "search", "fullmatch", "finditer", "findall", "sub", "subn", "split",
                     "pattern", "flags", "groups", "groupindex"):
            setattr(self, attr, getattr(compiled, attr))  # later uses skip __getattr__
        return getattr(compiled, name)


def _is_pyyaml(module: str) -> bool:
    return module == "yaml" or module.startswith("yaml.")


def import_pyyaml() -> ModuleType:
    if "yaml" in sys.modules:
        return sys.modules["yaml"]
    compile_now = re.compile

    def compile_later(pattern: Any, flags: int = 0) -> Any:
        if _is_pyyaml(sys._getframe(1).f_globals.get("__name__", "")):
            return LazyPattern(pattern, flags)
        return compile_now(pattern, flags)

    setattr(re, "compile", compile_later)  # noqa: B010  (mypy refuses a plain assignment to a function)
    try:
        import yaml
    finally:
        setattr(re, "compile", compile_now)  # noqa: B010
    return yaml


if TYPE_CHECKING:
    import yaml as pyyaml
else:
    pyyaml = import_pyyaml()
