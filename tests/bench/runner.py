#!/usr/bin/env python3
"""Loopback benchmark runner (issues 7 and 13); run through tests/bench/run.sh, which builds first.

Every server runs pinned to CPU 0 and the load generator to CPU 1 (taskset). Servers alternate
A B C ... A B C within each round, every case is repeated ROUNDS times, and a fresh server
process serves each run (so memory figures start from a clean process). Medians and ratios go to
BENCHMARKS.md at the repository root; raw JSON lines to tests/bench/results/.

Partial runs (long cases, a busy machine): BENCH_SECTIONS=echo,relay,storm,held picks sections,
BENCH_CASES='16 KiB;64 KiB;20 B, 16' keeps the echo cases whose label contains one of the
';'-separated parts (spaces ignored), BENCH_SERVERS=raw-tcp,bun,... keeps those servers. A partial run writes its report to
tests/bench/results/partial.md instead of BENCHMARKS.md.
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

# Five rounds: this VM's speed moves between rounds (raw TCP's own echo rate spreads 15–35 %
# over three), and the median of five is less at the mercy of one slow round.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECS = int(os.environ.get("BENCH_SECS", "5"))
QUICK = os.environ.get("BENCH_QUICK") == "1"


def _env_list(name, sep=","):
    v = os.environ.get(name, "").strip()
    return [x.strip() for x in v.split(sep) if x.strip()] if v else None


ONLY_SECTIONS = _env_list("BENCH_SECTIONS")
ONLY_CASES = _env_list("BENCH_CASES", ";")
ONLY_SERVERS = _env_list("BENCH_SERVERS")
PARTIAL = bool(ONLY_SECTIONS or ONLY_CASES or ONLY_SERVERS)


def wanted_section(name):
    return ONLY_SECTIONS is None or name in ONLY_SECTIONS


def wanted_case(label):
    return ONLY_CASES is None or any(w.replace(" ", "") in label.replace(" ", "") for w in ONLY_CASES)


def wanted_servers(servers):
    return [s for s in servers if ONLY_SERVERS is None or s in ONLY_SERVERS]
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
        # The tests' echo server on the plain WebSocketServer (built by run.sh from the main
        # workspace, like `multipeer`).
        "multipeer-mio-plain": ([str(b / "ws_echo_mio"), f"127.0.0.1:{port}", "60000"], "ws"),
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


# The public adapters first (the headline), then the core on a hand-rolled loop (the limit),
# then the peers.
ECHO_SERVERS = ["multipeer-mio-plain", "multipeer-mio", "multipeer", "raw-tcp", "bun", "tokio-tungstenite",
                "fastwebsockets"]
SERVER_LABEL = {
    "multipeer-mio-plain": "multipeer-mio plain (`WebSocketServer`)",
    "multipeer-mio": "multipeer-mio multiplayer (`Server`)",
    "multipeer": "limit: the core on a hand-rolled mio loop (`mp_echo`)",
    "multipeer-serve": "`multipeer serve`",
}
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
STORM_SERVERS = ["multipeer-mio-plain", "multipeer-mio", "multipeer", "bun", "tokio-tungstenite", "fastwebsockets"]
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
            if not wanted_section("echo") or not wanted_case(label):
                continue
            for server in wanted_servers(ECHO_SERVERS):
                res = run_case(server, lambda a, p, pid: ["echo", a, str(conns), str(size), str(inflight),
                                                          str(secs), p, str(pid)], raw)
                record("echo", label, server, res)
        for n, size, rate in (RELAY, RELAY_HEAVY):
            if not wanted_section("relay"):
                continue
            for server in wanted_servers(relay_servers):
                res = run_case(server, lambda a, p, pid: ["relay", a, str(n), str(size), str(rate), str(secs),
                                                          "bun" if server == "bun-pubsub" else "godot", str(pid)],
                               raw)
                record("relay", f"{n} clients x {size} B at {rate}/s each", server, res)
        for server in wanted_servers(STORM_SERVERS) if wanted_section("storm") else []:
            n, conc, hold = STORM
            res = run_case(server, lambda a, p, pid: ["storm", a, str(n), str(conc), str(hold), p, str(pid)], raw)
            record("storm", f"{n} connections", server, res)
    if not wanted_section("held"):
        raw.close()
        write_report(results, started, load_start, godot_ok, rounds, secs)
        return
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


# The `## ` sections this script writes; any other section of BENCHMARKS.md is kept as it is.
GENERATED_SECTIONS = ("Machine and versions", "Goals of issue 13", "Echo (loopback", "Relay broadcast (loopback",
                      "Connect storm and idle memory", "Codec micro-benchmarks", "Profile", "Raw data")


def kept_sections(path):
    """The `## ` sections of `path` that this script does not write, in order."""
    try:
        text = path.read_text()
    except OSError:
        return []
    parts = text.split("\n## ")[1:]
    return ["## " + p for p in parts if not p.startswith(GENERATED_SECTIONS)]


def write_report(results, started, load_start, godot_ok, rounds, secs):
    lines = []
    w = lines.append
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    w("# Benchmarks")
    w("")
    w("Written by `tests/bench/run.sh` (issues 7 and 13). Every figure below comes from one run of that "
      "script on one machine: our code and its peers, same loopback, same load generator, "
      "reported as medians and ratios. Reproduce with:")
    w("")
    w("```sh\ntests/bench/run.sh            # about 35 minutes; BENCH_QUICK=1 for a 1-round smoke run\n```")
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

    def spread(case, server):
        vals = [r["msgs_per_s"] for r in results.get(("echo", case, server), [])
                if isinstance(r.get("msgs_per_s"), (int, float))]
        if len(vals) < 2 or not statistics.median(vals):
            return None
        return (max(vals) - min(vals)) / statistics.median(vals)

    def round_factors(case):
        """How fast the machine ran each round of `case`: the median over every server of its
        msgs/s in that round divided by its own median (1.0 = a typical round)."""
        per_round = {}
        for (section, c, _), rows in results.items():
            vals = [r.get("msgs_per_s") for r in rows]
            if section != "echo" or c != case or not all(isinstance(v, (int, float)) and v for v in vals):
                continue
            mid = statistics.median(vals)
            for i, v in enumerate(vals):
                per_round.setdefault(i, []).append(v / mid)
        return {i: statistics.median(f) for i, f in per_round.items() if len(f) >= 3}

    def relative_spread(case, server):
        """Spread of the server's msgs/s over the rounds once each round is divided by the
        machine's speed in that round (`round_factors`): what the server moves by itself."""
        factors = round_factors(case)
        rows = results.get(("echo", case, server), [])
        vals = [r["msgs_per_s"] / factors[i] for i, r in enumerate(rows)
                if i in factors and isinstance(r.get("msgs_per_s"), (int, float))]
        if len(vals) < 2 or not statistics.median(vals):
            return None
        return (max(vals) - min(vals)) / statistics.median(vals)

    def pct(v):
        return "–" if v is None else f"{100 * v:.0f} %"

    public = [s_ for s_ in ("multipeer-mio-plain", "multipeer-mio")]
    w("## Goals of issue 13 (the public adapters), as measured in this run")
    w("")
    w("Ratios are of medians within this run. Spread is (max − min) / median of msgs/s over the rounds; "
      "raw TCP's own spread in the same rounds is given beside it. The machine's speed moves between "
      "rounds for every server alike, so the spread is also given with each round's msgs/s divided "
      "by that round's speed (the median over all servers of their msgs/s in the round over their "
      "own median): what the server moves by itself.")
    w("")
    w("| goal | server | measured | verdict |")
    w("|---|---|---|---|")
    for label, *_ in ECHO_CASES:
        if not any(results.get(("echo", label, s_)) for s_ in public):
            continue
        large = "KiB" in label
        raw_c = em(label, "raw-tcp", "server_cpu_us_per_msg")
        bun_r, fws_r = em(label, "bun", "msgs_per_s"), em(label, "fastwebsockets", "msgs_per_s")
        for s_ in public:
            r_, c_ = em(label, s_, "msgs_per_s"), em(label, s_, "server_cpu_us_per_msg")
            if r_ is None:
                continue
            name = SERVER_LABEL.get(s_, s_)
            if "20 B, 1 in flight" in label:
                continue
            w(f"| echo {label}: msgs/s ≥ Bun | {name} | {ratio(r_, bun_r)} | {check(ge(r_, bun_r))} |")
            if large:
                w(f"| … msgs/s ≥ fastwebsockets | {name} | {ratio(r_, fws_r)} | {check(ge(r_, fws_r))} |")
            w(f"| … server CPU/msg ≤ 1.3× raw TCP | {name} | {ratio(c_, raw_c)} ({fmt(c_, 3)} vs {fmt(raw_c, 3)} µs) "
              f"| {check(le(c_, raw_c, 1.3))} |")
            if large:
                sp, raw_sp = spread(label, s_), spread(label, "raw-tcp")
                w(f"| … run-to-run spread < 10 % | {name} | {pct(sp)} (raw TCP's: {pct(raw_sp)}) "
                  f"| {check(None if sp is None else sp < 0.10)} |")
                rel = relative_spread(label, s_)
                w(f"| … the same, each round divided by the machine's speed in it | {name} | {pct(rel)} "
                  f"| {check(None if rel is None else rel < 0.10)} |")
    rk = f"{RELAY[0]} clients x {RELAY[1]} B at {RELAY[2]}/s each"
    rm = results.get(("relay", rk, "multipeer-serve"), [])
    rb = results.get(("relay", rk, "bun-pubsub"), [])
    rg = results.get(("relay", rk, "godot-4.6.3"), [])
    if rm:
        a, b = med(rm, "server_cpu_us_per_delivery"), med(rb, "server_cpu_us_per_delivery")
        w(f"| relay {RELAY[0]} clients: CPU/delivery ≤ Bun | `multipeer serve` | {fmt(a, 3)} vs {fmt(b, 3)} µs "
          f"({ratio(a, b)}) | {check(le(a, b))} |")
        a, b = med(rm, "machine_cpu_us_per_delivery"), med(rb, "machine_cpu_us_per_delivery")
        if a is not None and b is not None:
            w(f"| … machine CPU/delivery (server + unattributed kernel work) ≤ Bun | `multipeer serve` | "
              f"{fmt(a, 3)} vs {fmt(b, 3)} µs ({ratio(a, b)}) | {check(le(a, b))} |")
        a, b = med(rm, "p99_ms"), med(rb, "p99_ms")
        w(f"| … p99 ≤ Bun | `multipeer serve` | {fmt(a, 2)} vs {fmt(b, 2)} ms | {check(le(a, b))} |")
    sk = f"{STORM[0]} connections"
    hb = med(results.get(("storm", sk, "bun"), []), "handshakes_per_s")
    for srv in public:
        rows = results.get(("storm", sk, srv), [])
        if not rows:
            continue
        v = med(rows, "rss_bytes_per_conn")
        w(f"| RSS per idle connection ≤ 1.5 KiB | {SERVER_LABEL.get(srv, srv)} | {fmt(v)} B | {check(le(v, 1536))} |")
        v = med(rows, "handshakes_per_s")
        w(f"| handshakes/s ≥ Bun | {SERVER_LABEL.get(srv, srv)} | {ratio(v, hb)} | {check(ge(v, hb))} |")
    w("")

    # ----- echo -----
    if any(k[0] == "echo" for k in results):
        w("## Echo (loopback, medians)")
        w("")
        w("msgs/s counts echoed messages received by the load generator; CPU/msg is server CPU time "
          "per echoed message. The headline rows are the public adapters as a user writes them: "
          "multipeer-mio's plain `WebSocketServer` (`ws_echo_mio` of tests/: `run`, `echo_all`) and its multiplayer "
          "`Server` (`mpmio_echo`: Godot 4 framing, relay off, default inbox, `forward_packet`). The "
          "limit row is the core on a minimal hand-written mio loop (`mp_echo`). With 1 message in "
          "flight the rate is bound by round trips (both processes wake per message), so compare "
          "CPU/msg there; the 16-in-flight case is the throughput test, where raw TCP shows the load "
          "generator's ceiling.")
        w("")
    for label, *_ in ECHO_CASES:
        if not any(k[0] == "echo" and k[1] == label for k in results):
            continue
        w(f"### {label}")
        w("")
        w("| server | msgs/s | spread | server CPU µs/msg | msgs/s vs Bun | msgs/s vs fastwebsockets | "
          "CPU/msg vs raw TCP |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        bun_r = em(label, "bun", "msgs_per_s")
        fws_r = em(label, "fastwebsockets", "msgs_per_s")
        raw_c = em(label, "raw-tcp", "server_cpu_us_per_msg")
        for server in ECHO_SERVERS:
            rows = results.get(("echo", label, server), [])
            if not rows:
                continue
            rate, cpu_msg = med(rows, "msgs_per_s"), med(rows, "server_cpu_us_per_msg")
            w(f"| {SERVER_LABEL.get(server, server)} | {fmt(rate)} | {pct(spread(label, server))} | {fmt(cpu_msg, 3)} | "
              f"{ratio(rate, bun_r)} | {ratio(rate, fws_r)} | {ratio(cpu_msg, raw_c)} |")
        w("")
        raw_rate = med(results.get(("echo", label, "raw-tcp"), []), "msgs_per_s")
        best_ws = max((med(results.get(("echo", label, s_), []), "msgs_per_s") or 0)
                      for s_ in ECHO_SERVERS if s_ != "raw-tcp")
        verdict = "yes" if raw_rate and raw_rate > best_ws else "NO"
        w(f"Load generator not the bottleneck (raw TCP echo faster than every WebSocket server): **{verdict}** "
          f"({fmt(raw_rate)} vs best WebSocket {fmt(best_ws)} msgs/s).")
        w("")

    # ----- relay -----
    relay_rows = any(k[0] == "relay" for k in results)
    if relay_rows:
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
        w("Machine CPU is every CPU's busy time in the window (`/proc/stat`: user, nice, system, irq, "
          "softirq) less the load generator's own: the server plus the kernel's loopback receive work, "
          "which this kernel counts as softirq against no process, so per-process CPU leaves it out.")
        w("")
        w("| offered | server | deliveries/s | delivered | p50 ms | p99 ms | server CPU µs/delivery "
          "| machine CPU µs/delivery |")
        w("|---|---|---:|---:|---:|---:|---:|---:|")
        for n_, size_, rate_ in (RELAY, RELAY_HEAVY):
            for server in RELAY_SERVERS:
                rows = results.get(("relay", f"{n_} clients x {size_} B at {rate_}/s each", server), [])
                if not rows:
                    continue
                w(f"| {rate_}/s each | {SERVER_LABEL.get(server, server)} | {fmt(med(rows, 'deliveries_per_s'))} | "
                  f"{fmt(med(rows, 'delivered_fraction'), 3)} | "
                  f"{fmt(med(rows, 'p50_ms'), 2)} | {fmt(med(rows, 'p99_ms'), 2)} | "
                  f"{fmt(med(rows, 'server_cpu_us_per_delivery'), 3)} | "
                  f"{fmt(med(rows, 'machine_cpu_us_per_delivery'), 3)} |")
        w("")

    # ----- storm -----
    if any(k[0] == "storm" for k in results):
        n, conc, hold = STORM
        w("## Connect storm and idle memory (medians)")
        w("")
        w(f"{n:,} connections, {conc} handshakes in flight; then {hold} s idle, and the server's RSS "
          "growth divided by the connections held.")
        w("")
        w("| server | handshakes/s | RSS per idle connection (bytes) | handshakes/s vs Bun |")
        w("|---|---:|---:|---:|")
        bun_hs = med(results.get(("storm", f"{n} connections", "bun"), []), "handshakes_per_s")
        for server in STORM_SERVERS:
            rows = results.get(("storm", f"{n} connections", server), [])
            if not rows:
                continue
            hs = med(rows, "handshakes_per_s")
            w(f"| {SERVER_LABEL.get(server, server)} | {fmt(hs)} | {fmt(med(rows, 'rss_bytes_per_conn'))} | "
              f"{ratio(hs, bun_hs)} |")
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

    # Sections written by other scripts or by hand (permessage-deflate, cluster, relay flow
    # control) are kept from the file this run replaces, in their place before the codec.
    for section in kept_sections(ROOT / "BENCHMARKS.md"):
        w(section.rstrip("\n"))
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
    out = RESULTS / "partial.md" if PARTIAL else ROOT / "BENCHMARKS.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out} in {time.time() - started:.0f} s")


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
