"""Requests made from inside the engine's network namespace: run as a program, JSON in on stdin, JSON out.

    nsenter --net=/run/netns/NS python probe.py < [{"kind": "http", "url": ..., "host": ...}, ...]
Kinds: http (one request, no redirects followed), burst (N requests pipelined on one connection, the statuses),
ws (open a websocket, read the greeting, send a message, read the echo), cert (the served certificate).
TLS is not verified: the probe talks to the node's gateway by address, with the test's self-signed certificate.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import sys
from typing import Any
from urllib.parse import urlsplit

from websockets.sync.client import connect

TIMEOUT = 15.0


def tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=TIMEOUT, context=tls()), target
    return http.client.HTTPConnection(parts.netloc, timeout=TIMEOUT), target


def http_request(step: dict[str, Any]) -> dict[str, Any]:
    conn, target = connection(step["url"])
    headers = {"Host": step.get("host", "localhost"), **step.get("headers", {})}
    try:
        conn.request(step.get("method", "GET"), target, body=step.get("body"), headers=headers)
        reply = conn.getresponse()
        body = reply.read().decode("utf-8", "replace")
        return {"status": reply.status, "headers": {k.lower(): v for k, v in reply.getheaders()}, "body": body}
    except OSError as exc:
        return {"status": None, "error": repr(exc)}
    finally:
        conn.close()


def burst(step: dict[str, Any]) -> dict[str, Any]:
    """`count` requests pipelined on one connection: nginx sees them within its own processing time only,
    so how busy this machine is cannot spread them below the rate limit."""
    parts = urlsplit(step["url"])
    count = int(step["count"])
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {step.get('host', 'localhost')}\r\n"
    payload = (request + "\r\n") * (count - 1) + request + "Connection: close\r\n\r\n"
    host, _, port = parts.netloc.partition(":")
    raw = socket.create_connection((host, int(port or (443 if parts.scheme == "https" else 80))), timeout=TIMEOUT)
    conn = tls().wrap_socket(raw, server_hostname=host) if parts.scheme == "https" else raw
    statuses = []
    with conn, conn.makefile("rb") as replies:
        conn.sendall(payload.encode())
        for _ in range(count):
            status = replies.readline().split()
            if len(status) < 2:
                break
            length = 0
            while (line := replies.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            replies.read(length)
            statuses.append(int(status[1]))
    return {"statuses": statuses}


WS_ATTEMPTS = 2  # a handshake that times out is tried once more: on a saturated CI machine one did


def websocket(step: dict[str, Any]) -> dict[str, Any]:
    """Open, read the greeting, echo. Only a timed-out handshake is retried: a refused upgrade, a wrong
    status or a bad greeting is an answer, and is returned at once."""
    last = ""
    for _ in range(WS_ATTEMPTS):
        try:
            with connect(step["url"], ssl=tls() if step["url"].startswith("wss") else None,
                         open_timeout=TIMEOUT) as ws:
                greeting = json.loads(ws.recv(timeout=TIMEOUT))
                ws.send(step["message"])
                return {"greeting": greeting, "echo": ws.recv(timeout=TIMEOUT)}
        except TimeoutError as exc:
            if "handshake" not in str(exc):
                return {"error": repr(exc)}
            last = repr(exc)
        except Exception as exc:
            return {"error": repr(exc)}
    return {"error": last}


def certificate(step: dict[str, Any]) -> dict[str, Any]:
    """The certificate the server presents: its SHA-256 fingerprint and serial."""
    parts = urlsplit(step["url"])
    host, _, port = parts.netloc.partition(":")
    with socket.create_connection((host, int(port or 443)), timeout=TIMEOUT) as raw, \
            tls().wrap_socket(raw, server_hostname=step.get("host", host)) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return {"sha256": hashlib.sha256(der).hexdigest(), "pem": ssl.DER_cert_to_PEM_cert(der)}


KINDS = {"http": http_request, "burst": burst, "ws": websocket, "cert": certificate}


def main() -> None:
    steps = json.load(sys.stdin)
    json.dump([KINDS[step["kind"]](step) for step in steps], sys.stdout)


if __name__ == "__main__":
    main()
