"""Read manifests as YAML 1.2 into plain data plus a map of where every key and value stands.

ruamel.yaml composes the node graph (YAML 1.2 tag resolution, marks on every node); this module
builds the Python values itself so that duplicate keys, alias bombs, custom tags and runaway
nesting become located problems instead of surprises.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nodegen.problems import Problem

MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

Loc = tuple[str | int, ...]
Pos = tuple[int, int]

_T = "tag:yaml.org,2002:"


@dataclass
class Document:
    """A loaded manifest: its data and the 1-based position of every value and key."""

    path: str
    data: Any
    values: dict[Loc, Pos] = field(default_factory=dict)
    keys: dict[Loc, Pos] = field(default_factory=dict)

    def where(self, loc: Loc, *, key: bool = False) -> Pos:
        """Position of the value (or key) at loc, falling back to the nearest enclosing one."""
        table = self.keys if key else self.values
        probe = tuple(loc)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def problem(self, loc: Loc, rule: str, message: str, *, key: bool = False, level: str = "error") -> Problem:
        line, col = self.where(loc, key=key)
        return Problem(self.path, line, col, rule, message, level)  # type: ignore[arg-type]


class _Abort(Exception):
    def __init__(self, node: Node | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def _pos(node: Node) -> Pos:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed node graph into Python values, recording positions."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0

    def build(self, node: Node, loc: Loc, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Abort(node, f"document expands to more than {MAX_NODES} values (alias bomb?)")
        if depth > MAX_DEPTH:
            raise _Abort(node, f"nesting deeper than {MAX_DEPTH} levels")
        self.doc.values.setdefault(loc, _pos(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return _scalar(node)

    def _mapping(self, node: MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _T + "merge":
                raise _Abort(key_node, "merge keys (<<) are not supported; write the keys out")
            if not isinstance(key_node, ScalarNode):
                raise _Abort(key_node, "mapping keys must be plain scalars")
            key = key_node.value
            if key in out:
                first = self.doc.keys[(*loc, key)]
                raise _Abort(key_node, f"duplicate key {key!r} (first defined at line {first[0]})")
            self.doc.keys[(*loc, key)] = _pos(key_node)
            out[key] = self.build(value_node, (*loc, key), depth + 1)
        return out


def _int(text: str) -> int:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    if t[:2] in ("0o", "0O"):
        return sign * int(t[2:], 8)
    if t[:2] in ("0x", "0X"):
        return sign * int(t[2:], 16)
    return sign * int(t, 10)


def _float(text: str) -> float:
    t = text.lower().replace("_", "")
    if t.endswith(".nan"):
        return math.nan
    if t.endswith(".inf"):
        return -math.inf if t.startswith("-") else math.inf
    return float(t)


def _scalar(node: ScalarNode) -> Any:
    tag, text = str(node.tag), node.value
    if tag == _T + "str" or tag == _T + "timestamp":
        return text
    if tag == _T + "null":
        return None
    if tag == _T + "bool":
        return text.lower() == "true"
    try:
        if tag == _T + "int":
            return _int(text)
        if tag == _T + "float":
            return _float(text)
    except ValueError:
        return text
    if tag.startswith("!") or not tag.startswith(_T):
        raise _Abort(node, f"custom tag {tag} is not supported")
    return text


def _decode(raw: bytes, display: str) -> tuple[str | None, Problem | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, Problem(display, line, col, "yaml", f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})")


def read_text(path: Path, display: str) -> tuple[str | None, Problem | None]:
    """The file's text, or one located problem saying why it cannot be read."""
    try:
        if path.is_symlink() or not path.is_file():
            kind = "a symlink" if path.is_symlink() else "missing or not a regular file"
            return None, Problem(display, 1, 1, "file", f"manifest is {kind}")
        size = path.stat().st_size
        if size > MAX_BYTES:
            return None, Problem(display, 1, 1, "file", f"file is {size} bytes; the limit is {MAX_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        return None, Problem(display, 1, 1, "file", f"cannot read file: {exc.strerror}")
    text, problem = _decode(raw, display)
    if text is not None and "\x00" in text:
        return None, Problem(display, 1, 1, "yaml", "file contains NUL bytes (binary?)")
    return text, problem


def parse(text: str, display: str) -> tuple[Document | None, Problem | None]:
    """Parse YAML 1.2 text into a Document, or one located problem."""
    doc = Document(display, None)
    if not text.strip():
        return None, Problem(display, 1, 1, "yaml", "file is empty")
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        node = yaml.compose(io.StringIO(text))
        doc.data = _Builder(doc).build(node, (), 0) if node is not None else None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, Problem(display, line, col, "yaml", _yaml_message(exc))
    except _Abort as exc:
        line, col = _pos(exc.node) if exc.node is not None else (1, 1)
        return None, Problem(display, line, col, "yaml", exc.message)
    except (YAMLError, RecursionError) as exc:
        what = "nesting too deep" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        return None, Problem(display, 1, 1, "yaml", what)
    if doc.data is None:
        return None, Problem(display, 1, 1, "yaml", "file holds no document")
    return doc, None


def _yaml_message(exc: MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    return "; ".join(" ".join(str(p).split()) for p in parts) or "invalid YAML"


def load(path: Path, display: str) -> tuple[Document | None, Problem | None]:
    """Read and parse one manifest file."""
    text, problem = read_text(path, display)
    if text is None:
        return None, problem
    return parse(text, display)
