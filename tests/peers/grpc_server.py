#!/usr/bin/env python3
"""A real gRPC server (python grpcio, plaintext HTTP/2) for the demo.Echo service.

    grpc_server.py --port P [--host 127.0.0.1] [--verbose]

Prints "ready" on stdout once it listens. Methods (see echo.proto):
  /demo.Echo/Allowed    echoes the message
  /demo.Echo/Forbidden  echoes the message (the proxy's policy is what forbids it)
  /demo.Echo/Fail       fails with FAILED_PRECONDITION "upstream refused"
Uses grpcio's generic handlers with hand-encoded messages, so no generated code.
"""
import argparse
import os
import signal
import sys
import threading
from concurrent import futures

sys.dont_write_bytecode = True  # keep __pycache__ out of the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import echo_wire  # noqa: E402

SERVICE = "demo.Echo"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--verbose", action="store_true",
                    help="log each call (method, peer, metadata) to stderr")
    args = ap.parse_args()

    def log(method: str, context: grpc.ServicerContext, message: str) -> None:
        if args.verbose:
            md = ", ".join(f"{k}={v}" for k, v in context.invocation_metadata())
            print(f"{method} peer={context.peer()} message={message!r} metadata=[{md}]",
                  file=sys.stderr, flush=True)

    def echo(name):
        def handler(request: bytes, context: grpc.ServicerContext) -> bytes:
            message = echo_wire.decode(request)
            log(name, context, message)
            return echo_wire.encode(message)
        return handler

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        log("Fail", context, echo_wire.decode(request))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "upstream refused")
        return b""  # not reached

    # No (de)serializers: requests and replies stay raw bytes.
    handlers = {
        "Allowed": grpc.unary_unary_rpc_method_handler(echo("Allowed")),
        "Forbidden": grpc.unary_unary_rpc_method_handler(echo("Forbidden")),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    address = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    if server.add_insecure_port(address) == 0:
        print(f"cannot listen on {address}", file=sys.stderr)
        return 1
    server.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
