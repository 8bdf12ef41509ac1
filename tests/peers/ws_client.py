#!/usr/bin/env python3
"""A WebSocket client (python `websockets`): connect, send one message, expect the echo.

    ws_client.py ws://127.0.0.1:P/path [--message hello] [--timeout 5]
                 [--source 127.0.0.2] [--header 'Name: value' ...]

Prints "OK <echo>" and exits 0 when the echo comes back unchanged. Otherwise exits 1
after printing one of:
  HTTP <status>        the upgrade was refused (e.g. "HTTP 403" from a policy deny)
  MISMATCH <reply>     something other than the message came back
  ERROR <what>         connection refused/reset, timeout, protocol error
--source binds the local address, like `curl --interface`, to be another identity.
"""
import argparse
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def run(args) -> int:
    headers = []
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep:
            print(f"ERROR --header wants 'Name: value', got {item!r}", flush=True)
            return 1
        headers.append((name.strip(), value.strip()))
    kwargs = {"local_addr": (args.source, 0)} if args.source else {}
    try:
        async with asyncio.timeout(args.timeout):
            async with connect(args.url, additional_headers=headers or None, proxy=None,
                               compression=None, open_timeout=args.timeout, **kwargs) as ws:
                await ws.send(args.message)
                reply = await ws.recv()
    except InvalidStatus as err:
        print(f"HTTP {err.response.status_code}", flush=True)
        return 1
    except TimeoutError:
        print(f"ERROR timeout after {args.timeout}s", flush=True)
        return 1
    except Exception as err:  # noqa: BLE001 - report any failure as one line
        print(f"ERROR {type(err).__name__}: {err}", flush=True)
        return 1
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    if reply != args.message:
        print(f"MISMATCH {reply}", flush=True)
        return 1
    print(f"OK {reply}", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", help="ws://host:port/path")
    ap.add_argument("--message", default="hello")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--source", help="local address to connect from (e.g. 127.0.0.2)")
    ap.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
