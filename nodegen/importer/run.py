"""One import: read the sources, map them, check the result with the project's own rules, write or refuse."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nodegen.errors import ProblemsFound
from nodegen.importer.compose import ComposeMap, map_compose
from nodegen.importer.draft import FLEET, NODE, Draft
from nodegen.importer.report import Gap, Where, lossy
from nodegen.importer.sources import ComposeSource, ImportFailed, load_yaml, read_compose, read_text
from nodegen.load.yamlio import Document, Loc, parse
from nodegen.problems import Problem
from nodegen.record import record
from nodegen.standard import SECRET_NAME, secret_kind
from nodegen.workspace import Workspace

PLACEHOLDER_DOMAIN = "example.org"
MET = "(the generated stack meets it)"
# Compose rules that nodegen's rendering meets by construction: reported for the source, nothing to fix.
RENDERED = frozenset({"compose-version", "restart-policy", "log-rotation", "labels", "gateway-tls", "name-format",
                      "public-port", "secret-literal"})
ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


@record
class Options:
    """The command line of `nodegen import`."""

    compose: Path
    node: str
    out: Path
    nginx: tuple[Path, ...] = ()
    prometheus: Path | None = None
    env_example: Path | None = None
    project: str | None = None
    allow_lossy: bool = False


@dataclass
class Result:
    """The report, the files (relative to --out) and whether they were written."""

    gaps: list[Gap]
    files: dict[str, str] = field(default_factory=dict)
    written: bool = False

    @property
    def lossy(self) -> bool:
        return bool(lossy(self.gaps))

    @property
    def violations(self) -> int:
        """Violations left to fix: the generated stack does not meet these by itself."""
        return sum(g.kind == "violation" and MET[:-1] not in g.message for g in self.gaps)


def display(path: Path) -> str:
    return path.as_posix()


def run(opts: Options) -> Result:
    """Import, check and (unless lossy without --allow-lossy) write; raises only for unreadable sources."""
    draft = Draft()
    src = read_compose(opts.compose, display(opts.compose), opts.project)
    nginx_files = _read_nginx(opts.nginx)
    from nodegen.importer.nginx import map_nginx, port_hints

    compose = map_compose(draft, src, port_hints(nginx_files))
    map_nginx(draft, compose, nginx_files)
    if opts.prometheus is not None:
        from nodegen.importer.prometheus import map_prometheus

        map_prometheus(draft, compose, load_yaml(opts.prometheus, display(opts.prometheus)))
    if opts.env_example is not None:
        _env_example(draft, opts.env_example)
    assumed = _frame(draft, opts, compose)
    files = _texts(draft, opts.node)
    checked = _violations(draft, files, opts.node)
    seen = {(g.path, g.line, g.col, g.key) for g in checked}
    source = [g for g in _source_violations(src, compose) if (g.path, g.line, g.col, g.key) not in seen]
    result = Result(sorted({*draft.gaps, *source, *checked, *_assumed(files, assumed, opts.node)}), files)
    if not result.lossy or opts.allow_lossy:
        _write(opts.out, files)
        result.written = True
    return result


def _read_nginx(paths: tuple[Path, ...]) -> list[Any]:
    if not paths:
        return []
    from nodegen.importer.nginx import parse

    files, problems = [], []
    for path in paths:
        directives, errors = parse(path, display(path))
        files.append(directives)
        problems.extend(errors)
    if problems:
        raise ProblemsFound(problems)
    return files


# --- the frame: what no source says, chosen and reported ----------------------------------------------------

def _frame(draft: Draft, opts: Options, compose: ComposeMap) -> list[tuple[str, Loc, str]]:
    """Fill the keys the sources do not give; (file, loc, why) of each value chosen here."""
    assumed: list[tuple[str, Loc, str]] = []

    def choose(file: str, loc: Loc, value: Any, why: str) -> None:
        if draft.get(file, loc) is None:
            draft.put(file, loc, value, None)
            assumed.append((file, loc, why))

    domain = draft.get(NODE, ("domain",))
    fleet_domain = domain.split(".", 1)[1] if isinstance(domain, str) and domain.count(".") >= 2 else domain
    choose(FLEET, ("project",), compose.project, "the project prefix of the container names")
    choose(FLEET, ("domain",), fleet_domain or PLACEHOLDER_DOMAIN, "the fleet's domain")
    choose(NODE, ("node",), opts.node, "from --node")
    choose(NODE, ("name",), opts.node.upper(), "display name")
    choose(NODE, ("role",), "production", "production, dev or federation")
    choose(NODE, ("uptime",), "24/7", "24/7 or on-demand")
    choose(NODE, ("domain",), f"{opts.node}.{PLACEHOLDER_DOMAIN}", "no server_name gave the node's domain")
    choose(NODE, ("address",), "10.0.0.1", "the node's private address")
    publish = draft.node.pop("publish", {})
    _reorder(draft, publish)
    return [a for a in assumed if a[1] != ("node",)]


def _reorder(draft: Draft, publish: dict[str, str]) -> None:
    """The node manifest in the documented key order; loopback binds as placement overrides."""
    order = ("node", "name", "role", "uptime", "domain", "address", "services", "adopt_volumes")
    draft.node = {k: draft.node[k] for k in order if k in draft.node}
    services = draft.node.get("services", [])
    for i, name in enumerate(services):
        if name in publish:
            services[i] = {name: {"publish": [publish[name]]}}
    draft.fleet = {"project": draft.fleet.pop("project"), "domain": draft.fleet.pop("domain"), **draft.fleet}


def _assumed(files: dict[str, str], assumed: list[tuple[str, Loc, str]], node: str) -> list[Gap]:
    docs = _parsed(files, node)
    gaps = []
    for file, loc, why in assumed:
        doc = docs[file]
        line, col = doc.where(loc)
        gaps.append(Gap(doc.path, line, col, "needs-review", ".".join(map(str, loc)),
                        f"chosen by the import ({why}): check it"))
    return gaps


# --- the .env example ------------------------------------------------------------------------------------

def _env_example(draft: Draft, path: Path) -> None:
    names = {var for svc in draft.fleet.get("services", {}).values() for var in svc.get("env", {})}
    shown = display(path)
    for number, text in enumerate(read_text(path).splitlines(), 1):
        match = ENV_LINE.match(text)
        if match is None:
            continue
        var, value = match[1], match[2].strip().strip("'\"")
        spot = Where(shown, number, 1)
        what = secret_kind(value)
        if what is not None or (SECRET_NAME.search(var) and value and not _placeholder(value)):
            draft.gap(spot, "secret", var, f"holds {what or 'a secret value'}: not copied (names only)")
        if var in names:
            draft.gap(spot, "mapped", var, "a variable a service reads from .env (name only)")
        else:
            draft.gap(spot, "dropped", var, "no imported service reads it")


def _placeholder(value: str) -> bool:
    return value.upper().startswith(("CHANGE", "YOUR_", "<", "XXX")) or value in ("changeme", "...")


# --- violations: the compose rules on the source, the manifest rules on the result --------------------------

def _source_violations(src: ComposeSource, compose: ComposeMap) -> list[Gap]:
    from nodegen.rules.compose import Compose, audit_compose

    problems = audit_compose(Compose(src.doc, compose.project))
    return [Gap(p.path, p.line, p.col, "violation", p.rule, f"{p.message} {_met(src, p)}".rstrip())
            for p in problems]


def _met(src: ComposeSource, p: Problem) -> str:
    """How the generated stack meets a rule the source breaks, or "" when the fix is the team's."""
    if p.rule in RENDERED:
        return MET
    service = next((s for s in src.services() if src.doc.where(("services", s), key=True) == (p.line, p.col)), None)
    if p.rule == "health-endpoint" and service and src.normalised(service).get("build"):
        return f"{MET[:-1]}: it probes GET /health, which the service must answer)"
    return ""


def _texts(draft: Draft, node: str) -> dict[str, str]:
    head = "# Written by `nodegen import`; every key is explained in its gap report (docs/import.md).\n"
    return {"nodes/fleet.yaml": head + _dump(draft.fleet), f"nodes/{node}.yaml": head + _dump(draft.node)}


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)


def _parsed(files: dict[str, str], node: str) -> dict[str, Document]:
    docs = {}
    for file, rel in ((FLEET, "nodes/fleet.yaml"), (NODE, f"nodes/{node}.yaml")):
        doc, _ = parse(files[rel], rel)
        assert doc is not None  # safe_dump wrote it
        docs[file] = doc
    return docs


def _violations(draft: Draft, files: dict[str, str], node: str) -> list[Gap]:
    """The project's own validation on the imported manifests, each problem moved back to its source."""
    docs = _parsed(files, node)
    return [_back(draft, docs, p) for p in validate_files(files)]


def validate_files(files: dict[str, str]) -> list[Problem]:
    from nodegen.pipeline import load_fleet

    with tempfile.TemporaryDirectory(prefix="nodegen-import-") as tmp:
        for rel, text in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(text, encoding="utf-8")
        try:
            return load_fleet(Workspace(Path(tmp))).warnings
        except ProblemsFound as exc:
            return exc.problems


def _back(draft: Draft, docs: dict[str, Document], p: Problem) -> Gap:
    file = FLEET if p.path == "nodes/fleet.yaml" else NODE
    loc = _loc_at(docs[file], p.line, p.col)
    origin = draft.origin(file, loc) if loc is not None else None
    if origin is None:
        return Gap(p.path, p.line, p.col, "violation", p.rule, p.message)
    return Gap.at(origin, "violation", p.rule, f"{p.message} (imported as {p.path}:{p.line}:{p.col})")


def _loc_at(doc: Document, line: int, col: int) -> Loc | None:
    """The deepest key or value that stands at line:col of a generated manifest."""
    found = [loc for table in (doc.values, doc.keys) for loc, pos in table.items() if pos == (line, col)]
    return max(found, key=len) if found else None


# --- writing ----------------------------------------------------------------------------------------------

def _write(out: Path, files: dict[str, str]) -> None:
    taken = sorted(rel for rel in files if (out / rel).exists())
    if taken:
        raise ImportFailed(f"nodegen import: {out}: already has {', '.join(taken)}; nothing written "
                           "(import into a fresh folder)")
    try:
        for rel, text in sorted(files.items()):
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError as exc:
        raise ImportFailed(f"nodegen import: {exc.filename or out}: {exc.strerror or exc}") from None
