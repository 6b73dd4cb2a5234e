"""Stand-in for the exporters Debian does not package (NATS's and nginx's): /metrics with `<kind>_up`.

    exporter.py nats  -varz -connz http://nats:8222              (natsio/prometheus-nats-exporter, port 7777)
    exporter.py nginx --nginx.scrape-uri=http://gw:8081/stub_status  (nginx/nginx-prometheus-exporter, 9113)
It listens on the official image's default port and reports whether the watched URL answers; it does not
reproduce the real exporters' metric families (docs/decisions.md).
"""

from __future__ import annotations

import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORTS = {"nats": 7777, "nginx": 9113}


def watched(kind: str, args: list[str]) -> str:
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("--nginx.scrape-uri=") else arg
        if value.startswith(("http://", "https://")):
            return value.rstrip("/") + ("/varz" if kind == "nats" else "")
    sys.exit(f"{kind} exporter: no URL to watch in {args}")


def listen_port(kind: str, args: list[str]) -> int:
    for i, arg in enumerate(args):
        if arg in ("-port", "--port") and i + 1 < len(args):
            return int(args[i + 1])
        if arg.startswith("--web.listen-address="):
            return int(arg.rsplit(":", 1)[1])
    return PORTS[kind]


def serve(kind: str, url: str, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                try:
                    with urllib.request.urlopen(url, timeout=5) as reply:
                        up = 1 if reply.status == 200 else 0
                except OSError:
                    up = 0
                body = f"# TYPE {kind}_up gauge\n{kind}_up {up}\n".encode()
            else:
                body = f"{kind} exporter stand-in: /metrics\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    print(f"{kind} exporter stand-in: watching {url}, listening on {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


def main() -> None:
    kind, args = sys.argv[1], sys.argv[2:]
    serve(kind, watched(kind, args), listen_port(kind, args))


if __name__ == "__main__":
    main()
