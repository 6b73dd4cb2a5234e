"""nodegen.load.yamllib: PyYAML imported with its patterns compiled on first use."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from nodegen.load.yamllib import LazyPattern


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    """code run in a new interpreter, where nothing has imported PyYAML yet."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_pyyaml_imported_through_yamlio_compiles_its_patterns_only_when_used() -> None:
    proc = _fresh("""
        import re
        compile_before = re.compile
        import nodegen.load.yamlio
        import yaml
        from nodegen.load.yamllib import LazyPattern
        assert re.compile is compile_before, "re.compile not restored"
        assert isinstance(yaml.reader.Reader.NON_PRINTABLE, LazyPattern)
        assert isinstance(yaml.constructor.SafeConstructor.timestamp_regexp, LazyPattern)
        assert isinstance(re.compile("x"), re.Pattern)  # everyone else's patterns are compiled at once
        # PyYAML's own Python classes still read and type YAML 1.1 as they always did:
        assert yaml.safe_load("a: yes\\nb: 0x1f\\nc: ~\\nd: 1.5") == {"a": True, "b": 31, "c": None, "d": 1.5}
        assert str(yaml.safe_load("t: 2001-12-14")["t"]) == "2001-12-14"
        try:
            yaml.load("a: \\x07", Loader=yaml.SafeLoader)
        except yaml.reader.ReaderError as exc:
            assert "special characters are not allowed" in str(exc)
        else:
            raise AssertionError("a control character was read")
        assert yaml.safe_dump({"k": "yes"}) == "k: 'yes'\\n"  # the resolver quotes what would read as a bool
        print("ok")
    """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")


def test_pyyaml_imported_first_is_left_as_it_is() -> None:
    proc = _fresh("""
        import re, yaml
        import nodegen.load.yamlio
        assert isinstance(yaml.reader.Reader.NON_PRINTABLE, re.Pattern)
        print("ok")
    """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")


def test_a_lazy_pattern_is_the_compiled_pattern_once_used() -> None:
    lazy = LazyPattern(r"(a+)(b)?", re.I)
    match = lazy.match("AAb")
    assert match is not None and match.groups() == ("AA", "b")
    assert "search" in vars(lazy)  # bound on the instance: later calls skip __getattr__
    assert (lazy.pattern, lazy.flags & re.I, lazy.groups) == (r"(a+)(b)?", re.I, 2)
    assert lazy.sub("-", "xaay") == "x-y"
    with pytest.raises(AttributeError):
        _ = lazy.no_such_attribute
