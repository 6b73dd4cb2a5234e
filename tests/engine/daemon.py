"""A Docker daemon of the tests' own, inside a network namespace with no route out of the machine.

The rendered configs hold other nodes' private addresses (10.0.0.x): the daemon, its containers and every
probe live in a namespace that has only loopback and Docker's own bridges, so no packet can leave. The daemon
has its own data root, exec root, pid file and socket; `stop()` removes all of it, and the namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def engine_tools() -> list[str]:
    """The programs the engine tests need that are not on PATH."""
    return [tool for tool in ("dockerd", "docker", "ip", "nsenter", "debootstrap") if shutil.which(tool) is None]


@dataclass
class Engine:
    """One running daemon: how to reach it, from the host (socket) and inside its namespace (nsenter)."""

    root: Path
    netns: str
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "dockerd.log"

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker/compose: this daemon, the classic builder (no buildx here)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_BUILDKIT="0", COMPOSE_BAKE="false",
                   DOCKER_CONFIG=str(self.root / "client"))
        return env

    def inside(self, *cmd: str) -> list[str]:
        """A command line that runs `cmd` in the daemon's network namespace (and nothing else changed)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *cmd]

    def start(self) -> None:
        subprocess.run(["ip", "netns", "add", self.netns], check=True, timeout=30)
        subprocess.run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"], check=True, timeout=30)
        (self.root / "client").mkdir(parents=True, exist_ok=True)
        driver = ["--storage-driver", "overlay2"] if _overlay_available() else []
        cmd = self.inside("dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                          "--pidfile", str(self.root / "docker.pid"), "--host", f"unix://{self.socket}",
                          "--bridge", "docker0", "--ip-forward=false", *driver)
        with self.log.open("wb") as log:
            # ip netns exec would remount /sys and hide the cgroup hierarchies dockerd needs: nsenter does not.
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            ping = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=self.env,
                                  capture_output=True, timeout=30, check=False)
            if ping.returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer within {START_TIMEOUT}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Remove every container and stop the daemon, whatever state it is in: each step is bounded, and a
        daemon that no longer answers (Engine 20.10 can hang a container's stop on a stuck health-check exec)
        is killed, with the containers its shims still run."""
        if self.process is not None and self.process.poll() is None:
            try:
                ids = subprocess.run(["docker", "ps", "-aq"], env=self.env, capture_output=True, text=True,
                                     timeout=30, check=False).stdout.split()
                if ids:
                    subprocess.run(["docker", "rm", "-f", *ids], env=self.env, capture_output=True, timeout=120,
                                   check=False)
            except subprocess.TimeoutExpired:
                pass  # the daemon is stuck: killed below, and what its shims run with it
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        _kill_leftovers(self.root)
        subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True, timeout=30, check=False)
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return out


def _kill_leftovers(root: Path) -> None:
    """Containerd's shims leave their daemon's session: kill the ones of this daemon (named by its exec root)
    and every process below them, the containers' own."""
    procs = _processes()
    doomed = {pid for pid, (_, cmd) in procs.items() if "containerd-shim" in cmd and str(root) in cmd}
    grew = True
    while grew:
        below = {pid for pid, (parent, _) in procs.items() if parent in doomed} - doomed
        doomed |= below
        grew = bool(below)
    for pid in doomed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _overlay_available() -> bool:
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


def _unmount_below(root: Path) -> None:
    """Mounts the daemon left behind (overlay layers, netns files) would keep the folder from being removed."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    for point in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30, check=False)
