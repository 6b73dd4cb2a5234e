"""Faults: `nodegen render` killed at random moments, and hostile inputs, never leave a broken output/.

- SIGKILL at a random moment of `nodegen render --all` (often inside the write phase): every
  output/<node> is afterwards exactly the complete previous render or the complete new one; only a
  staging folder or temporary file may be left, and the next run succeeds and removes it.
- Hostile inputs (alias bomb, 50 MB file, 10,000 services, nesting 1,000 deep, binary junk, symlinks
  out of the workspace) stop with a located error in bounded CPU time and memory (resource limits
  and rusage, no wall-clock asserts), and nothing is written outside output/.

NODEGEN_LONG=1 runs 150 kill trials instead of 10.
"""

from __future__ import annotations

import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import nodegen
from nodegen import templating
from nodegen.output import STAGING_PREFIX
from tests.conftest import ROOT

LONG = os.environ.get("NODEGEN_LONG", "") not in ("", "0")
KILL_TRIALS = 150 if LONG else 10
SEED = int(os.environ.get("NODEGEN_FAULT_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
TMP_SUFFIX = ".nodegen-tmp"
Tree = dict[str, tuple[bytes, int]]


def nodegen_cmd(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nodegen", "-C", str(ws), *args]


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose `python -m nodegen` is a copy of the code taken now, templates included:
    edits to the tree while the trials run cannot make snapshots and killed renders disagree."""
    root = tmp_path_factory.mktemp("frozen")
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(Path(nodegen.__file__).parent, root / "nodegen", ignore=skip)
    if not (root / "nodegen" / "templates").is_dir():  # an editable install maps templates/ from elsewhere
        shutil.copytree(templating.templates_root(), root / "nodegen" / "templates", ignore=skip)
    return {**os.environ, "PYTHONPATH": str(root)}


def tree(folder: Path) -> Tree:
    """Every entry below folder: relative path -> (bytes, permission bits); symlinks and folders included."""
    out: Tree = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = (os.readlink(path).encode(), -1)
        elif path.is_file():
            out[rel] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return out


def render_ok(ws: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(nodegen_cmd(ws, "render", "--all"), capture_output=True, text=True, timeout=120,
                          check=False, env=env)
    assert proc.returncode == 0, proc.stderr


# --- SIGKILL at random moments -----------------------------------------------------------------

def version_b(nodes: Path) -> None:
    """A second version of the shipped fleet that changes files of every node (and keeps others)."""
    fleet = nodes / "fleet.yaml"
    text = fleet.read_text(encoding="utf-8")
    changed = re.sub(r"burst: 20\b", "burst: 25", text, count=1)
    changed = re.sub(r"interval: 30s\b", "interval: 31s", changed, count=1)
    assert changed != text, "the shipped fleet no longer has the values this test changes"
    fleet.write_text(changed, encoding="utf-8")


@dataclass
class Snapshots:
    """The complete output/ of each manifest version, per node folder and for the fleet-wide files."""

    nodes: dict[str, dict[str, Tree]]  # version -> node -> tree
    root: dict[str, dict[str, tuple[bytes, int]]]  # version -> file directly in output/ -> content

    def check(self, out: Path, old: str, new: str) -> list[str]:
        """What is wrong with out after an interrupted render from version old to version new."""
        wrong: list[str] = []
        for node in sorted(self.nodes[old]):
            folder = tree(out / node) if (out / node).is_dir() else {}
            if folder not in (self.nodes[old][node], self.nodes[new][node]):
                wrong.append(f"output/{node} is neither the complete {old} render nor the complete {new} one: "
                             + _difference(folder, self.nodes[new][node]))
        for entry in sorted(out.iterdir()):
            name = entry.name
            if entry.is_dir() and not entry.is_symlink() and (name in self.nodes[old] or is_staging(name)):
                continue
            if name.endswith(TMP_SUFFIX):
                continue  # a fleet-wide file's temporary twin, removed by the next run
            content = (entry.read_bytes(), entry.stat().st_mode & 0o777) if entry.is_file() else None
            if content not in (self.root[old].get(name), self.root[new].get(name)) or content is None:
                wrong.append(f"output/{name}: neither version's fleet-wide file")
        return wrong


def _difference(have: Tree, want: Tree) -> str:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    different = sorted(r for r in set(have) & set(want) if have[r] != want[r])
    return f"missing {missing[:3]}, extra {extra[:3]}, different {different[:3]}"


def is_staging(name: str) -> bool:
    return name.startswith(STAGING_PREFIX)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(STAGING_PREFIX) or p.name.endswith(TMP_SUFFIX))


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory, frozen: dict[str, str]) -> tuple[dict[str, Path], Snapshots]:
    """Manifests of versions a and b, and what a complete render of each writes."""
    sources: dict[str, Path] = {}
    snaps = Snapshots({}, {})
    for version in ("a", "b"):
        ws = tmp_path_factory.mktemp(f"version-{version}")
        shutil.copytree(ROOT / "nodes", ws / "nodes")
        if version == "b":
            version_b(ws / "nodes")
        render_ok(ws, frozen)
        out = ws / "output"
        snaps.nodes[version] = {p.name: tree(p) for p in out.iterdir() if p.is_dir()}
        snaps.root[version] = {p.name: (p.read_bytes(), p.stat().st_mode & 0o777) for p in out.iterdir() if p.is_file()}
        sources[version] = ws / "nodes"
    for node, files in snaps.nodes["a"].items():
        assert files != snaps.nodes["b"][node], f"version b must change {node}'s files"
    return sources, snaps


class Killer:
    """Starts a render and SIGKILLs it at a random moment; most moments fall inside the write phase."""

    def __init__(self, ws: Path, rng: random.Random, full_run: float, env: dict[str, str]) -> None:
        self.ws = ws
        self.env = env
        self.rng = rng
        self.full_run = full_run

    def _staging_seen(self, proc: subprocess.Popen[bytes]) -> bool:
        """Poll (bounded) until a staging folder appears, i.e. the write phase has started."""
        out = self.ws / "output"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            with os.scandir(out) as entries:
                if any(e.name.startswith(STAGING_PREFIX) for e in entries):
                    return True
        return False

    def _folders(self) -> dict[str, tuple[int, int]]:
        """(inode, mtime) of every node folder and subfolder: a swap or a file replaced in place shows here."""
        out = self.ws / "output"
        stats: dict[str, tuple[int, int]] = {}
        for root, dirs, _ in os.walk(out):
            dirs[:] = [d for d in dirs if not is_staging(d)]
            if root != str(out):
                st = os.stat(root)
                stats[root] = (st.st_ino, st.st_mtime_ns)
        return stats

    def _first_change_seen(self, proc: subprocess.Popen[bytes]) -> bool:
        """Poll (bounded) until output/ starts to change: the first moment a non-atomic writer shows."""
        before = self._folders()
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if self._folders() != before:
                return True
        return False

    def run(self) -> bool:
        """One killed render; True if the kill landed before the process finished by itself."""
        proc = subprocess.Popen(nodegen_cmd(self.ws, "render", "--all"), env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            moment = self.rng.random()
            if moment < 0.4 and self._first_change_seen(proc):
                pass  # kill right after the first visible change
            elif moment < 0.7 and self._staging_seen(proc):
                time.sleep(self.rng.uniform(0, 0.15))
            else:
                time.sleep(self.rng.uniform(0, self.full_run * 0.9))
            proc.send_signal(signal.SIGKILL)
            return proc.wait(timeout=60) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)


def swap_manifests(ws: Path, source: Path) -> None:
    for path in source.iterdir():
        shutil.copy2(path, ws / "nodes" / path.name)


def test_sigkill_leaves_old_or_new_and_the_next_run_recovers(
    tmp_path: Path, versions: tuple[dict[str, Path], Snapshots], frozen: dict[str, str]
) -> None:
    sources, snaps = versions
    ws = tmp_path / "ws"
    shutil.copytree(sources["a"], ws / "nodes")
    render_ok(ws, frozen)  # the first run also fills the template cache: a later run is faster
    swap_manifests(ws, sources["b"])
    started = time.monotonic()
    render_ok(ws, frozen)
    full_run = time.monotonic() - started  # only sizes the random delays; nothing asserts on it
    swap_manifests(ws, sources["a"])
    render_ok(ws, frozen)
    rng = random.Random(SEED)
    killer = Killer(ws, rng, full_run, frozen)
    current, killed, interrupted_writes = "a", 0, 0
    for trial in range(KILL_TRIALS):
        new = "b" if current == "a" else "a"
        swap_manifests(ws, sources[new])
        for _ in range(rng.choice([1, 1, 2])):  # sometimes a second kill on top of the first's leftovers
            killed += killer.run()
            wrong = snaps.check(ws / "output", current, new)
            assert not wrong, f"trial {trial} (NODEGEN_FAULT_SEED={SEED}):\n" + "\n".join(wrong)
            states = {n: "new" if tree(ws / "output" / n) == snaps.nodes[new][n] else "old" for n in snaps.nodes[new]}
            interrupted_writes += bool(leftovers(ws / "output")) or len(set(states.values())) > 1
        render_ok(ws, frozen)
        assert not leftovers(ws / "output"), f"trial {trial}: the next run left {leftovers(ws / 'output')}"
        assert snaps.check(ws / "output", new, new) == []
        current = new
    # The kills must have hit running renders, and some of them the write phase itself.
    assert killed >= KILL_TRIALS // 2, f"only {killed} of {KILL_TRIALS} kills hit a running render"
    assert interrupted_writes >= 1, f"no kill landed inside a write (NODEGEN_FAULT_SEED={SEED})"


# --- hostile inputs ----------------------------------------------------------------------------

# RLIMIT_CPU: the kernel stops a runaway parse. The 10,000-service fleet costs about 15 s of CPU on an idle
# 2-core machine and 57 s was seen while the parallel suite's engine queues loaded it.
CPU_SECONDS = 120
ADDRESS_SPACE = 2 * 1024**3  # RLIMIT_AS: the kernel refuses memory beyond this
MAX_RSS_KB = 400 * 1024  # what a hostile input may cost, measured by rusage
LOCATED = re.compile(r"^(?P<path>[^:\n]+):(?P<line>[1-9][0-9]*):(?P<col>[1-9][0-9]*): error\[(?P<rule>[a-z-]+)\] .+$",
                     re.M)


@dataclass
class Limited:
    code: int
    stdout: str
    stderr: str
    max_rss_kb: int
    cpu_seconds: float


def run_limited(cmd: list[str]) -> Limited:
    """Run cmd under CPU and memory limits; its own rusage, not the test's clock, says what it cost."""
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 5))
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=limits)
        deadline = time.monotonic() + 5 * CPU_SECONDS  # a hang without CPU use (it should never wait)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                pytest.fail(f"{cmd}: still running after {5 * CPU_SECONDS}s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Limited(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                       usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


def alias_bomb(ws: Path) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    (ws / "nodes" / "fleet.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "nodes/fleet.yaml"


def fifty_megabytes(ws: Path) -> str:
    with open(ws / "nodes" / "node2.yaml", "ab") as handle:
        chunk = b"# " + b"x" * 1022 + b"\n"
        for _ in range(50 * 1024):
            handle.write(chunk)
    return "nodes/node2.yaml"


def ten_thousand_services(ws: Path) -> str:
    lines = ["project: daarion", "domain: daarion.city", "services:"]
    lines += [f"  s{i:05d}: {{class: mvp, port: {7000 + i % 1000}, build: services/s{i:05d}, route: r{i}}}"
              for i in range(10_000)]
    (ws / "nodes" / "fleet.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    node = (ws / "nodes" / "node1.yaml").read_text(encoding="utf-8")
    runs = "".join(f"  - s{i:05d}\n" for i in range(10_000))
    (ws / "nodes" / "node1.yaml").write_text(node.replace("services:\n", "services:\n" + runs, 1), encoding="utf-8")
    return "nodes/"


def nested_1000_deep(ws: Path) -> str:
    text = "project: daarion\ndomain: daarion.city\nservices:\n"
    text += "".join("  " * (i + 1) + f"k{i}:\n" for i in range(1000)) + "  " * 1001 + "leaf\n"
    (ws / "nodes" / "fleet.yaml").write_text(text, encoding="utf-8")
    return "nodes/fleet.yaml"


def nested_flow_1000_deep(ws: Path) -> str:
    (ws / "nodes" / "node3.yaml").write_text("node: " + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")
    return "nodes/node3.yaml"


def binary_junk(ws: Path) -> str:
    (ws / "nodes" / "fleet.yaml").write_bytes(random.Random(4).randbytes(64 * 1024))
    return "nodes/fleet.yaml"


def nul_bytes(ws: Path) -> str:
    (ws / "nodes" / "node1.yaml").write_bytes(b"node: node1\nname: \x00\x01\x02\n")
    return "nodes/node1.yaml"


def symlink_out_of_workspace(ws: Path) -> str:
    target = ws.parent / "outside" / "node3.yaml"
    shutil.move(ws / "nodes" / "node3.yaml", target)
    (ws / "nodes" / "node3.yaml").symlink_to(target)
    return "nodes/node3.yaml"


HOSTILE: dict[str, Callable[[Path], str]] = {
    "alias-bomb": alias_bomb,
    "50MB-file": fifty_megabytes,
    "10000-services": ten_thousand_services,
    "nesting-1000-deep": nested_1000_deep,
    "flow-nesting-1000-deep": nested_flow_1000_deep,
    "binary-junk": binary_junk,
    "nul-bytes": nul_bytes,
    "manifest-symlink-outside": symlink_out_of_workspace,
}


@pytest.fixture
def hostile_ws(tmp_path: Path) -> Path:
    """A workspace of the shipped fleet, with a folder beside it that nothing may touch."""
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "nodes", ws / "nodes")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched\n", encoding="utf-8")
    return ws


@pytest.mark.parametrize("make", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_input_gives_a_located_error_in_bounded_cost(hostile_ws: Path, make: Callable[[Path], str]) -> None:
    where = make(hostile_ws)
    outside_before = tree(hostile_ws.parent / "outside")
    nodes_before = tree(hostile_ws / "nodes")
    result = run_limited(nodegen_cmd(hostile_ws, "render", "--all"))
    assert result.code == 1, (result.code, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    problems = list(LOCATED.finditer(result.stderr))
    assert problems, result.stderr[-2000:]
    assert any(p["path"].startswith(where) for p in problems), result.stderr[:2000]
    assert result.stderr.rstrip().endswith("nothing written")
    assert result.max_rss_kb < MAX_RSS_KB, f"{result.max_rss_kb} kB resident"
    assert result.cpu_seconds < CPU_SECONDS
    assert not (hostile_ws / "output").exists()
    assert tree(hostile_ws / "nodes") == nodes_before
    assert tree(hostile_ws.parent / "outside") == outside_before


def test_output_folder_that_is_a_symlink_is_refused(hostile_ws: Path) -> None:
    outside = hostile_ws.parent / "outside"
    (hostile_ws / "output").symlink_to(outside)
    before = tree(outside)
    result = run_limited(nodegen_cmd(hostile_ws, "render", "--all"))
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert f"{hostile_ws / 'output'}: is a symlink" in result.stderr
    assert tree(outside) == before


def test_node_folder_and_files_that_are_symlinks_never_lead_outside(hostile_ws: Path) -> None:
    outside = hostile_ws.parent / "outside"
    render_ok(hostile_ws)
    out = hostile_ws / "output"
    shutil.rmtree(out / "node1")
    (out / "node1").symlink_to(outside)
    compose = out / "node2" / "docker-compose.all.yml"
    compose.unlink()
    compose.symlink_to(outside / "keep.txt")
    before = tree(outside)
    result = run_limited(nodegen_cmd(hostile_ws, "render", "--all", "--force"))
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{out / 'node1'}: is a symlink" in result.stderr
    assert tree(outside) == before
    assert compose.is_symlink(), "all or nothing: node1's refusal leaves node2 as it was"
    assert (out / "node1").is_symlink()
    alone = run_limited(nodegen_cmd(hostile_ws, "render", "--force", "node2"))
    assert alone.code == 0, alone.stderr
    assert tree(outside) == before
    assert not compose.is_symlink(), "the symlinked file was replaced by the rendered one"
