#!/usr/bin/env python3
"""A WebSocket echo server (python `websockets`), the upstream for WebSocket tests.

    ws_echo_server.py --port P [--host 127.0.0.1] [--verbose]

Accepts any path, echoes every text or binary message back unchanged, prints
"ready" on stdout once it listens. SIGTERM/SIGINT stop it cleanly.
"""
import argparse
import asyncio
import signal
import sys

from websockets.asyncio.server import serve


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--verbose", action="store_true",
                    help="log each connection (peer, path, headers) to stderr")
    args = ap.parse_args()

    async def echo(ws) -> None:
        if args.verbose:
            headers = ", ".join(f"{k}: {v}" for k, v in ws.request.headers.raw_items())
            print(f"connect peer={ws.remote_address} path={ws.request.path} headers=[{headers}]",
                  file=sys.stderr, flush=True)
        async for message in ws:
            await ws.send(message)

    async def run() -> None:
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        async with serve(echo, args.host, args.port, compression=None):
            print("ready", flush=True)
            await stop

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
