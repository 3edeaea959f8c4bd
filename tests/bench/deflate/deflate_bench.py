#!/usr/bin/env python3
"""permessage-deflate benchmark (issue 15): wire bytes and server CPU per message for JSON text
of about 200 B, 2 KiB and 32 KiB, with and without compression, for multipeer-mio's plain
WebSocketServer (`ws_echo_mio`), npm `ws` and Bun; then idle RSS per compressed connection.

    python3 tests/bench/deflate/deflate_bench.py [ROUNDS]      (default 2 rounds)

Needs `ws_echo_mio` in $CARGO_TARGET_DIR/release, node, npm ws 8.23.0 in tests/.tools/deflate
(tests/interop/deflate/run.sh installs it; so does this script), and Bun from tests/bench/bun
(`npm install` there). Each server runs pinned to CPU 0, the load client (node `ws`, which
compresses with zlib in C, offering the extension and compressing every message when the case
is "deflate") to CPU 1: 4 connections, each sending one message after the previous echo, for
SECS seconds. Server CPU is the server process's utime+stime over the run; bytes are the TCP
payload each way after the handshakes, counted by the client's sockets (WebSocket frames,
without TCP/IP "busy besides server" is the share of both cores busy with anything but the server meanwhile
(the load client is about half of it; the rest is other work on this shared machine): compare
ratios within one run. Prints Markdown.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
TOOLS = ROOT / "tests/.tools/deflate"
BUN = ROOT / "tests/bench/bun/node_modules/@oven/bun-linux-x64/bin/bun"
SECS = float(os.environ.get("BENCH_SECS", "3"))
CONNS = 4
IDLE_CONNS = 200
SIZES = [200, 2048, 32768]


def server_cmd(name, port, deflate):
    if name == "multipeer-mio":
        flag = {"off": [], "on": ["--permessage-deflate"], "nct": ["--deflate-no-context-takeover"]}[deflate]
        return [str(TARGET / "ws_echo_mio"), *flag, f"127.0.0.1:{port}", "60000"]
    on = "0" if deflate == "off" else "1"
    if name == "node-ws":
        return ["node", str(HERE / "node_echo.js"), str(port), on]
    return [str(BUN), str(HERE / "bun_echo.js"), str(port), on]


def proc_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def busy_seconds():
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class Server:
    port = 23000

    def __init__(self, name, deflate):
        Server.port += 1
        self.port = Server.port
        env = dict(os.environ, NODE_PATH=str(TOOLS / "node_modules"))
        self.proc = subprocess.Popen(["taskset", "-c", "0", *server_cmd(name, self.port, deflate)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("listening"):
            raise RuntimeError(f"{name} did not start ({server_cmd(name, self.port, deflate)}): {line!r}")
        time.sleep(0.3)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load(args, **kw):
    env = dict(os.environ, NODE_PATH=str(TOOLS / "node_modules"))
    return subprocess.Popen(["taskset", "-c", "1", "node", str(HERE / "load.js"), *args], env=env,
                            text=True, **kw)


def echo_case(name, deflate, size):
    server = Server(name, deflate)
    try:
        pid = server.proc.pid
        cpu0, busy0, t0 = proc_seconds(pid), busy_seconds(), time.time()
        client = load(["echo", f"ws://127.0.0.1:{server.port}/", str(size), str(CONNS), str(SECS),
                       "0" if deflate == "off" else "1"], stdout=subprocess.PIPE)
        out, _ = client.communicate(timeout=120)
        cpu1, busy1, t1 = proc_seconds(pid), busy_seconds(), time.time()
        res = json.loads(out.strip().splitlines()[-1])
        n = res["messages"]
        # Busy time of both cores besides the server's (the load client's included).
        other = max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / ((t1 - t0) * os.cpu_count())
        return {"msgs_per_s": n / res["seconds"], "cpu_us": (cpu1 - cpu0) / n * 1e6,
                "in_b": res["server_in"] / n, "out_b": res["server_out"] / n,
                "ext": res["extensions"], "busy_other": other}
    finally:
        server.stop()


def idle_case(name, deflate, offer):
    server = Server(name, deflate)
    try:
        before = rss_kib(server.proc.pid)
        client = load(["idle", f"ws://127.0.0.1:{server.port}/", str(IDLE_CONNS), "1" if offer else "0"],
                      stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        ready = client.stdout.readline()
        time.sleep(1.5)
        after = rss_kib(server.proc.pid)
        client.stdin.close()
        client.wait(30)
        return (after - before) * 1024 / IDLE_CONNS, ready.split(" ", 1)[1].strip()
    finally:
        server.stop()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    if not (TOOLS / "node_modules/ws").is_dir():
        TOOLS.mkdir(parents=True, exist_ok=True)
        (TOOLS / "package.json").write_text('{"private": true, "dependencies": {"ws": "8.23.0"}}\n')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=TOOLS, check=True)
    servers = ["multipeer-mio", "node-ws"] + (["bun"] if BUN.exists() else [])
    print(f"load average before: {os.getloadavg()[0]:.2f}; {rounds} rounds of {SECS:.0f} s, {CONNS} connections",
          file=sys.stderr)
    rows = {}
    for r in range(rounds):
        for size in SIZES:
            for name in servers:
                for deflate in ("off", "on"):
                    res = echo_case(name, deflate, size)
                    print(f"round {r} {name} {deflate} {size}: {res}", file=sys.stderr)
                    rows.setdefault((size, name, deflate), []).append(res)
    med = lambda runs, key: statistics.median(x[key] for x in runs)
    print("| message | server | deflate | msgs/s | server CPU µs/msg | bytes in/msg | bytes out/msg | out vs plain | busy besides server |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        for name in servers:
            plain_out = med(rows[(size, name, "off")], "out_b")
            for deflate in ("off", "on"):
                runs = rows[(size, name, deflate)]
                print(f"| {size} B | {name} | {deflate} | {med(runs, 'msgs_per_s'):,.0f} | {med(runs, 'cpu_us'):.1f} | "
                      f"{med(runs, 'in_b'):,.0f} | {med(runs, 'out_b'):,.0f} | {med(runs, 'out_b') / plain_out:.2f} | "
                      f"{max(x['busy_other'] for x in runs):.0%} |")
    print()
    print(f"Idle RSS per connection ({IDLE_CONNS} connections, each after one 2 KiB message each way):")
    print()
    print("| server | extension | RSS per connection | negotiated |")
    print("|---|---|---:|---|")
    for name, deflate, offer, label in [
            ("multipeer-mio", "off", False, "off"),
            ("multipeer-mio", "on", True, "on, context takeover"),
            ("multipeer-mio", "nct", True, "on, no context takeover"),
            ("node-ws", "off", False, "off"), ("node-ws", "on", True, "on (ws defaults)"),
            ("bun", "off", False, "off"), ("bun", "on", True, "on")]:
        if name not in servers:
            continue
        per, ext = idle_case(name, deflate, offer)
        print(f"| {name} | {label} | {per / 1024:,.1f} KiB | {ext} |")


if __name__ == "__main__":
    main()
