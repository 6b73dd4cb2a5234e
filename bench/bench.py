"""Time nodegen as whole processes on the shipped fleet and on generated fleets; record peak memory.

Usage: python bench/bench.py [--nodes 100] [--services 50] [--repeat 5] [--json FILE]
                             [--kapitan BIN [--kapitan-fleet DIR]]

Targets (docs/performance.md): `nodegen check --all` on the shipped fleet, cold, no slower than three
`docker compose config -q` runs together, and `validate` under half of them; a 100 x 50 fleet renders
in under 1 s and 150 MiB; cost grows linearly with the fleet; with --kapitan, a cold `render --all` of
the shipped fleet into an empty output/ at least 10x faster than `kapitan compile` of the equivalent
Kapitan project.

"Cold" is a fresh clone: every round copies the workspace (nodes/, and output/ for check) into an
empty folder, so there is no .nodegen-cache; nodegen's installation is as `pip install` left it.
The commands a target compares run alternately in the same rounds, so load on the machine weighs on
both sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodegen.verify import compose_binary  # noqa: E402

COLD = {**os.environ, "NODEGEN_NO_CACHE": "1"}


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    wall, mib, _ = run_timed(cmd, cwd, env)
    return wall, mib


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} exited {code}: {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


Sample = tuple[float, float, float]  # wall s, peak MiB, CPU s


def summary(runs: list[Sample]) -> dict[str, float]:
    return {"min_s": min(r[0] for r in runs), "median_s": statistics.median(r[0] for r in runs),
            "peak_mib": max(r[1] for r in runs), "cpu_min_s": min(r[2] for r in runs)}


def summed(parts: list[Sample]) -> Sample:
    """Several processes run one after another, as one sample."""
    return sum(p[0] for p in parts), max(p[1] for p in parts), sum(p[2] for p in parts)


def fresh_copy(tmp: Path, *, output: bool) -> Path:
    """The shipped workspace as a fresh clone has it: nodes/ (and output/), no .nodegen-cache."""
    ws = tmp / "ws"
    shutil.copytree(ROOT / "nodes", ws / "nodes")
    if output:
        shutil.copytree(ROOT / "output", ws / "output", symlinks=True)
    return ws


def side_by_side(repeat: int, binary: str | None, kapitan: str | None, fleet: Path) -> dict[str, dict[str, float]]:
    """The issue's comparisons, alternately in each round: compose x3, cold check, cold validate, cold
    render into an empty output/, and kapitan compile in a fresh copy of its project."""
    runs: dict[str, list[Sample]] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="nodegen-bench-") as tmp:
            if binary:
                runs.setdefault("compose config -q x3 (shipped)", []).append(summed([
                    run_timed([binary, "-f", "docker-compose.all.yml", "--env-file", ".env.example", "config", "-q"],
                              ROOT / "output" / node) for node in ("node1", "node2", "node3")]))
            for label, args, output in (("shipped check --all (cold)", ("check", "--all"), True),
                                        ("shipped validate (cold)", ("validate",), False),
                                        ("shipped render --all (cold, empty output/)", ("render", "--all"), False)):
                sub = Path(tmp) / label.split()[1]
                ws = fresh_copy(sub, output=output)
                runs.setdefault(label, []).append(run_timed(nodegen("-C", str(ws), *args), ws))
            if kapitan:
                copy = Path(tmp) / "kapitan"
                shutil.copytree(fleet, copy, ignore=shutil.ignore_patterns("compiled"))
                runs.setdefault("kapitan compile (3 targets, 4 templates)", []).append(
                    run_timed([kapitan, "compile"], copy))
    return {label: summary(r) for label, r in runs.items()}


def best_of(cmd: list[str], cwd: Path, repeat: int, env: dict[str, str] | None = None) -> dict[str, float]:
    runs = [run_measured(cmd, cwd, env) for _ in range(repeat)]
    times = [t for t, _ in runs]
    return {"min_s": min(times), "median_s": statistics.median(times), "peak_mib": max(m for _, m in runs)}


def generate_fleet(folder: Path, nodes: int, services: int) -> None:
    """A synthetic fleet: `services` mvp/utility/dagi services in the catalog, all on every node."""
    (folder / "nodes").mkdir(parents=True)
    lines = ["project: bench", "domain: bench.example", "services:",
             "  postgres:", "    class: core", "    image: postgres:15.10-alpine", "    port: 5432",
             "    protocol: tcp", "    data: /var/lib/postgresql/data",
             "    health: {command: [pg_isready, -U, postgres]}", "    metrics: {enabled: false}",
             "    env: {POSTGRES_PASSWORD: {secret: true}}",
             "  gateway-nginx:", "    class: core", "    gateway: true", "    image: nginx:1.27.3-alpine",
             "    port: 443", "    metrics: {enabled: false}"]
    names = []
    for i in range(services - 2):
        cls, base = (("mvp", 7000), ("utility", 8000), ("dagi", 9000))[i % 3]
        name = f"svc-{i:03d}"
        names.append(name)
        needs = f"[postgres, svc-{i - 1:03d}]" if i % 3 and i > 0 else "[postgres]"
        lines += [f"  {name}:", f"    class: {cls}", f"    build: services/{name}", f"    port: {base + 100 + i}",
                  f"    route: r{i:03d}", f"    needs: {needs}",
                  "    env: {DATABASE_URL: {secret: true}, MODE: fast}"]
    (folder / "nodes" / "fleet.yaml").write_text("\n".join(lines) + "\n")
    listed = ", ".join(["postgres", "gateway-nginx", *names])
    for n in range(nodes):
        (folder / "nodes" / f"n{n:03d}.yaml").write_text(
            f"node: n{n:03d}\nname: N{n}\nrole: production\nuptime: 24/7\n"
            f"domain: n{n:03d}.bench.example\naddress: 10.1.{n // 250}.{n % 250 + 1}\nservices: [{listed}]\n"
        )


def targets(results: dict[str, object]) -> dict[str, str]:
    """The issue's ratios, from the side-by-side rounds: of the median wall times, and (steadier on a busy
    machine, where a multi-threaded Go binary and a one-threaded Python are scheduled differently) of
    the least CPU times."""
    def figure(label: str, key: str) -> float | None:
        value = results.get(label)
        return value.get(key) if isinstance(value, dict) else None

    compose, check = "compose config -q x3 (shipped)", "shipped check --all (cold)"
    validate, render = "shipped validate (cold)", "shipped render --all (cold, empty output/)"
    kapitan = "kapitan compile (3 targets, 4 templates)"
    out = {}
    for key, what in (("median_s", "wall"), ("cpu_min_s", "cpu")):
        c, k, r = figure(compose, key), figure(kapitan, key), figure(render, key)
        ch, v = figure(check, key), figure(validate, key)
        if c and ch and v:
            out[f"cold check / compose x3, {what} (target <= 1)"] = f"{ch / c:.2f}"
            out[f"cold validate / compose x3, {what} (target < 0.5)"] = f"{v / c:.2f}"
        if k and r:
            out[f"kapitan compile / cold render, {what} (target >= 10)"] = f"{k / r:.1f}"
    return out


def compile_nodegen() -> None:
    """nodegen's modules compiled to bytecode, as `pip install` leaves a regular install; an editable one
    leaves it to the first import, which PYTHONDONTWRITEBYTECODE forbids (every run would compile them)."""
    with tempfile.TemporaryDirectory() as neutral:  # not a checkout: the installed nodegen is found
        package = subprocess.run([PYTHON, "-c", "import nodegen, os; print(os.path.dirname(nodegen.__file__))"],
                                 cwd=neutral, check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([PYTHON, "-m", "compileall", "-q", package], check=True, stdout=subprocess.DEVNULL)


PYTHON = sys.executable  # --python: the interpreter whose installed nodegen is timed


def nodegen(*args: str) -> list[str]:
    return [PYTHON, "-m", "nodegen", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--targets-only", action="store_true", help="only the side-by-side rounds")
    parser.add_argument("--kapitan", help="a kapitan executable (installed in its own venv)")
    parser.add_argument("--kapitan-fleet", type=Path, default=ROOT.parent / "shared" / "bench" / "kapitan-fleet")
    parser.add_argument("--python", default=sys.executable,
                        help="time the nodegen installed for this interpreter (another venv: an older version)")
    args = parser.parse_args()
    global PYTHON
    PYTHON = args.python
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}, {platform.platform()}",
    }
    compile_nodegen()
    binary = compose_binary()
    results.update(side_by_side(args.repeat, binary, args.kapitan, args.kapitan_fleet))
    if not args.targets_only:
        generated(results, args)
    results["python -c pass (interpreter start)"] = best_of([PYTHON, "-c", "pass"], ROOT, args.repeat)
    report(results, args.json)


def generated(results: dict[str, object], args: argparse.Namespace) -> None:
    """The warm check of the shipped fleet, and the generated fleets of growing size."""
    check = nodegen("-C", str(ROOT), "check", "--all")
    neutral = ROOT / "nodes"  # a folder without the checkout's nodegen/: -m runs the installed one
    results["shipped check --all (no cache, NODEGEN_NO_CACHE=1)"] = best_of(check, neutral, args.repeat, COLD)
    run_measured(check, neutral)  # fills .nodegen-cache when output/ is current
    results["shipped check --all (cached)"] = best_of(check, neutral, args.repeat)
    for nodes in sorted({max(1, args.nodes // 4), max(1, args.nodes // 2), args.nodes}):
        with tempfile.TemporaryDirectory(prefix="nodegen-bench-") as tmp:
            ws = Path(tmp)
            generate_fleet(ws, nodes, args.services)
            label = f"{nodes}x{args.services}"
            render = nodegen("-C", tmp, "render", "--all")
            fresh = []
            for _ in range(args.repeat):
                shutil.rmtree(ws / "output", ignore_errors=True)
                fresh.append(run_measured(render, ws))
            results[f"{label} render --all (empty output/)"] = {
                "min_s": min(t for t, _ in fresh), "median_s": statistics.median(t for t, _ in fresh),
                "peak_mib": max(m for _, m in fresh)}
            results[f"{label} render --all (unchanged)"] = best_of(render, ws, args.repeat)
            results[f"{label} check --all (no cache)"] = best_of(nodegen("-C", tmp, "check", "--all"), ws,
                                                                 args.repeat, COLD)


def report(results: dict[str, object], json_file: Path | None) -> None:
    results["targets"] = targets(results)
    for key, value in results.items():
        if isinstance(value, dict) and "min_s" in value:
            cpu = f"  cpu {value['cpu_min_s']:.3f}s" if "cpu_min_s" in value else ""
            print(f"{key:<48} min {value['min_s']:.3f}s  median {value['median_s']:.3f}s  "
                  f"peak {value['peak_mib']:.0f} MiB{cpu}")
        elif isinstance(value, dict):
            for name, ratio in value.items():
                print(f"{name:<48} {ratio}")
        else:
            print(f"{key}: {value}")
    if json_file:
        json_file.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
