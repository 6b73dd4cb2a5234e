"""A stand-in for one service of a node: /health, /metrics, websockets, and an echo of every other request.

Run as a program (one process per service, so a test can stop it like a crashed container):
    python tests/e2e/stub.py --name city-service --port 7101 [--metrics-port 7191]
Every plain HTTP request other than /health and /metrics is answered with JSON saying which service
saw which method, path (query included) and headers; a websocket connection first sends the same
description, then echoes every message back. With --spa it is a single-page app's file server: only
/, /index.html and /app.js exist, every other path is 404.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

STARTED = time.monotonic()
SPA_FILES = ("/", "/index.html", "/app.js")


def describe(name: str, port: int, path: str, headers: Headers, kind: str) -> dict[str, Any]:
    return {
        "service": name,
        "port": port,
        "kind": kind,
        "path": path,
        "headers": {k.lower(): v for k, v in headers.raw_items()},
    }


def json_response(status: int, body: dict[str, Any], content_type: str = "application/json") -> Response:
    data = json.dumps(body).encode("utf-8")
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return Response(status, "OK" if status == 200 else "Error", headers, data)


def metrics_response(name: str, count: int) -> Response:
    text = (
        "# HELP stub_requests_total Requests this stub answered.\n"
        "# TYPE stub_requests_total counter\n"
        f'stub_requests_total{{stub="{name}"}} {count}\n'
        "# HELP stub_up Always 1 while the stub runs.\n"
        "# TYPE stub_up gauge\n"
        "stub_up 1\n"
    ).encode()
    headers = Headers([("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(text)))])
    return Response(200, "OK", headers, text)


class Stub:
    """The request handling of one stub service."""

    def __init__(self, name: str, spa: bool = False) -> None:
        self.name = name
        self.spa = spa
        self.count = 0

    def http(self, connection: ServerConnection, request: Request) -> Response | None:
        self.count += 1
        port = connection.local_address[1]
        bare = request.path.split("?", 1)[0]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None  # let the websocket handshake proceed
        if bare == "/health" or bare.endswith("/api/city/health"):  # city-service keeps its route prefix
            return json_response(200, {
                "status": "healthy", "service": self.name, "version": "0.0.0-stub",
                "uptime": int(time.monotonic() - STARTED), "dependencies": {},
            })
        if bare == "/metrics":
            return metrics_response(self.name, self.count)
        if self.spa and bare not in SPA_FILES:
            return json_response(404, {"error": "no such file", "service": self.name, "path": request.path})
        return json_response(200, describe(self.name, port, request.path, request.headers, "http"))

    async def websocket(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        port = connection.local_address[1]
        await connection.send(json.dumps(describe(self.name, port, request.path, request.headers, "websocket")))
        async for message in connection:
            await connection.send(message)


async def main(name: str, ports: list[int], spa: bool) -> None:
    stub = Stub(name, spa)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    servers = [
        await serve(stub.websocket, "127.0.0.1", port, process_request=stub.http, server_header=None)
        for port in ports
    ]
    print(f"ready {name} {' '.join(map(str, ports))}", flush=True)
    await stop
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--spa", action="store_true")
    args = parser.parse_args()
    ports = [args.port] + ([args.metrics_port] if args.metrics_port else [])
    asyncio.run(main(args.name, ports, args.spa))
