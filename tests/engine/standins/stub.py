"""Stand-in for a service this system builds itself: /health, /metrics, an echo of every request, websockets.

It takes its port from PORT, as the real services do, and refuses to start without it; METRICS_PORT (when
set and different) gets a second listener that serves only /metrics. Standard library only: it runs in the
engine tests' stand-in image, which has no network to install anything.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import sys
import time

NAME = os.environ.get("STUB_SERVICE", "stub")
STARTED = time.monotonic()
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
COUNT = {"requests": 0}


def port_from_env(name: str, required: bool) -> int | None:
    raw = os.environ.get(name, "")
    if not raw:
        if required:
            sys.exit(f"{NAME}: {name} is not set; the service cannot know which port to listen on")
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        sys.exit(f"{NAME}: {name}={raw!r} is not a TCP port")
    return int(raw)


def response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    reason = {200: "OK", 404: "Not Found", 400: "Bad Request"}.get(status, "Status")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + body


def health() -> bytes:
    body = {"status": "healthy", "service": NAME, "version": "stub", "uptime": int(time.monotonic() - STARTED),
            "dependencies": {}}
    return response(200, json.dumps(body).encode())


def metrics() -> bytes:
    text = (
        "# HELP stub_requests_total Requests this stub answered.\n# TYPE stub_requests_total counter\n"
        f'stub_requests_total{{stub="{NAME}"}} {COUNT["requests"]}\n'
        "# HELP stub_up Always 1 while the stub runs.\n# TYPE stub_up gauge\nstub_up 1\n"
    )
    return response(200, text.encode(), "text/plain; version=0.0.4")


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def ws_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
    return first & 0x0F, data


def ws_encode(opcode: int, data: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    if len(data) < 126:
        head += bytes([len(data)])
    elif len(data) < 65536:
        head += bytes([126]) + struct.pack("!H", len(data))
    else:
        head += bytes([127]) + struct.pack("!Q", len(data))
    return head + data


async def websocket(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: dict[str, object],
                    key: str) -> None:
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    writer.write(ws_encode(1, json.dumps(seen).encode()))
    while True:
        opcode, data = await ws_frame(reader)
        if opcode == 8:
            writer.write(ws_encode(8, data[:2]))
            break
        if opcode == 9:
            writer.write(ws_encode(10, data))
        elif opcode in (1, 2):
            writer.write(ws_encode(opcode, data))
        await writer.drain()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, only_metrics: bool) -> None:
    try:
        method, target, headers, body = await read_request(reader)
        COUNT["requests"] += 1
        path = target.split("?", 1)[0]
        seen: dict[str, object] = {"service": NAME, "port": port, "method": method, "path": target,
                                   "headers": headers, "body": body.decode("utf-8", "replace")}
        if path == "/metrics":
            writer.write(metrics())
        elif only_metrics:
            writer.write(response(404, b'{"error":"metrics only"}'))
        elif path == "/health":
            writer.write(health())
        elif headers.get("upgrade", "").lower() == "websocket" and "sec-websocket-key" in headers:
            seen["kind"] = "websocket"
            await websocket(reader, writer, seen, headers["sec-websocket-key"])
        else:
            seen["kind"] = "http"
            writer.write(response(200, json.dumps(seen).encode()))
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


def read_secret_files() -> None:
    """A secret handed over as a file (NAME_FILE, as Swarm does) must be readable by the service's user."""
    for name, path in sorted(os.environ.items()):
        if name.endswith("_FILE"):
            try:
                with open(path, encoding="utf-8") as handle:
                    handle.read()
            except OSError as exc:
                sys.exit(f"{NAME}: {name}={path} cannot be read: {exc.strerror}")


async def main() -> None:
    read_secret_files()
    port = port_from_env("PORT", required=True)
    assert port is not None
    metrics_port = port_from_env("METRICS_PORT", required=False)
    servers = [await asyncio.start_server(lambda r, w: handle(r, w, port, False), "0.0.0.0", port)]
    if metrics_port and metrics_port != port:
        servers.append(await asyncio.start_server(lambda r, w: handle(r, w, metrics_port, True), "0.0.0.0",
                                                  metrics_port))
    print(f"{NAME}: listening on {port}" + (f", metrics on {metrics_port}" if len(servers) > 1 else ""), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
