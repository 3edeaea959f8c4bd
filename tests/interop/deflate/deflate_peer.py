#!/usr/bin/env python3
"""Python `websockets` with permessage-deflate, for tests/interop/deflate/run.sh.

  deflate_peer.py server          echo server on 127.0.0.1:<free port>; prints
                                  `listening 127.0.0.1:PORT`, then per connection
                                  `extensions <negotiated>` (websockets' defaults: deflate on,
                                  12-bit windows)
  deflate_peer.py client URL [N]  offers permessage-deflate (the default), sends N rounds of JSON
                                  text of about 200 B, 2 KiB and 32 KiB, each after the previous
                                  echo, checks every echo, closes 1000; prints `extensions ...`
                                  and `ok` or `fail REASON`
Loopback only; the client gives up after 30 s.
"""
import asyncio
import json
import random
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


def json_message(size, seed):
    rng = random.Random(seed)
    players = []
    while len(json.dumps(players)) < size:
        players.append({"id": rng.randrange(100000), "name": f"player_{rng.randrange(4096)}",
                        "x": round(rng.uniform(0, 2000), 2), "y": round(rng.uniform(0, 2000), 2),
                        "hp": rng.randrange(101), "team": rng.choice(["red", "blue", "green", "gold"])})
    return json.dumps({"type": "state", "tick": seed, "players": players}, separators=(",", ":"))


def extensions(ws):
    header = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
    return header or "(none)"


async def echo(ws):
    print(f"extensions {extensions(ws)}", flush=True)
    async for message in ws:
        await ws.send(message)


async def server():
    async with serve(echo, "127.0.0.1", 0, compression="deflate", max_size=1 << 20) as s:
        port = s.sockets[0].getsockname()[1]
        print(f"listening 127.0.0.1:{port}", flush=True)
        await asyncio.Future()


async def client(url, rounds):
    messages = [json_message(size, r) for r in range(rounds) for size in (200, 2048, 32768)]
    async with connect(url, compression="deflate", max_size=1 << 20) as ws:
        print(f"extensions {extensions(ws)}", flush=True)
        if "permessage-deflate" not in extensions(ws):
            return "permessage-deflate not agreed"
        for i, message in enumerate(messages):
            await ws.send(message)
            if await ws.recv() != message:
                return f"echo {i} differs"
        await ws.close(1000, "done")
    return None


def main():
    if sys.argv[1:2] == ["server"]:
        asyncio.run(server())
    elif sys.argv[1:2] == ["client"] and len(sys.argv) > 2:
        rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
        try:
            failure = asyncio.run(asyncio.wait_for(client(sys.argv[2], rounds), 30))
        except Exception as e:  # any failure is reported as a line, not a traceback
            failure = f"{type(e).__name__}: {e}"
        print(f"fail {failure}" if failure else "ok", flush=True)
        sys.exit(1 if failure else 0)
    else:
        sys.exit("usage: deflate_peer.py server | client URL [ROUNDS]")


if __name__ == "__main__":
    main()
