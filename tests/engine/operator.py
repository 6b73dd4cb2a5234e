"""The operator's side of the engine tests: a node root the generated scripts run in, and what to read back."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.engine.conftest import Node, populate_builds, random_env, view
from tests.engine.daemon import Engine

HTTPS = "https://127.0.0.1"
DEPLOY_TIMEOUT = 900
RULES_WAIT = 60.0


def sync(source: Path, root: Path) -> None:
    """What the operator's `rsync -a output/node1/ <node>:<root>/` does to the files it carries."""
    shutil.copytree(source, root, dirs_exist_ok=True)


class Operated(Node):
    """The node root the scripts run in, with the operator's environment for them."""

    script_env: dict[str, str]

    def script(self, name: str, *args: str, timeout: int = DEPLOY_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return self.run_script(name, *args, env=self.script_env, timeout=timeout)

    def start_script(self, name: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.engine.inside("bash", str(self.folder / "scripts" / name), *args),
                                cwd=self.folder, env={**self.engine.env, **self.script_env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def releases(self) -> list[str]:
        return sorted(p.name for p in (self.folder / "releases").iterdir() if p.is_dir() and p.name[0].isdigit())

    def current(self) -> str:
        return (self.folder / "releases" / "current").resolve().name

    def record(self, release: str, name: str) -> str:
        return (self.folder / "releases" / release / name).read_text(encoding="utf-8").strip()

    def images(self) -> dict[str, str]:
        """Each running service's image id."""
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Image"] for c in self.containers()
                if c["State"]["Running"]}

    def container(self, service: str) -> dict[str, Any]:
        return next(c for c in self.containers() if c["Config"]["Labels"]["com.docker.compose.service"] == service)

    def address(self, service: str) -> str:
        info = next(c for c in self.containers() if c["Config"]["Labels"]["com.docker.compose.service"] == service)
        return str(next(iter(info["NetworkSettings"]["Networks"].values()))["IPAddress"])

    def route(self, route: str) -> dict[str, Any]:
        (reply,) = self.probe([{"kind": "http", "url": f"{HTTPS}/api/{route}/items/1",
                                "host": view(self.name).domain}])
        return reply

    def rule_for(self, alert: str) -> set[float]:
        """The `for` (seconds) of every loaded rule named `alert`, as the running Prometheus reports it."""
        (reply,) = self.probe([{"kind": "http", "url": f"http://{self.address('prometheus')}:9090/api/v1/rules"}])
        assert reply["status"] == 200, reply
        groups = json.loads(reply["body"])["data"]["groups"]
        return {float(r["duration"]) for g in groups for r in g["rules"] if r.get("name") == alert}

    def wait_rule(self, alert: str, seconds: float) -> set[float]:
        """Prometheus loads rules on SIGHUP asynchronously: poll (bounded) until the rule shows `seconds`."""
        deadline = time.monotonic() + RULES_WAIT
        while (found := self.rule_for(alert)) != {seconds} and time.monotonic() < deadline:
            time.sleep(2)
        return found


def node_root(engine: Engine, name: str, rendered: Path, tmp: Path) -> Operated:
    """A node root holding `rendered` (output/<node>/ as synced), the operator's .env and build contexts,
    no certificate (the first deploy bootstraps one); cron files and backups go to `tmp`."""
    folder = tmp / "root"
    folder.mkdir()
    sync(rendered, folder)
    for leftover in folder.rglob("*.pem"):
        leftover.unlink()
    env = random_env(folder / ".env.example")
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    node = Operated(name, folder, engine, env)
    (tmp / "cron.d").mkdir()
    node.script_env = {"CRON_DIR": str(tmp / "cron.d"), "BACKUP_DIR": str(tmp / "backups"), "HEALTH_WAIT": "420"}
    populate_builds(folder, node.model())
    return node


def log_of(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
