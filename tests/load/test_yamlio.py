"""nodegen.load.yamlio: the plain composer (libyaml's parser without PyYAML's YAML 1.1 resolver)."""

from __future__ import annotations

import datetime

import pytest
import yaml

from nodegen.load import yamlio


@pytest.mark.skipif(not yamlio.LIBYAML, reason="the plain composer is libyaml's")
@pytest.mark.parametrize("text", ["a: yes\nb: 0o17\nc: 1_000\nd: '1'\ne: !!str 12\nf: [1, on, ~]\ng: 2001-12-14\n",
                                  "? [a]\n: 1\n", "x: &a [1]\ny: *a\n", "<<: {a: 1}\n", "a: !custom 1\n"])
def test_the_plain_composer_builds_what_pyyamls_resolver_did(text: str) -> None:
    """yamlio types plain scalars itself: PyYAML's resolver deciding tags first changed nothing it returns."""

    def parsed(loader: type) -> object:
        original = yamlio._Composer
        yamlio._Composer = loader  # type: ignore[misc]
        try:
            doc, problem = yamlio.parse(text, "t.yaml")
        finally:
            yamlio._Composer = original  # type: ignore[misc]
        return (doc.data, doc.values, doc.keys) if doc is not None else problem

    assert parsed(yamlio._Composer) == parsed(yaml.CSafeLoader)


def test_plain_scalars_follow_the_core_schema_not_yaml_1_1() -> None:
    doc, problem = yamlio.parse("a: yes\nb: on\nc: 0o17\nd: 2001-12-14\ne: true\n", "t.yaml")
    assert problem is None and doc is not None
    assert doc.data == {"a": "yes", "b": "on", "c": 15, "d": "2001-12-14", "e": True}
    assert not isinstance(doc.data["d"], datetime.date)
