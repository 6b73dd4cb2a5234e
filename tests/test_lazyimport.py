"""nodegen.lazyimport: PyYAML and Jinja imported with their patterns compiled on first use."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from nodegen.lazyimport import LazyPattern


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
        from nodegen.lazyimport import LazyPattern
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


JINJA_USES = """
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # no cache: lexed and compiled here
    tpl = env.from_string("{% for x in xs %}{{ x|upper }} {{ loop.index }}\\n{% endfor %}{{ 'a b c'|wordcount }}"
                          "{{ {'k': 'v'}|xmlattr }} {{ 'see https://example.org'|urlize }}")
    print(repr(tpl.render(xs=["é", "b"])), type(jinja2.lexer.whitespace_re).__name__,
          type(jinja2._identifier.pattern).__name__, type(jinja2.utils._http_re).__name__)
"""


def test_jinja_imported_through_templating_lexes_and_filters_as_jinja_imported_plainly() -> None:
    plain = _fresh("import jinja2\nimport nodegen.templating\n" + textwrap.dedent(JINJA_USES))
    lazy = _fresh("import nodegen.templating\nimport jinja2\n" + textwrap.dedent(JINJA_USES))
    assert (plain.returncode, plain.stderr, lazy.returncode, lazy.stderr) == (0, "", 0, "")
    rendered, *kinds = lazy.stdout.rsplit(" ", 3)
    assert kinds == ["LazyPattern", "LazyPattern", "LazyPattern\n"]  # compiled once the lexer and urlize ran
    assert plain.stdout.rsplit(" ", 3)[1:] == ["Pattern", "Pattern", "Pattern\n"]
    assert rendered == plain.stdout.rsplit(" ", 3)[0]
    assert "É 1\\nB 2\\n3" in rendered and 'href="https://example.org"' in rendered


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
