"""Stand-in images for the engine tests: one cached Debian root file system, thin images tagged as compose names them.

No registry is reachable, so every `image:` of the rendered compose files is built locally, without network,
FROM one base image imported from a Debian bookworm root file system (tests/engine/build-rootfs.sh). The root
file system is built once per machine and cached under /var/cache/nodegen/, keyed by a hash of its recipe; the
cache is a speed-up, never a requirement (an unwritable cache directory builds into a scratch folder).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins"
RECIPE = HERE / "build-rootfs.sh"
OUTPUT = HERE.parents[1] / "output"
CACHE = Path(os.environ.get("NODEGEN_ENGINE_CACHE", "/var/cache/nodegen"))
BASE = "nodegen-engine/base"
STUB = "nodegen-engine/stub"
BUILD_TIMEOUT = 1800


@dataclass(frozen=True)
class StandIn:
    """How one official image is imitated: its Dockerfile body (after FROM) and the files it copies."""

    dockerfile: str
    files: tuple[str, ...] = ()
    # The binaries the official image ships that a health check may call (the stand-in ships curl and wget
    # everywhere, so this is what the engine cannot prove and tests/engine/test_catalog.py checks instead).
    official_tools: frozenset[str] = frozenset()


BUSYBOX = frozenset({"wget", "sh"})  # alpine and busybox images: busybox applets

STANDINS_BY_REPOSITORY: dict[str, StandIn] = {
    "postgres": StandIn(
        "ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH\n"
        "COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
        "RUN rm -rf /var/lib/postgresql/15 /etc/postgresql/15/main && mkdir -p /docker-entrypoint-initdb.d\n"
        'STOPSIGNAL SIGINT\nEXPOSE 5432\nENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["postgres"]\n',
        ("postgres-entrypoint.sh",), BUSYBOX | {"pg_isready", "psql", "pg_dump", "pg_dumpall", "pg_restore"},
    ),
    "redis": StandIn(
        "COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
        "RUN mkdir -p /data && chown redis:redis /data\nWORKDIR /data\nEXPOSE 6379\n"
        'ENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["redis-server"]\n',
        ("redis-entrypoint.sh",), BUSYBOX | {"redis-cli"},
    ),
    "nats": StandIn(
        "COPY nats-entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
        "COPY nats-server.conf /etc/nats/nats-server.conf\nEXPOSE 4222 8222\n"
        'ENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["nats-server", "--config", "/etc/nats/nats-server.conf"]\n',
        ("nats-entrypoint.sh", "nats-server.conf"), BUSYBOX,
    ),
    "nginx": StandIn(
        "COPY nginx-entrypoint.sh /docker-entrypoint.sh\n"
        "RUN rm -f /etc/nginx/sites-enabled/* && mkdir -p /docker-entrypoint.d /etc/nginx/conf.d"
        " && useradd --system --no-create-home --shell /usr/sbin/nologin nginx"
        " && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log\n"
        'EXPOSE 80\nSTOPSIGNAL SIGQUIT\nENTRYPOINT ["/docker-entrypoint.sh"]\nCMD ["nginx", "-g", "daemon off;"]\n',
        ("nginx-entrypoint.sh",), BUSYBOX | {"curl", "nginx"},
    ),
    "prom/prometheus": StandIn(
        "RUN mkdir -p /prometheus /usr/share/prometheus/console_libraries /usr/share/prometheus/consoles"
        " && chown -R nobody:nogroup /prometheus /etc/prometheus\n"
        "USER nobody\nWORKDIR /prometheus\nEXPOSE 9090\nVOLUME [\"/prometheus\"]\n"
        'ENTRYPOINT ["/usr/bin/prometheus"]\n'
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",'
        ' "--web.console.libraries=/usr/share/prometheus/console_libraries",'
        ' "--web.console.templates=/usr/share/prometheus/consoles"]\n',
        (), BUSYBOX | {"promtool"},
    ),
    "prom/alertmanager": StandIn(
        "RUN mkdir -p /alertmanager /etc/alertmanager && chown -R nobody:nogroup /alertmanager /etc/alertmanager"
        " && ln -sf /usr/bin/prometheus-alertmanager /usr/local/bin/alertmanager\n"
        "USER nobody\nWORKDIR /alertmanager\nEXPOSE 9093\n"
        'ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]\n'
        'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]\n',
        (), BUSYBOX | {"amtool"},
    ),
    "grafana/grafana": StandIn(
        "COPY grafana.py /usr/share/grafana/standin.py\n"
        "RUN mkdir -p /var/lib/grafana /etc/grafana/provisioning && chown -R nobody:nogroup /var/lib/grafana\n"
        "USER nobody\nEXPOSE 3000\nENV GF_PATHS_PROVISIONING=/etc/grafana/provisioning\n"
        'ENTRYPOINT ["python3", "/usr/share/grafana/standin.py"]\n',
        ("grafana.py",), BUSYBOX | {"curl"},
    ),
    "matrixdotorg/synapse": StandIn(
        "COPY synapse-start.sh /start.py\nRUN mkdir -p /data\nEXPOSE 8008 8009 8448\n"
        'ENTRYPOINT ["/start.py"]\n',
        ("synapse-start.sh",), frozenset({"curl", "python", "sh"}),
    ),
    "prom/node-exporter": StandIn(
        'USER nobody\nEXPOSE 9100\nENTRYPOINT ["/usr/bin/prometheus-node-exporter"]\n', (), BUSYBOX,
    ),
    "prometheuscommunity/postgres-exporter": StandIn(
        'USER nobody\nEXPOSE 9187\nENTRYPOINT ["/usr/bin/prometheus-postgres-exporter"]\n', (), BUSYBOX,
    ),
    "oliver006/redis_exporter": StandIn(
        # The -alpine tags (the catalog pins one) ship busybox; the plain tags are built FROM scratch.
        'USER nobody\nEXPOSE 9121\nENTRYPOINT ["/usr/bin/prometheus-redis-exporter"]\n', (), BUSYBOX,
    ),
    "natsio/prometheus-nats-exporter": StandIn(
        'COPY exporter.py /usr/local/lib/exporter.py\nUSER nobody\nEXPOSE 7777\n'
        'ENTRYPOINT ["python3", "-u", "/usr/local/lib/exporter.py", "nats"]\n', ("exporter.py",), frozenset(),
    ),
    "nginx/nginx-prometheus-exporter": StandIn(
        'COPY exporter.py /usr/local/lib/exporter.py\nUSER nobody\nEXPOSE 9113\n'
        'ENTRYPOINT ["python3", "-u", "/usr/local/lib/exporter.py", "nginx"]\n', ("exporter.py",), frozenset(),
    ),
    "prom/blackbox-exporter": StandIn(
        "RUN mkdir -p /etc/blackbox_exporter && cp /etc/prometheus/blackbox.yml /etc/blackbox_exporter/config.yml\n"
        'USER nobody\nEXPOSE 9115\nENTRYPOINT ["/usr/bin/prometheus-blackbox-exporter"]\n'
        'CMD ["--config.file=/etc/blackbox_exporter/config.yml"]\n', (), BUSYBOX,
    ),
}

STUB_DOCKERFILE = (
    "COPY stub.py /usr/local/lib/stub.py\nUSER nobody\n"
    'ENTRYPOINT ["python3", "-u", "/usr/local/lib/stub.py"]\n'
)


def repository(ref: str) -> str:
    """`docker.io/library/nginx:1.27-alpine` -> `nginx`; `prom/prometheus:v2` -> `prom/prometheus`."""
    name = ref.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def compose_images(files: Iterable[Path]) -> dict[str, set[str]]:
    """Repository -> the exact image references the rendered compose files use."""
    out: dict[str, set[str]] = {}
    for path in files:
        model = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for svc in (model.get("services") or {}).values():
            ref = svc.get("image")
            if ref and not svc.get("build"):
                out.setdefault(repository(ref), set()).add(ref)
    return out


def shipped_images() -> dict[str, set[str]]:
    """The images of the shipped fleet's committed output (what the node tests bring up)."""
    return compose_images(sorted(OUTPUT.glob("*/docker-compose*.yml")))


def synapse_version(images: dict[str, set[str]]) -> str:
    """The Synapse release the root file system carries: the one `images` name, else the shipped fleet's, so
    that a test fleet without Synapse (the Swarm test's) shares the shipped root file system, not a second."""
    tags = sorted(ref.rsplit(":", 1)[-1] for ref in images.get("matrixdotorg/synapse", ()))
    if tags:
        return tags[0].lstrip("v")
    shipped = shipped_images()
    return synapse_version(shipped) if "matrixdotorg/synapse" in shipped else "1.120.2"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cache_dir(scratch: Path) -> Path:
    """The shared cache when it is writable, else a scratch folder (a cold build, never a failure)."""
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        probe = CACHE / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return CACHE
    except OSError:
        return scratch


def rootfs(version: str, scratch: Path) -> Path:
    """The root file system tarball for this recipe, built under a lock when no run has built it yet."""
    key = hashlib.sha256(RECIPE.read_bytes() + version.encode()).hexdigest()[:16]
    where = cache_dir(scratch)
    tar = where / f"rootfs-{key}.tar"
    with locked(where / "rootfs.lock"):
        if not tar.exists():
            subprocess.run(["bash", str(RECIPE), str(tar), version], check=True, timeout=BUILD_TIMEOUT)
    return tar


def build(docker: list[str], tags: Iterable[str], dockerfile: str, files: Iterable[str], env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="nodegen-standin-") as tmp:
        context = Path(tmp)
        for name in files:
            shutil.copy2(STANDINS / name, context / name)
        (context / "Dockerfile").write_text(f"FROM {BASE}\n{dockerfile}", encoding="utf-8")
        cmd = [*docker, "build", "-q"]
        for tag in sorted(tags):
            cmd += ["-t", tag]
        proc = subprocess.run([*cmd, str(context)], capture_output=True, text=True, env=env, timeout=600,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"building {sorted(tags)} failed:\n{proc.stdout}\n{proc.stderr}")


def missing_standins(images: dict[str, set[str]]) -> list[str]:
    return sorted(ref for repo, refs in images.items() if repo not in STANDINS_BY_REPOSITORY for ref in refs)


def build_all(docker: list[str], env: dict[str, str], images: dict[str, set[str]], scratch: Path) -> None:
    """Import the base once, then one thin image per repository, tagged with every reference compose uses."""
    tar = rootfs(synapse_version(images), scratch)
    digest = re.sub(r"\W", "", tar.stem)
    have = subprocess.run([*docker, "image", "inspect", f"{BASE}:{digest}"], capture_output=True, env=env,
                          check=False, timeout=60)
    if have.returncode != 0:
        subprocess.run([*docker, "import", str(tar), f"{BASE}:{digest}"], check=True, capture_output=True, env=env,
                       timeout=BUILD_TIMEOUT)
    subprocess.run([*docker, "tag", f"{BASE}:{digest}", BASE], check=True, env=env, timeout=60)
    build(docker, [STUB], STUB_DOCKERFILE, ["stub.py"], env)
    for repo, refs in sorted(images.items()):
        standin = STANDINS_BY_REPOSITORY[repo]
        build(docker, refs, standin.dockerfile, standin.files, env)


def prefetch() -> None:
    """Build the root file system into the shared cache ahead of the tests: `tests/run.sh` starts this while
    lint and type checks run. Only a head start: the engine fixture builds (or waits for) it all the same."""
    scratch = Path(tempfile.mkdtemp(prefix="nodegen-rootfs-"))
    try:
        if cache_dir(scratch) == CACHE:
            rootfs(synapse_version(shipped_images()), scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    prefetch()
