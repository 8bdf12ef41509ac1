#!/usr/bin/env python3
"""A real gRPC client (python grpcio, plaintext HTTP/2) for the demo.Echo service.

    grpc_client.py --target 127.0.0.1:P --method /demo.Echo/Allowed
                   [--message hello] [--timeout 5] [--source 127.0.0.2]
                   [--authority NAME] [--metadata key=value ...]

Success: prints "OK <reply>" and exits 0.
RPC error: prints "STATUS <code-number> <code-name> <details>" and exits 3.
Other failures (bad arguments, local errors): exit 2.

--source makes the connection come from that local address (e.g. 127.0.0.2 to be
a different identity on loopback, like `curl --interface`). grpcio cannot bind a
source address itself, so the client runs a tiny in-process TCP relay: grpcio
talks to the relay, the relay connects to the target from --source. The bytes on
the wire to the target are exactly what grpcio sent; :authority stays the target.
"""
import argparse
import os
import socket
import sys
import threading

sys.dont_write_bytecode = True  # keep __pycache__ out of the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import echo_wire  # noqa: E402


def split_host_port(target: str):
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def start_relay(target: str, source: str) -> str:
    """Listen on an ephemeral loopback port; relay each connection to target from source."""
    host, port = split_host_port(target)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            # A reset on one side becomes a reset on the other, so the client
            # sees what the target did (SO_LINGER 0 => RST on close).
            try:
                dst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            dst.close()

    def accept_loop() -> None:
        while True:
            client, _ = listener.accept()
            try:
                upstream = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
                upstream.settimeout(None)
            except OSError:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return "127.0.0.1:%d" % listener.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="host:port of the server or proxy")
    ap.add_argument("--method", default="/demo.Echo/Allowed")
    ap.add_argument("--message", default="hello")
    ap.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    ap.add_argument("--source", help="local address to connect from (e.g. 127.0.0.2)")
    ap.add_argument("--authority", help=":authority to send (default: --target)")
    ap.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    options = [("grpc.enable_retries", 0), ("grpc.enable_http_proxy", 0)]
    connect_to = args.target
    authority = args.authority
    if args.source:
        connect_to = start_relay(args.target, args.source)
        authority = authority or args.target
    if authority:
        options.append(("grpc.default_authority", authority))
    metadata = []
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--metadata wants KEY=VALUE, got {item!r}")
        metadata.append((key.lower(), value))

    with grpc.insecure_channel(connect_to, options=options) as channel:
        call = channel.unary_unary(args.method)  # raw bytes in and out
        try:
            reply = call(echo_wire.encode(args.message), timeout=args.timeout,
                         metadata=metadata or None)
        except grpc.RpcError as err:
            code = err.code()
            print(f"STATUS {code.value[0]} {code.name} {err.details() or ''}".rstrip(), flush=True)
            return 3
    print(f"OK {echo_wire.decode(reply)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
