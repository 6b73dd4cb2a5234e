"""Third-party packages imported with the regular expressions their modules compile at import
deferred to each pattern's first use.

PyYAML and Jinja compile patterns when their modules are imported that nodegen's everyday path
never uses: PyYAML's pure-Python reader, resolver and constructor (~5 ms of every run, more than
half of importing PyYAML; nodegen composes with libyaml and types scalars itself, load.yamlio), and
Jinja's lexer, identifier and filter patterns (~2 ms; nodegen renders templates compiled at install
time, templating). Imported through `import_package`, those patterns are compiled when first used
instead: code that does use them (a template compiled afresh, PyYAML's Python reader in nodegen
import, review and audit, the tests) gets exactly the patterns it always had, one call later.

Only `re.compile` calls made by the named packages' own modules, during that one import, are
deferred. A package already imported, or one that compiles its patterns some other way, is simply
imported: nothing changes but the time.
"""

from __future__ import annotations

import importlib
import re
import sys
from types import ModuleType
from typing import Any

__all__ = ["LazyPattern", "import_package"]


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


def import_package(name: str, *also: str) -> ModuleType:
    """Import package `name`, deferring the patterns compiled meanwhile by its modules and those of `also`."""
    if name in sys.modules:
        return sys.modules[name]
    owners = (name, *also)
    compile_now = re.compile

    def compile_later(pattern: Any, flags: int = 0) -> Any:
        if sys._getframe(1).f_globals.get("__name__", "").partition(".")[0] in owners:
            return LazyPattern(pattern, flags)
        return compile_now(pattern, flags)

    setattr(re, "compile", compile_later)  # noqa: B010  (mypy refuses a plain assignment to a function)
    try:
        return importlib.import_module(name)
    finally:
        setattr(re, "compile", compile_now)  # noqa: B010
