#!/usr/bin/env python3
"""Opens a TCP connection, optionally sends a few bytes, and measures when the server closes it.

usage: tcp_probe.py PORT [--send TEXT] [--limit S]

Used to observe a server's handshake timeout: with nothing sent (or only part of an HTTP
request) a Godot server drops the connection after its handshake timeout without answering.
Output:
  EVENT tcp_connected
  EVENT closed_by_server after_ms=N bytes_received=M [first=HEX]    (or EVENT reset ...)
  EVENT still_open after_ms=N bytes_received=M                      (nothing happened in --limit)
"""

import argparse
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--send", default="", help="text to send first; \\r\\n escapes allowed")
    ap.add_argument("--limit", type=float, default=6.0)
    args = ap.parse_args()
    s = socket.create_connection(("127.0.0.1", args.port), timeout=2)
    start = time.monotonic()
    print("EVENT tcp_connected", flush=True)
    if args.send:
        s.sendall(args.send.encode().decode("unicode_escape").encode("latin-1"))
    got = b""
    s.settimeout(0.05)
    while True:
        elapsed = time.monotonic() - start
        if elapsed > args.limit:
            print("EVENT still_open after_ms=%d bytes_received=%d" % (elapsed * 1000, len(got)))
            break
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            print("EVENT reset after_ms=%d bytes_received=%d" % (elapsed * 1000, len(got)))
            break
        if not data:
            extra = " first=%s" % got[:32].hex() if got else ""
            print("EVENT closed_by_server after_ms=%d bytes_received=%d%s" % (
                elapsed * 1000, len(got), extra))
            break
        got += data
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
