#!/usr/bin/env python3
"""A scripted WebSocket server for negative tests against real Godot clients.

usage: fake_ws_server.py PORT [--send HEX]... [--linger S] [--timeout S] [--godot 3|4]

Accepts one connection on 127.0.0.1:PORT, answers the HTTP upgrade with a plain 101, sends each
--send payload as one binary frame (in order), then logs every frame the client sends until the
client closes or --linger seconds pass, answers a Close with a Close, and exits. Output lines:

  EVENT listen port=P
  HTTP c2s ...                      the client's request
  SENT payload=HEX
  FRAME c2s op=close len=2 payload=03e8 | close code=1000 reason=b''
  EVENT client_closed_tcp after_ms=N   (or EVENT linger_over)

Example (a Godot 4 client must reject a 5-byte first message):
  fake_ws_server.py 9090 --send 0903000000
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402


def log(line):
    print(line, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--linger", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--godot", choices=["3", "4"], default=None)
    args = ap.parse_args()

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(4)
    ls.settimeout(args.timeout)
    log("EVENT listen port=%d" % args.port)
    try:
        conn, _ = ls.accept()
    except socket.timeout:
        log("RESULT fail reason=no_client")
        return 1
    start = time.monotonic()
    conn.settimeout(0.2)
    reader = wire.StreamReader(expect_http=True)
    deadline = start + args.linger
    upgraded = False
    while time.monotonic() < deadline:
        try:
            data = conn.recv(65536)
        except socket.timeout:
            continue
        except OSError as e:
            log("EVENT recv_error %s" % type(e).__name__)
            break
        if not data:
            log("EVENT client_closed_tcp after_ms=%d" % ((time.monotonic() - start) * 1000))
            break
        for kind, item in reader.feed(data):
            if kind == "http":
                log("HTTP c2s %s" % item.decode("latin-1").replace("\r\n", "\\r\\n"))
                key = b""
                for line in item.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"sec-websocket-key":
                        key = value.strip()
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + wire.accept_key(key)
                             + b"\r\n\r\n")
                upgraded = True
                for hexdata in args.send:
                    conn.sendall(wire.encode_frame(bytes.fromhex(hexdata)))
                    log("SENT payload=%s" % hexdata)
                continue
            f = item
            line = "FRAME c2s op=%s len=%d payload=%s" % (
                wire.OPCODES.get(f.opcode, f.opcode), len(f.payload), f.payload[:48].hex())
            if f.opcode == 8:
                line += " | " + wire.describe_close(f.payload)
            elif args.godot == "3":
                line += " | " + wire.describe_g3(f.payload)
            elif args.godot == "4":
                line += " | " + wire.describe_g4(f.payload)
            log(line)
            if f.opcode == 8:
                conn.sendall(wire.encode_frame(f.payload, opcode=8))
                log("SENT close echo")
    else:
        log("EVENT linger_over")
    conn.close()
    ls.close()
    log("RESULT ok" if upgraded else "RESULT fail reason=no_upgrade")
    return 0


if __name__ == "__main__":
    sys.exit(main())
