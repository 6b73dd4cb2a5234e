"""nodegen.jsontext writes exactly what json.dumps(obj, ensure_ascii=False, indent=n) writes."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nodegen import jsontext

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.sampled_from([1, 2, 4]))
def test_the_same_text_as_json_dumps(value: Any, indent: int) -> None:
    assert jsontext.dumps(value, indent) == json.dumps(value, ensure_ascii=False, indent=indent)


def test_what_json_writes_its_own_way_is_left_to_it() -> None:
    for value in ({1: "int key"}, [math.nan], {"a": [math.inf, -math.inf]}, {"t": (1, 2)}, {"": {}, "x": []}):
        assert jsontext.dumps(value, 2) == json.dumps(value, ensure_ascii=False, indent=2)
    assert jsontext.dumps({"НОДА": "\u2028\"\\"}, 1) == '{\n "НОДА": "\u2028\\"\\\\"\n}'
