"""Fixtures of the end-to-end tests: a rendered fixture fleet, its stubs, a loopback DNS, nginx, Prometheus.

Each server is one fixture whose finalizer stops its whole process group, so nothing outlives a
failing test. The servers are shared by a module's tests; tests that stop a stub or restart the
gateway put them back as they found them.
"""

from __future__ import annotations

import fcntl
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nodegen.verify import self_signed
from tests.conftest import invoke, require_tool
from tests.e2e import fleet
from tests.e2e.harness import LOOPBACK, PortPicker, Proc, listening, wait_until

STUB = Path(__file__).with_name("stub.py")
DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
# One end-to-end run at a time on a machine: Prometheus's own job scrapes the fixed localhost:9090.
LOCK = Path("/tmp/nodegen-e2e.lock")
LOCK_WAIT = 600.0


@pytest.fixture(scope="session")
def e2e_lock() -> Iterator[None]:
    with open(LOCK, "w") as handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another end-to-end run held {LOCK} for {LOCK_WAIT:.0f}s")
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory, e2e_lock: None) -> fleet.Layout:
    """The fixture fleet, rendered by the real CLI into a scratch workspace."""
    require_tool("openssl", shutil.which("openssl") is not None)
    root = tmp_path_factory.mktemp("e2e")
    certs = root / "certs"
    certs.mkdir()
    pair = self_signed(certs)
    assert pair is not None, "openssl could not make the test certificate"
    plan = fleet.plan(root, PortPicker(), *pair)
    fleet.write(plan)
    result = invoke("-C", str(root), "render", "--all")
    assert result.code == 0, result.stderr
    return plan


@dataclass
class Stubs:
    """The running stub services, by service name."""

    procs: dict[str, Proc] = field(default_factory=dict)
    layout: fleet.Layout | None = None

    def start(self, name: str) -> None:
        assert self.layout is not None
        spec = self.layout.stub(name)
        proc = self.procs[name].start()
        proc.wait_port(spec.port)
        if spec.metrics_port:
            proc.wait_port(spec.metrics_port)

    def stop(self, name: str) -> None:
        assert self.layout is not None
        self.procs[name].stop()
        spec = self.layout.stub(name)
        wait_until(f"{name} to stop listening", lambda: not listening(spec.port), 10)


@pytest.fixture(scope="session")
def stubs(layout: fleet.Layout) -> Iterator[Stubs]:
    running = Stubs(layout=layout)
    try:
        for spec in layout.stubs:
            cmd = [sys.executable, str(STUB), "--name", spec.name, "--port", str(spec.port)]
            if spec.metrics_port:
                cmd += ["--metrics-port", str(spec.metrics_port)]
            if spec.spa:
                cmd.append("--spa")
            running.procs[spec.name] = Proc(spec.name, cmd, layout.root / f"stub-{spec.name}.log")
            running.start(spec.name)
        yield running
    finally:
        for proc in running.procs.values():
            proc.stop()


@pytest.fixture(scope="session")
def dns(layout: fleet.Layout) -> Iterator[Proc]:
    """dnsmasq on 127.0.0.1:<dns_port>, answering every name with 127.0.0.1 (the stubs' address)."""
    require_tool("dnsmasq (Debian dnsmasq-base)", DNSMASQ is not None)
    assert DNSMASQ is not None
    proc = Proc("dnsmasq", [
        DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        f"--listen-address={LOOPBACK}", "--bind-interfaces", f"--port={layout.dns_port}",
        "--address=/#/127.0.0.1", f"--pid-file={layout.root / 'dnsmasq.pid'}", "--user=root",
        "--log-facility=-",
    ], layout.root / "dnsmasq.log")
    try:
        proc.start().wait_port(layout.dns_port)
        yield proc
    finally:
        proc.stop()


class Gateway:
    """The real nginx running the rendered gateway config, unchanged."""

    def __init__(self, layout: fleet.Layout) -> None:
        self.layout = layout
        conf = layout.out / "infra" / "nginx" / "nginx.conf"
        prefix = layout.root / "nginx-prefix"
        prefix.mkdir(exist_ok=True)
        self.proc = Proc("nginx", [
            "nginx", "-p", str(prefix), "-c", str(conf),
            "-g", f"daemon off; pid {layout.root / 'nginx.pid'};",
        ], layout.root / "nginx.log")

    @property
    def access_log(self) -> Path:
        return self.layout.log_dir / "access.log"

    def start(self) -> None:
        self.proc.start()
        self.proc.wait_port(self.layout.https_port)
        self.proc.wait_port(self.layout.http_port)

    def stop(self) -> None:
        self.proc.stop()
        ports = (self.layout.http_port, self.layout.https_port)
        wait_until("nginx to close its ports", lambda: not any(listening(p) for p in ports), 10)

    def restart(self) -> None:
        """A fresh master: new shared memory, so the rate limit starts empty."""
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def gateway(layout: fleet.Layout, stubs: Stubs, dns: Proc) -> Iterator[Gateway]:
    require_tool("nginx", shutil.which("nginx") is not None)
    gw = Gateway(layout)
    try:
        gw.start()
        yield gw
    finally:
        gw.proc.stop()



@pytest.fixture
def fresh_gateway(gateway: Gateway) -> Iterator[Gateway]:
    """The gateway with an empty rate-limit zone, and left that way for the tests after."""
    gateway.restart()
    try:
        yield gateway
    finally:
        gateway.restart()
