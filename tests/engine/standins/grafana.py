"""Stand-in for Grafana: checks its provisioning files as Grafana does at start, then serves /api/health.

Grafana's image is not reachable from the test machines. Like Grafana, it refuses to start (exit 1) when a
provisioning file under $GF_PATHS_PROVISIONING is not valid YAML, a datasource lacks a name or type, or a
dashboard provider points at a folder that does not exist.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

PROVISIONING = Path(os.environ.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"))
VERSION = os.environ.get("STANDIN_VERSION", "stand-in")


def fail(message: str) -> None:
    sys.exit(f'logger=provisioning level=error msg="Failed to provision" error="{message}"')


def documents(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    folder = PROVISIONING / kind
    out = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            fail(f"{path}: {exc}")
        if not isinstance(doc, dict):
            fail(f"{path}: not a mapping")
        out.append((path, doc))
    return out


def check_datasources() -> int:
    count = 0
    for path, doc in documents("datasources"):
        for ds in doc.get("datasources") or []:
            if not isinstance(ds, dict) or not ds.get("name") or not ds.get("type"):
                fail(f"{path}: datasource without a name or type: {ds!r}")
            count += 1
    return count


def check_dashboards() -> int:
    count = 0
    for path, doc in documents("dashboards"):
        for provider in doc.get("providers") or []:
            folder = Path(str((provider.get("options") or {}).get("path", "")))
            if not folder.is_dir():
                fail(f"{path}: provider {provider.get('name')!r}: dashboards folder {folder} does not exist")
            for board in sorted(folder.glob("*.json")):
                try:
                    json.loads(board.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    fail(f"{board}: {exc}")
                count += 1
    return count


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/api/health":
            body = json.dumps({"database": "ok", "version": VERSION}).encode()
            self.send_response(200)
        elif path == "/metrics":  # Grafana serves its own metrics unauthenticated by default
            body = f'grafana_build_info{{version="{VERSION}"}} 1\n'.encode()
            self.send_response(200)
        else:
            body = b'{"message":"Not found"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    if not PROVISIONING.is_dir():
        fail(f"provisioning folder {PROVISIONING} does not exist")
    try:
        sources, boards = check_datasources(), check_dashboards()
    except OSError as exc:
        fail(f"reading {PROVISIONING}: {exc}")
    port = int(os.environ.get("GF_SERVER_HTTP_PORT", "3000"))
    print(f"grafana stand-in: {sources} datasources, {boards} dashboards, listening on {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
