"""The JSON Schema of the manifest format, generated from the models (for editors and review)."""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from nodegen.load.wire import Fleet, Node

SCHEMA_PATH = "schema/nodegen.schema.json"


def json_schema() -> dict[str, Any]:
    _, defs = models_json_schema([(Fleet, "validation"), (Node, "validation")], ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "nodegen manifest (nodes/fleet.yaml or nodes/<node>.yaml)",
        "anyOf": [{"$ref": "#/$defs/Fleet"}, {"$ref": "#/$defs/Node"}],
        "$defs": defs["$defs"],
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
