#!/usr/bin/env python3
"""Loopback benchmark runner (issue 7); run through tests/bench/run.sh, which builds first.

Every server runs pinned to CPU 0 and the load generator to CPU 1 (taskset). Servers alternate
A B C ... A B C within each round, every case is repeated ROUNDS times, and a fresh server
process serves each run (so memory figures start from a clean process). Medians and ratios go to
BENCHMARKS.md at the repository root; raw JSON lines to tests/bench/results/.
"""

import json
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/work/target-bench")) / "release"
RESULTS = BENCH / "results"
BUN = BENCH / "bun/node_modules/@oven/bun-linux-x64/bin/bun"
GODOT = ROOT / "tests/interop/godot/godot4"

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECS = int(os.environ.get("BENCH_SECS", "5"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
SERVER_CPU, CLIENT_CPU = "0", "1"

port_counter = [21000]


def next_port():
    port_counter[0] += 1
    return port_counter[0]


# name -> (command builder, loadgen protocol for echo/storm)
def server_cmd(name, port):
    b = TARGET
    return {
        "raw-tcp": ([str(b / "raw_echo"), str(port)], "raw"),
        "multipeer": ([str(b / "mp_echo"), str(port)], "ws"),
        "multipeer-mio": ([str(b / "mpmio_echo"), str(port)], "godot"),
        "tokio-tungstenite": ([str(b / "tt_echo"), str(port)], "ws"),
        "fastwebsockets": ([str(b / "fws_echo"), str(port)], "ws"),
        "bun": ([str(BUN), str(BENCH / "bun/echo.js"), str(port)], "ws"),
        # Relay servers.
        "multipeer-serve": ([str(b / "multipeer"), "serve", "--listen", f"127.0.0.1:{port}", "--quiet",
                             "--max-peers", "60000"], "godot"),
        "bun-pubsub": ([str(BUN), str(BENCH / "bun/pubsub.js"), str(port)], "bun"),
        "godot-4.6.3": ([str(GODOT), "-s", str(BENCH / "godot/relay_server.gd")], "godot"),
    }[name]


def wait_port(port, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def loadavg():
    return os.getloadavg()[0]


def children_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def busy_seconds():
    """CPU time all processors spent busy since boot, from /proc/stat."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_seconds(pid):
    """utime + stime of a process (all its threads), or None once it is gone."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_case(server, args_fn, log):
    """Starts `server` pinned to CPU 0, runs the load generator pinned to CPU 1, stops the server."""
    port = next_port()
    cmd, proto = server_cmd(server, port)
    env = dict(os.environ, MP_PORT=str(port), MP_TIMEOUT="300")
    srv = subprocess.Popen(["taskset", "-c", SERVER_CPU] + cmd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_port(port, 30 if server.startswith("godot") else 15):
            return {"error": "server did not start"}
        # A connection the readiness probe opened must not count: let the server settle.
        time.sleep(0.3)
        lg = ["taskset", "-c", CLIENT_CPU, str(TARGET / "loadgen")] + args_fn(f"127.0.0.1:{port}", proto, srv.pid)
        load_before = loadavg()
        # Quietness: CPU time of everything but the server and the load generator over the run.
        busy0, srv0, kids0, t0 = busy_seconds(), process_seconds(srv.pid), children_seconds(), time.time()
        out = subprocess.run(lg, capture_output=True, text=True, timeout=300)
        busy1, srv1, kids1, t1 = busy_seconds(), process_seconds(srv.pid), children_seconds(), time.time()
        other = None
        if srv0 is not None and srv1 is not None:
            other = max(0.0, (busy1 - busy0) - (srv1 - srv0) - (kids1 - kids0)) / ((t1 - t0) * os.cpu_count())
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        try:
            res = json.loads(line)
        except json.JSONDecodeError:
            res = {"error": (out.stderr or "no output")[-300:]}
        res["load_before"] = load_before
        res["other_cpu_share"] = other
        return res
    finally:
        # Godot's wrapper execs the engine in the same process group; kill only what we started.
        try:
            os.killpg(srv.pid, 15)
        except ProcessLookupError:
            pass
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(srv.pid, 9)
            srv.wait()
        time.sleep(0.3)


ECHO_SERVERS = ["raw-tcp", "multipeer", "multipeer-mio", "bun", "tokio-tungstenite", "fastwebsockets"]
ECHO_CASES = [
    # (label, conns, size, inflight)
    ("100 x 20 B, 1 in flight", 100, 20, 1),
    ("100 x 20 B, 16 in flight", 100, 20, 16),
    ("500 x 16 KiB, 1 in flight", 500, 16384, 1),
    ("10 x 64 KiB, 4 in flight", 10, 65536, 4),
]
RELAY_SERVERS = ["multipeer-serve", "bun-pubsub", "godot-4.6.3"]
RELAY = (100, 64, 20)  # clients, bytes, messages per second per client
# A second, heavier rate probes capacity: where Godot saturates, delivered/s is what it can do.
RELAY_HEAVY = (100, 64, 60)
STORM_SERVERS = ["multipeer", "multipeer-mio", "bun", "tokio-tungstenite", "fastwebsockets"]
STORM = (10000, 100, 2)  # connections, concurrent handshakes, idle seconds before weighing
HELD = (19000, 200, 3)
CORE_HELD = 50000


def med(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def main():
    RESULTS.mkdir(exist_ok=True)
    raw = open(RESULTS / "loopback.jsonl", "w")
    results = {}  # (section, case, server) -> [rows]
    started = time.time()
    load_start = os.getloadavg()
    godot_ok = GODOT.exists() and subprocess.run([str(GODOT), "--version"], capture_output=True).returncode == 0
    relay_servers = RELAY_SERVERS if godot_ok else RELAY_SERVERS[:2]
    rounds = 1 if QUICK else ROUNDS
    secs = 2 if QUICK else SECS

    def record(section, case, server, res):
        res.update(section=section, case=case, server=server)
        raw.write(json.dumps(res) + "\n")
        raw.flush()
        results.setdefault((section, case, server), []).append(res)
        print(f"  {section} | {case} | {server}: " + ", ".join(
            f"{k}={res[k]}" for k in ("msgs_per_s", "server_cpu_us_per_msg", "deliveries_per_s", "p99_ms",
                                      "server_cpu_us_per_delivery", "handshakes_per_s", "rss_bytes_per_conn",
                                      "held", "error") if k in res), flush=True)

    for rnd in range(rounds):
        print(f"round {rnd + 1}/{rounds}", flush=True)
        for label, conns, size, inflight in ECHO_CASES:
            for server in ECHO_SERVERS:
                res = run_case(server, lambda a, p, pid: ["echo", a, str(conns), str(size), str(inflight),
                                                          str(secs), p, str(pid)], raw)
                record("echo", label, server, res)
        for n, size, rate in (RELAY, RELAY_HEAVY):
            for server in relay_servers:
                res = run_case(server, lambda a, p, pid: ["relay", a, str(n), str(size), str(rate), str(secs),
                                                          "bun" if server == "bun-pubsub" else "godot", str(pid)],
                               raw)
                record("relay", f"{n} clients x {size} B at {rate}/s each", server, res)
        for server in STORM_SERVERS:
            n, conc, hold = STORM
            res = run_case(server, lambda a, p, pid: ["storm", a, str(n), str(conc), str(hold), p, str(pid)], raw)
            record("storm", f"{n} connections", server, res)
    # Most connections one process may hold here (RLIMIT_NOFILE), once, on the mio server.
    n, conc, hold = HELD
    # multipeer-mio with relay off: with SceneMultiplayer's relay on, every join is announced to
    # every peer (ADD_PEER, as Godot does), which makes a join storm quadratic.
    res = run_case("multipeer-mio", lambda a, p, pid: ["storm", a, str(n), str(conc), str(hold), p, str(pid)], raw)
    record("held", f"{n} connections", "multipeer-mio", res)
    # The core itself, without sockets (so without the descriptor limit): CORE_HELD connections
    # through the real handshake on one thread.
    out = subprocess.run([str(TARGET / "core_held"), str(CORE_HELD)], capture_output=True, text=True, timeout=300)
    try:
        res = json.loads(out.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        res = {"error": (out.stderr or "no output")[-300:]}
    record("held", f"{CORE_HELD} in memory", "multipeer core", res)

    raw.close()
    write_report(results, started, load_start, godot_ok, rounds, secs)


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - a missing tool is reported, not fatal
        return "n/a"


def lock_version(name):
    text = (BENCH / "Cargo.lock").read_text()
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), text)
    return m.group(1) if m else "?"


def criterion_rows():
    """Median times of the codec benches, from criterion's estimates."""
    base = TARGET.parent / "criterion"
    rows = {}
    if not base.exists():
        return rows
    for est in base.glob("**/new/estimates.json"):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        e = json.loads(est.read_text())
        rows[(bench["group_id"], bench.get("function_id") or "", bench.get("value_str") or "")] = \
            (e["median"]["point_estimate"], bench.get("throughput"))
    return rows


def fmt(v, digits=0):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def write_report(results, started, load_start, godot_ok, rounds, secs):
    lines = []
    w = lines.append
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    w("# Benchmarks")
    w("")
    w("Written by `tests/bench/run.sh` (issue 7). Every figure below comes from one run of that "
      "script on one machine: our code and its peers, same loopback, same load generator, "
      "reported as medians and ratios. Reproduce with:")
    w("")
    w("```sh\ntests/bench/run.sh            # about 25 minutes; BENCH_QUICK=1 for a 1-round smoke run\n```")
    w("")
    w("## Machine and versions")
    w("")
    loads = sorted(r.get("load_before", 0.0) for rows in results.values() for r in rows)
    w(f"- CPU: {cpu}, {os.cpu_count()} cores; kernel {platform.release()}; 1-minute load average "
      f"before each run: {loads[0]:.2f} to {loads[-1]:.2f} (median {statistics.median(loads):.2f}).")
    others = sorted(r["other_cpu_share"] for rows in results.values() for r in rows
                    if isinstance(r.get("other_cpu_share"), (int, float)))
    if others:
        # The load average counts the benchmark's own two processes, so quietness is measured as
        # the CPU time everything else used while each run's load generator ran.
        w(f"- Other work during the runs (CPU time of every process but the server and the load "
          f"generator, as a share of both cores): median {100 * statistics.median(others):.1f} %, "
          f"at most {100 * others[-1]:.1f} %.")
        if others[-1] > 0.05:
            w("- **The machine was not quiet in every run** (other work above 5 % of the cores in some). "
              "Messages per second then depend on the CPU share each process got; server CPU per message "
              "is the figure that survives contention. See the per-run `other_cpu_share` in "
              "`tests/bench/results/loopback.jsonl`.")
    elif loads[-1] > 0.5:
        w("- **The machine may not have been quiet** (load average above 0.5 before some runs; this "
          "run did not record other processes' CPU time).")
    head = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "core", "io-mio"],
                           capture_output=True, text=True).stdout.strip()
    w(f"- Code: commit {head}" + (" with uncommitted changes in core/ or io-mio/ (work in progress of other "
                                   "engineers at the time of the run)" if dirty else "") + ".")
    w(f"- {version(['rustc', '--version'])}; Bun {version([str(BUN), '--version'])} "
      f"(npm `@oven/bun-linux-x64`); Godot {version([str(GODOT), '--version']) if godot_ok else 'not installed'}.")
    w(f"- Crates: tungstenite {lock_version('tungstenite')}, tokio-tungstenite {lock_version('tokio-tungstenite')}, "
      f"fastwebsockets {lock_version('fastwebsockets')}, embedded-websocket {lock_version('embedded-websocket')}, "
      f"tokio {lock_version('tokio')}, hyper {lock_version('hyper')}, mio {lock_version('mio')}, "
      f"criterion {lock_version('criterion')}.")
    w(f"- Pinning: server `taskset -c {SERVER_CPU}`, load generator `taskset -c {CLIENT_CPU}`. "
      f"{rounds} rounds, servers alternating within each round, {secs} s measured per run after 1 s of warm-up; "
      "a fresh server process per run. Server CPU is utime+stime of the server process "
      "(all its threads) over the measured window, from `/proc/PID/stat`.")
    w("")

    # ----- goals -----
    def em(case, server, key):
        return med(results.get(("echo", case, server), []), key)

    def check(ok):
        return "–" if ok is None else ("holds" if ok else "**does not hold**")

    def le(a, b, factor=1.0):
        return None if a is None or b is None else a <= b * factor

    def ge(a, b, factor=1.0):
        return None if a is None or b is None else a >= b * factor

    w("## Goals of issue 7, as measured in this run")
    w("")
    w("| goal | measured | verdict |")
    w("|---|---|---|")
    c16 = ECHO_CASES[1][0]
    mp_r, bun_r = em(c16, "multipeer", "msgs_per_s"), em(c16, "bun", "msgs_per_s")
    mp_c, bun_c = em(c16, "multipeer", "server_cpu_us_per_msg"), em(c16, "bun", "server_cpu_us_per_msg")
    w(f"| echo 100×20 B, 16 in flight: msgs/s ≥ 1.0× Bun | {ratio(mp_r, bun_r)} | {check(ge(mp_r, bun_r))} |")
    w(f"| … and server CPU/msg ≤ Bun | {fmt(mp_c, 3)} vs {fmt(bun_c, 3)} µs ({ratio(mp_c, bun_c)}) | {check(le(mp_c, bun_c))} |")
    for case in (ECHO_CASES[2][0], ECHO_CASES[3][0]):
        m, f, r = (em(case, s_, "server_cpu_us_per_msg") for s_ in ("multipeer", "fastwebsockets", "raw-tcp"))
        w(f"| echo {case}: server CPU/msg ≤ fastwebsockets | {fmt(m, 2)} vs {fmt(f, 2)} µs ({ratio(m, f)}) | {check(le(m, f))} |")
        w(f"| … and within 1.2× raw TCP | {ratio(m, r)} of raw TCP's {fmt(r, 2)} µs | {check(le(m, r, 1.2))} |")
    rows_c = criterion_rows()

    def gib(lib):
        t = rows_c.get(("decode/server/binary", lib, "64KiB"))
        return 65536 / t[0] if t else None
    d = {lib: gib(lib) for lib in ("memcpy", "multipeer", "tungstenite", "fastwebsockets")}
    w(f"| decode+unmask 64 KiB (server role) ≥ 0.5× memcpy | {ratio(d['multipeer'], d['memcpy'])} | {check(ge(d['multipeer'], d['memcpy'], 0.5))} |")
    w(f"| … ≥ 1.5× tungstenite | {ratio(d['multipeer'], d['tungstenite'])} | {check(ge(d['multipeer'], d['tungstenite'], 1.5))} |")
    w(f"| … ≥ 1.0× fastwebsockets | {ratio(d['multipeer'], d['fastwebsockets'])} | {check(ge(d['multipeer'], d['fastwebsockets']))} |")
    rk = f"{RELAY[0]} clients x {RELAY[1]} B at {RELAY[2]}/s each"
    rm = results.get(("relay", rk, "multipeer-serve"), [])
    rb = results.get(("relay", rk, "bun-pubsub"), [])
    rg = results.get(("relay", rk, "godot-4.6.3"), [])
    a, b = med(rm, "server_cpu_us_per_delivery"), med(rb, "server_cpu_us_per_delivery")
    w(f"| relay: server CPU/delivery ≤ Bun | {fmt(a, 3)} vs {fmt(b, 3)} µs ({ratio(a, b)}) | {check(le(a, b))} |")
    hk = f"{RELAY_HEAVY[0]} clients x {RELAY_HEAVY[1]} B at {RELAY_HEAVY[2]}/s each"
    hm = results.get(("relay", hk, "multipeer-serve"), [])
    hg = results.get(("relay", hk, "godot-4.6.3"), [])
    a, b = med(hm, "deliveries_per_s"), med(hg, "deliveries_per_s")
    w(f"| relay: ≥ 3× Godot 4.6.3's deliveries/s (at {RELAY_HEAVY[2]}/s each) | {ratio(a, b)} | {check(ge(a, b, 3.0))} |")
    a, b = med(rm, "p99_ms"), med(rg, "p99_ms")
    w(f"| … with lower p99 | {fmt(a, 2)} vs {fmt(b, 2)} ms | {check(None if a is None or b is None else a < b)} |")
    sk = f"{STORM[0]} connections"
    for srv in ("multipeer", "multipeer-mio"):
        v = med(results.get(("storm", sk, srv), []), "rss_bytes_per_conn")
        w(f"| RSS per idle connection ≤ 1.5 KiB ({srv}) | {fmt(v)} B | {check(le(v, 1536))} |")
    hb = med(results.get(("storm", sk, "bun"), []), "handshakes_per_s")
    for srv in ("multipeer", "multipeer-mio"):
        v = med(results.get(("storm", sk, srv), []), "handshakes_per_s")
        w(f"| handshakes/s ≥ Bun ({srv}) | {ratio(v, hb)} | {check(ge(v, hb))} |")
    core = results.get(("held", f"{CORE_HELD} in memory", "multipeer core"), [])
    core_held = core[0].get("held") if core else None
    w(f"| 50,000 connections held on one thread | sockets: not measurable here (20,000-descriptor hard limit "
      f"per process, see below); the core without sockets: {fmt(core_held)} held | "
      f"{'– (core: holds)' if core_held == CORE_HELD else '–'} |")
    w("")

    # ----- echo -----
    w("## Echo (loopback, medians)")
    w("")
    w("msgs/s counts echoed messages received by the load generator; CPU/msg is server CPU time "
      "per echoed message. Ratios are multipeer (`mp_echo`: the core on a minimal mio loop) divided by "
      "each peer: a msgs/s ratio above 1 means multipeer is faster, a CPU/msg ratio below 1 means it "
      "spends less CPU per message. With 1 message in flight the rate is bound by round trips (both "
      "processes wake per message), so compare CPU/msg there; the 16-in-flight case is the throughput "
      "test, where raw TCP shows the load generator's ceiling. Each ratio is "
      "of medians; multipeer-mio is the same echo through multipeer-mio's multiplayer server "
      "(Godot 4 framing, relay off).")
    w("")
    for label, *_ in ECHO_CASES:
        w(f"### {label}")
        w("")
        w("| server | msgs/s | server CPU µs/msg | multipeer msgs/s ratio | multipeer CPU/msg ratio |")
        w("|---|---:|---:|---:|---:|")
        mp = results.get(("echo", label, "multipeer"), [])
        mp_rate, mp_cpu = med(mp, "msgs_per_s"), med(mp, "server_cpu_us_per_msg")
        for server in ECHO_SERVERS:
            rows = results.get(("echo", label, server), [])
            rate, cpu_msg = med(rows, "msgs_per_s"), med(rows, "server_cpu_us_per_msg")
            w(f"| {server} | {fmt(rate)} | {fmt(cpu_msg, 3)} | "
              f"{'' if server == 'multipeer' else ratio(mp_rate, rate)} | "
              f"{'' if server == 'multipeer' else ratio(mp_cpu, cpu_msg)} |")
        w("")
        raw_rate = med(results.get(("echo", label, "raw-tcp"), []), "msgs_per_s")
        best_ws = max((med(results.get(("echo", label, s), []), "msgs_per_s") or 0) for s in ECHO_SERVERS[1:])
        verdict = "yes" if raw_rate and raw_rate > best_ws else "NO"
        w(f"Load generator not the bottleneck (raw TCP echo faster than every WebSocket server): **{verdict}** "
          f"({fmt(raw_rate)} vs best WebSocket {fmt(best_ws)} msgs/s).")
        w("")

    # ----- relay -----
    w("## Relay broadcast (loopback, medians)")
    w("")
    n, size, rate = RELAY
    w(f"{n} clients each send a {size}-byte message {rate} times a second to every other client "
      f"(offered: {n * rate * (n - 1):,} deliveries/s). multipeer is `multipeer serve` (multipeer-mio, "
      "Godot 4 SceneMultiplayer relay: clients send `RELAY(0, payload)`); Bun is `ws.publish` to one "
      "topic; Godot is 4.6.3 headless with `server_relay` on and `Engine.max_fps = 0` (it spins a "
      "core, so its CPU figure is not comparable). Latency is send-to-delivery, measured by the load "
      "generator (one clock).")
    w("")
    w(f"A second run at {RELAY_HEAVY[2]} messages/s per client ({RELAY_HEAVY[0] * RELAY_HEAVY[2] * (RELAY_HEAVY[0] - 1):,} "
      "deliveries/s offered) probes capacity.")
    w("")
    w("| offered | server | deliveries/s | delivered | p50 ms | p99 ms | server CPU µs/delivery |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for n_, size_, rate_ in (RELAY, RELAY_HEAVY):
        for server in RELAY_SERVERS:
            rows = results.get(("relay", f"{n_} clients x {size_} B at {rate_}/s each", server), [])
            w(f"| {rate_}/s each | {server} | {fmt(med(rows, 'deliveries_per_s'))} | "
              f"{fmt(med(rows, 'delivered_fraction'), 3)} | "
              f"{fmt(med(rows, 'p50_ms'), 2)} | {fmt(med(rows, 'p99_ms'), 2)} | "
              f"{fmt(med(rows, 'server_cpu_us_per_delivery'), 3)} |")
    w("")

    # ----- storm -----
    n, conc, hold = STORM
    w("## Connect storm and idle memory (medians)")
    w("")
    w(f"{n:,} connections, {conc} handshakes in flight; then {hold} s idle, and the server's RSS "
      "growth divided by the connections held.")
    w("")
    w("| server | handshakes/s | RSS per idle connection (bytes) | multipeer handshakes/s ratio |")
    w("|---|---:|---:|---:|")
    mp_hs = med(results.get(("storm", f"{n} connections", "multipeer"), []), "handshakes_per_s")
    for server in STORM_SERVERS:
        rows = results.get(("storm", f"{n} connections", server), [])
        hs = med(rows, "handshakes_per_s")
        w(f"| {server} | {fmt(hs)} | {fmt(med(rows, 'rss_bytes_per_conn'))} | "
          f"{'' if server == 'multipeer' else ratio(mp_hs, hs)} |")
    w("")
    held = results.get(("held", f"{HELD[0]} connections", "multipeer-mio"), [])
    if held:
        h = held[0]
        w(f"Held on one thread (multipeer-mio server, relay off): {h.get('held', '–'):,} of {HELD[0]:,} connections "
          f"open after {HELD[2]} s idle, {fmt(h.get('rss_bytes_per_conn'))} bytes RSS each. "
          "This machine caps a process at 20,000 descriptors (hard `RLIMIT_NOFILE`, not raisable without "
          "CAP_SYS_RESOURCE), so 50,000 cannot be held by one process here.")
        w("")
    core = results.get(("held", f"{CORE_HELD} in memory", "multipeer core"), [])
    if core and "held" in core[0]:
        c = core[0]
        w(f"Held by the core without sockets (`core_held`: `peer::Server` on one thread, relay off, every "
          f"connection through the real upgrade and id message): {c['held']:,} of {CORE_HELD:,}, "
          f"{fmt(c.get('rss_bytes_per_conn'))} bytes of RSS each once idle (the server's own bookkeeping "
          f"included: peer table, slot vector grown by doubling), {fmt(c.get('handshakes_per_s'))} handshakes/s "
          "(no syscalls: the core's own cost).")
        w("")

    # ----- codec -----
    rows = criterion_rows()
    if rows:
        w("## Codec micro-benchmarks (criterion, medians, payload GiB/s)")
        w("")
        w("Decode = frame bytes in memory → message in memory the library owns (header, unmask, UTF-8 "
          "for text). Encode = header (+ mask for a client) into the library's output. Run pinned to "
          f"CPU {SERVER_CPU}. Source: `tests/bench/benches/codec.rs`.")
        stamps = [p.stat().st_mtime for p in (TARGET.parent / "criterion").glob("**/new/estimates.json")]
        if stamps:
            # BENCH_SKIP_CODEC keeps the previous codec results: say when they were taken.
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(min(stamps)))
            w(f"Measured {when} (by the codec phase of `run.sh`; `BENCH_SKIP_CODEC=1` keeps earlier results).")
        w("")
        libs = ["memcpy", "multipeer", "tungstenite", "fastwebsockets", "embedded-websocket"]
        sizes = ["16B", "125B", "1KiB", "16KiB", "64KiB", "1MiB"]
        nbytes = {"16B": 16, "125B": 125, "1KiB": 1024, "16KiB": 16384, "64KiB": 65536, "1MiB": 1 << 20}
        groups = sorted({g for (g, _, _) in rows if not g.startswith("handshake")})
        for g in groups:
            w(f"### {g}")
            w("")
            w("| size | " + " | ".join(libs) + " | multipeer/memcpy | multipeer/tungstenite | "
              "multipeer/fastwebsockets |")
            w("|---|" + "---:|" * (len(libs) + 3))
            for s in sizes:
                gibs = {}
                for lib in libs:
                    t = rows.get((g, lib, s))
                    gibs[lib] = nbytes[s] / t[0] * 1e9 / (1 << 30) if t else None
                w(f"| {s} | " + " | ".join(fmt(gibs[l], 2) for l in libs) + " | "
                  + " | ".join(ratio(gibs["multipeer"], gibs[o]) for o in ("memcpy", "tungstenite", "fastwebsockets"))
                  + " |")
            w("")
        w("### Server handshake (parse request + accept key + response)")
        w("")
        w("| library | handshakes/s |")
        w("|---|---:|")
        for lib in ["multipeer", "tungstenite", "embedded-websocket"]:
            t = rows.get(("handshake/server", lib, ""))
            w(f"| {lib} | {fmt(1e9 / t[0]) if t else '–'} |")
        w("")
        w("fastwebsockets has no handshake of its own (it uses hyper); its rate is in the connect storm.")
        w("")
        w("### Copying 64 KiB: one memcpy against 2 KiB blocks")
        w("")
        w("Why the core copies payloads in 2 KiB blocks (`core/src/copy.rs`): glibc copies large sizes "
          "with `rep movsb`, which this CPU runs slowly when the destination lies a few bytes past the "
          "source modulo 4 KiB, where queued payloads systematically land.")
        w("")
        w("| destination vs source (mod 4 KiB) | memcpy GiB/s | 2 KiB blocks GiB/s |")
        w("|---|---:|---:|")
        for case in ["dst=src", "dst=src+5", "dst=src-5"]:
            vals = []
            for fn in ["memcpy", "blocks-2KiB"]:
                t = rows.get(("copy/64KiB", fn, case))
                vals.append(fmt(65536 / t[0] * 1e9 / (1 << 30), 2) if t else "–")
            w(f"| {case} | {vals[0]} | {vals[1]} |")
        w("")

    w("## Profile")
    w("")
    w("What bounds the goals that do not hold, with callgrind evidence and the proposed fixes: "
      "`tests/bench/PROFILE.md` (reproduce with `tests/bench/profile.sh`).")
    w("")
    w("## Raw data")
    w("")
    w("Every run's JSON line: `tests/bench/results/loopback.jsonl` (not committed). Servers: "
      "`tests/bench/src/bin/*.rs`, `tests/bench/bun/*.js`, `tests/bench/godot/relay_server.gd`; load "
      "generator: `tests/bench/src/bin/loadgen.rs`.")
    w("")
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print(f"wrote {ROOT / 'BENCHMARKS.md'} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "report-only":
        # Rewrites BENCHMARKS.md from the last run's results/loopback.jsonl (and criterion's files).
        res = {}
        for line in open(RESULTS / "loopback.jsonl"):
            r = json.loads(line)
            res.setdefault((r["section"], r["case"], r["server"]), []).append(r)
        loads = [r.get("load_before", 0.0) for rows in res.values() for r in rows]
        n_rounds = max(len(rows) for rows in res.values())
        write_report(res, time.time(), (max(loads), max(loads), max(loads)),
                     any(k[2].startswith("godot") for k in res), n_rounds, SECS)
    else:
        main()
