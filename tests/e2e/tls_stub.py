"""A stand-in for another node's gateway: HTTPS on 127.0.0.1, answering every request with who answered it.

Run as a program, one process per node, so a test can stop it like a node that is switched off:
    python tests/e2e/tls_stub.py --name primary --port 24443 --cert cert.pem --key key.pem [--status 503]
Every request is answered with JSON naming the stub, the method, the path (query included), the Host
header and the body; --status makes every answer carry that status (a node that is up but failing).
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


def handler(name: str, status: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            data = json.dumps({"node": name, "method": self.command, "path": self.path,
                               "host": self.headers.get("Host"), "body": body}).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = answer  # the method names http.server dispatches to
        do_POST = answer

        def log_message(self, format: str, *args: object) -> None:
            sys.stdout.write(f"{name}: {format % args}\n")
            sys.stdout.flush()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--status", type=int, default=200)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.name, args.status))
    server.socket = context.wrap_socket(server.socket, server_side=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"ready {args.name} {args.port}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
