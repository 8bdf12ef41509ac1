#!/usr/bin/env python3
"""The Star Wars demo's deathstar service: a tiny HTTP/1.1 server (stdlib only).

    deathstar.py [--host 127.0.0.10] [--port 80]

  POST /v1/request-landing -> 200 "Ship landed"
  PUT  /v1/exhaust-port    -> 200 "Panic: deathstar exploded"
  GET  /v1                 -> 200 a small JSON description of the API
  anything else            -> 404
Prints "ready" on stdout once it listens.
"""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = {
    "name": "Death Star",
    "hostname": "deathstar",
    "model": "DS-1 Orbital Battle Station",
    "manufacturer": "Imperial Department of Military Research, Sienar Fleet Systems",
    "cost_in_credits": "1000000000000",
    "length": "120000",
    "crew": "342953",
    "passengers": "843342",
    "cargo_capacity": "1000000000000",
    "hyperdrive_rating": "4.0",
    "starship_class": "Deep Space Mobile Battlestation",
    "api": [
        "GET   /v1",
        "POST  /v1/request-landing",
        "PUT   /v1/cargobay",
        "GET   /v1/hyper-matter-reactor/status",
        "PUT   /v1/exhaust-port",
    ],
}

ROUTES = {
    ("POST", "/v1/request-landing"): ("text/plain", b"Ship landed\n"),
    ("PUT", "/v1/exhaust-port"): ("text/plain", b"Panic: deathstar exploded\n"),
    ("GET", "/v1"): ("application/json", (json.dumps(API, indent=2) + "\n").encode()),
}


class Deathstar(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real service
    server_version = "deathstar/1.0"

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        content_type, body = ROUTES.get((self.command, path), ("text/plain", b"Not found\n"))
        self.send_response(200 if (self.command, path) in ROUTES else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write("deathstar: %s %s\n" % (self.client_address[0], fmt % args))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.10")
    ap.add_argument("--port", type=int, default=80)
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Deathstar)
    server.daemon_threads = True
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
