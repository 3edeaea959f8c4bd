#!/usr/bin/env python3
"""Logging TCP proxy for WebSocket traffic on loopback.

usage: ws_logproxy.py LISTEN_PORT TARGET_PORT [--godot 3|4] [--max-hex N] [--timeout S]

Accepts on 127.0.0.1:LISTEN_PORT, connects each client to 127.0.0.1:TARGET_PORT and forwards
bytes unchanged in both directions. For each direction it prints the HTTP upgrade head and then
one line per WebSocket frame:

  WIRE conn=1 t=0.012 s2c fin=1 op=binary len=13 head=820d payload=0301000000... | g3 SYS_ID ...

`head` is the frame header as sent (mask key included), `payload` the unmasked payload (first N
bytes in hex). With --godot the payload is also described as a Godot 3.x or 4.x packet. Ends
by itself after --timeout seconds (default 60). Standard library only.
"""

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402

START = time.monotonic()


def log(line):
    print(line, flush=True)


class Direction:
    def __init__(self, conn, name, godot, max_hex):
        self.conn, self.name, self.godot, self.max_hex = conn, name, godot, max_hex
        self.reader = wire.StreamReader(expect_http=True)
        self.messages = 0

    def feed(self, data):
        for kind, item in self.reader.feed(data):
            t = time.monotonic() - START
            if kind == "http":
                text = item.decode("latin-1").replace("\r\n", "\\r\\n")
                log("HTTP conn=%d t=%.3f %s len=%d %s" % (self.conn, t, self.name, len(item), text))
                continue
            f = item
            op = wire.OPCODES.get(f.opcode, "op%d" % f.opcode)
            line = "WIRE conn=%d t=%.3f %s fin=%d rsv=%d op=%s len=%d head=%s payload=%s" % (
                self.conn, t, self.name, f.fin, f.rsv, op, len(f.payload), f.head.hex(),
                f.payload[: self.max_hex].hex() + ("..." if len(f.payload) > self.max_hex else ""))
            if f.opcode == 8:
                line += " | " + wire.describe_close(f.payload)
            elif f.opcode in (1, 2) and self.godot == "3":
                line += " | " + wire.describe_g3(f.payload)
            elif f.opcode in (1, 2) and self.godot == "4":
                first = self.name == "s2c" and self.messages == 0
                line += " | " + wire.describe_g4(f.payload, first_s2c=first)
            if f.opcode in (0, 1, 2):
                self.messages += 1
            log(line)


async def pipe(reader, writer, direction):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            direction.feed(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError) as e:
        log("INFO conn=%d %s error=%s" % (direction.conn, direction.name, type(e).__name__))
    finally:
        log("EOF conn=%d t=%.3f %s" % (direction.conn, time.monotonic() - START, direction.name))
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen_port", type=int)
    ap.add_argument("target_port", type=int)
    ap.add_argument("--godot", choices=["3", "4"], default=None)
    ap.add_argument("--max-hex", type=int, default=48)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    counter = [0]

    async def handle(cr, cw):
        counter[0] += 1
        conn = counter[0]
        peer = cw.get_extra_info("peername")
        log("OPEN conn=%d t=%.3f client_port=%s" % (conn, time.monotonic() - START, peer[1]))
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", args.target_port)
        except OSError as e:
            log("INFO conn=%d upstream_connect_failed=%s" % (conn, e))
            cw.close()
            return
        await asyncio.gather(
            pipe(cr, sw, Direction(conn, "c2s", args.godot, args.max_hex)),
            pipe(sr, cw, Direction(conn, "s2c", args.godot, args.max_hex)),
        )
        sw.close()
        cw.close()

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen_port)
    log("INFO proxy 127.0.0.1:%d -> 127.0.0.1:%d" % (args.listen_port, args.target_port))
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), args.timeout)
        except asyncio.TimeoutError:
            log("INFO proxy timeout")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
