"""Read manifests as YAML 1.2 into plain data plus a map of where every key and value stands.

A YAML library only composes the node graph (marks on every node): libyaml through PyYAML's C
parser when available, ruamel.yaml's pure-Python parser otherwise. This module resolves plain
scalars by the YAML 1.2 core schema itself (so `22:22` and `NO` stay strings whichever parser ran)
and builds the Python values, so that duplicate keys, alias bombs, custom tags and runaway nesting
become located problems instead of surprises.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodegen.lazyimport import import_package
from nodegen.problems import Problem

if TYPE_CHECKING:
    import yaml as pyyaml
else:  # its reader's and resolver's patterns are never used here (see _Composer): compiled if ever used
    pyyaml = import_package("yaml")

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


Node = Any  # a composed node of either library: .id, .tag, .value, .start_mark (and .style on scalars)


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
        if node.id == "mapping":
            return self._mapping(node, loc, depth)
        if node.id == "sequence":
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        return _scalar(node)

    def _mapping(self, node: Node, loc: Loc, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.id != "scalar":
                raise _Abort(key_node, "mapping keys must be plain scalars")
            if key_node.value == "<<" and not key_node.style:
                raise _Abort(key_node, "merge keys (<<) are not supported; write the keys out")
            key = key_node.value
            if key in out:
                first = self.doc.keys[(*loc, key)]
                raise _Abort(key_node, f"duplicate key {key!r} (first defined at line {first[0]})")
            self.doc.keys[(*loc, key)] = _pos(key_node)
            out[key] = self.build(value_node, (*loc, key), depth + 1)
        return out


def _int(text: str) -> int:
    t = text
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    if t[:2] in ("0o", "0O"):
        return sign * int(t[2:], 8)
    if t[:2] in ("0x", "0X"):
        return sign * int(t[2:], 16)
    return sign * int(t, 10)


def _float(text: str) -> float:
    t = text.lower()
    if t.endswith(".nan"):
        return math.nan
    if t.endswith(".inf"):
        return -math.inf if t.startswith("-") else math.inf
    return float(t)


# The YAML 1.2 core schema, applied to plain scalars only.
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_STANDARD_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null", "timestamp", "value", "merge")}


def _scalar(node: Node) -> Any:
    tag, text = str(node.tag), str(node.value)
    if tag not in _STANDARD_TAGS and tag != "?" and tag != "!":
        raise _Abort(node, f"custom tag {tag} is not supported")
    if node.style or tag == "!":
        return text  # quoted and block scalars are strings (plain style is None or "")
    # Plain scalars: whatever the parser's own (1.1) resolver said, the 1.2 core schema decides.
    return _core_value(text)


def _core_value(text: str) -> Any:
    if _NULL.fullmatch(text):
        return None
    if _BOOL.fullmatch(text):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return _int(text)
    if _FLOAT.fullmatch(text):
        return _float(text)
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
    overflow = _flow_overflow(text)
    if overflow is not None:
        line = text.count("\n", 0, overflow) + 1
        col = overflow - (text.rfind("\n", 0, overflow) + 1) + 1
        return None, Problem(display, line, col, "yaml", f"nesting deeper than {MAX_DEPTH} levels")
    try:
        node = compose(text)
        doc.data = _Builder(doc).build(node, (), 0) if node is not None else None
    except _marked_errors() as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, Problem(display, line, col, "yaml", _yaml_message(exc))
    except _Abort as exc:
        line, col = _pos(exc.node) if exc.node is not None else (1, 1)
        return None, Problem(display, line, col, "yaml", exc.message)
    except _yaml_errors() as exc:
        what = "nesting too deep" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        return None, Problem(display, 1, 1, "yaml", what)
    if doc.data is None:
        return None, Problem(display, 1, 1, "yaml", "file holds no document")
    return doc, None


_BRACKETS = re.compile(r"[\[\]{}]")
# libyaml's composer recurses in C: tens of thousands of nested brackets crash the process
# instead of raising, so absurd flow nesting is refused before any parser sees it.
MAX_FLOW_BRACKETS = 5000


def _flow_overflow(text: str) -> int | None:
    """Offset of the first bracket nested deeper than MAX_FLOW_BRACKETS (quotes ignored: conservative)."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_FLOW_BRACKETS:
            return match.start()
    return None


def compose(text: str) -> Node | None:
    """The node graph of one YAML document: libyaml (C) when PyYAML has it, else ruamel.yaml."""
    if LIBYAML:
        return pyyaml.compose(text, Loader=_Composer)
    from ruamel.yaml import YAML  # only without libyaml: importing it costs start-up time

    parser = YAML(typ="safe", pure=True)
    parser.version = (1, 2)
    return parser.compose(io.StringIO(text))


LIBYAML = bool(getattr(pyyaml, "__with_libyaml__", False))

if LIBYAML:
    _UNTAGGED = {pyyaml.ScalarNode: _T + "str", pyyaml.SequenceNode: _T + "seq", pyyaml.MappingNode: _T + "map"}

    class _Composer(pyyaml.cyaml.CParser):  # type: ignore[misc,name-defined]  # C classes: no stubs
        """libyaml's parser and composer, with the plainest resolver: a node without a tag is a str, seq or map.

        PyYAML's own (YAML 1.1) resolver matches every plain scalar against its patterns, and _scalar
        then ignores what it decided: the 1.2 core schema (_core_value) types plain scalars.
        """

        def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
            return _UNTAGGED[kind]

        def descend_resolver(self, parent: Node, index: object) -> None:  # no path resolvers to follow
            pass

        def ascend_resolver(self) -> None:
            pass


def _marked_errors() -> tuple[type[Exception], ...]:
    if LIBYAML:
        return (pyyaml.MarkedYAMLError,)
    from ruamel.yaml.error import MarkedYAMLError

    return (MarkedYAMLError, pyyaml.MarkedYAMLError)


def _yaml_errors() -> tuple[type[BaseException], ...]:
    if LIBYAML:
        return (pyyaml.YAMLError, RecursionError)
    from ruamel.yaml.error import YAMLError

    return (YAMLError, pyyaml.YAMLError, RecursionError)


def _yaml_message(exc: Any) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    return "; ".join(" ".join(str(p).split()) for p in parts) or "invalid YAML"


def load(path: Path, display: str) -> tuple[Document | None, Problem | None]:
    """Read and parse one manifest file."""
    text, problem = read_text(path, display)
    if text is None:
        return None, problem
    return parse(text, display)
