#!/usr/bin/env python3
"""Compares the relay figures of two `multipeer` binaries in one run.

    python3 tests/bench/relay_ab.py OLD_BINARY NEW_BINARY [ROUNDS]

Each round runs the two relay cases of runner.py (RELAY and RELAY_HEAVY: 100 clients sending
64-byte `RELAY(0, …)` broadcasts at 20/s and 60/s each) against `OLD serve` and `NEW serve`,
alternating which goes first, with the same load generator, pinning and quietness measure as
runner.py. Prints every run, then per case the medians and NEW/OLD ratios of deliveries/s,
server CPU per delivery and p99 latency, and the spread between rounds (max/min of each side),
so a change can be judged against run-to-run noise. Needs `loadgen` built in
$CARGO_TARGET_DIR/release (tests/bench: cargo build --release --bin loadgen).
"""

import statistics
import sys
from pathlib import Path

import runner

KEYS = ("deliveries_per_s", "server_cpu_us_per_delivery", "p99_ms")


def serve_cmd(binary):
    def cmd(name, port):
        assert name == "multipeer-serve"
        return ([binary, "serve", "--listen", f"127.0.0.1:{port}", "--quiet", "--max-peers", "60000"], "godot")
    return cmd


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binaries = {"old": str(Path(sys.argv[1]).resolve()), "new": str(Path(sys.argv[2]).resolve())}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    secs = runner.SECS
    results = {}
    original = runner.server_cmd
    try:
        for rnd in range(rounds):
            order = ["old", "new"] if rnd % 2 == 0 else ["new", "old"]
            for n, size, rate in (runner.RELAY, runner.RELAY_HEAVY):
                case = f"{n} clients x {size} B at {rate}/s"
                for side in order:
                    runner.server_cmd = serve_cmd(binaries[side])
                    res = runner.run_case("multipeer-serve", lambda a, p, pid: [
                        "relay", a, str(n), str(size), str(rate), str(secs), "godot", str(pid)], None)
                    results.setdefault((case, side), []).append(res)
                    shown = ", ".join(f"{k}={res.get(k)}" for k in KEYS + ("other_cpu_share", "error") if k in res)
                    print(f"round {rnd + 1} | {case} | {side}: {shown}", flush=True)
    finally:
        runner.server_cmd = original
    print()
    for case in sorted({c for c, _ in results}):
        print(case)
        for key in KEYS:
            vals = {side: [r[key] for r in results[(case, side)] if isinstance(r.get(key), (int, float))]
                    for side in ("old", "new")}
            if not vals["old"] or not vals["new"]:
                print(f"  {key}: missing")
                continue
            old, new = statistics.median(vals["old"]), statistics.median(vals["new"])
            spread = {s: max(v) / min(v) if min(v) > 0 else float("inf") for s, v in vals.items()}
            print(f"  {key}: old {old:.4g}, new {new:.4g}, new/old {new / old:.3f} "
                  f"(spread old {spread['old']:.3f}, new {spread['new']:.3f})")


if __name__ == "__main__":
    main()
