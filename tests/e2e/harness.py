"""Processes, ports and HTTP for the end-to-end tests: everything on 127.0.0.1, every wait bounded."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class WaitTimeout(AssertionError):
    """A bounded wait ran out."""


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    """Poll check() until it is true; fail naming what was awaited once timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port over TCP or UDP (a bind succeeds on both)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


@dataclass
class PortPicker:
    """Free loopback ports, each handed out once per test session."""

    taken: set[int] = field(default_factory=set)

    def in_range(self, low: int, high: int) -> int:
        candidates = list(range(low, high + 1))
        random.shuffle(candidates)
        for port in candidates[:500]:
            if port not in self.taken and port_free(port):
                self.taken.add(port)
                return port
        raise RuntimeError(f"no free port on {LOOPBACK} in {low}-{high}")

    def any(self) -> int:
        return self.in_range(20000, 32000)


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


class Proc:
    """A process started in its own process group, so stopping it stops its children too."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.cmd = cmd
        self.log = log
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} is already running"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=self.env,
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole group, SIGKILL it if it lingers; safe to call twice."""
        if self.popen is None:
            return
        popen, self.popen = self.popen, None
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, sig)
            try:
                popen.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)  # children that outlived their parent

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_port(self, port: int, timeout: float = 15.0) -> None:
        """Wait until the process listens on port; fail early, with its log, if it exits."""
        def ready() -> bool:
            if not self.running:
                raise AssertionError(f"{self.name} exited before listening on {port}:\n{self.log_tail()}")
            return listening(port)
        try:
            wait_until(f"{self.name} to listen on {LOOPBACK}:{port}", ready, timeout)
        except WaitTimeout as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None


@dataclass
class Reply:
    """One HTTP response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def tls_context() -> ssl.SSLContext:
    """The test's certificate is self-signed: encrypt, do not verify."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connection(port: int, tls: bool, timeout: float, source: str | None) -> http.client.HTTPConnection:
    """A connection to 127.0.0.1:port, from source (another loopback address) when given."""
    bind = (source, 0) if source else None
    if tls:
        return http.client.HTTPSConnection(LOOPBACK, port, timeout=timeout, context=tls_context(),
                                           source_address=bind)
    return http.client.HTTPConnection(LOOPBACK, port, timeout=timeout, source_address=bind)


def request(port: int, path: str, *, tls: bool = True, host: str = "localhost",
            headers: dict[str, str] | None = None, timeout: float = 10.0, source: str | None = None) -> Reply:
    """GET path from 127.0.0.1:port on a fresh connection (from the loopback address source, if given)."""
    conn = _connection(port, tls, timeout, source)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> Reply:
    """Send bytes http.client would refuse to (a NUL in the path, a 20 kB header) over TLS; read the reply."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as plain, \
            tls_context().wrap_socket(plain) as sock:
        sock.sendall(data)
        chunks: list[bytes] = []
        while chunk := sock.recv(65536):  # the request says Connection: close
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Reply(int(lines[0].split()[1]), headers, body)


@contextlib.contextmanager
def keepalive(port: int, host: str = "localhost", timeout: float = 10.0,
              source: str | None = None) -> Iterator[Callable[..., Reply]]:
    """One TLS connection reused for many requests, so a burst is as fast as the gateway allows."""
    conn = _connection(port, True, timeout, source)

    def get(path: str, headers: dict[str, str] | None = None) -> Reply:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    try:
        yield get
    finally:
        conn.close()
