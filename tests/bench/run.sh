#!/usr/bin/env bash
# Reproduces BENCHMARKS.md (issue 7): builds everything, runs the codec micro-benchmarks and the
# loopback server benchmarks, and writes BENCHMARKS.md at the repository root.
#
#   tests/bench/run.sh                 full run (about 35 minutes)
#   BENCH_QUICK=1 tests/bench/run.sh   one short round, to check the setup
#   BENCH_SKIP_CODEC=1 ...             loopback only (keeps the last codec results)
#   BENCH_INSTALL_GODOT=1 ...          install Godot 4.6.3 first when missing (needs apt)
#
# Measure on a quiet machine: check `uptime` first (load average below 0.5); the report says
# when it was not.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"

echo "== build"
(cd "$here" && cargo build --release --bins)
(cd "$root" && cargo build --release -p multipeer-mio --bin multipeer && cargo build --release -p multipeer-tests --bin ws_echo_mio)
if [ ! -x "$here/bun/node_modules/@oven/bun-linux-x64/bin/bun" ]; then
  (cd "$here/bun" && npm install --no-audit --no-fund)
fi
if ! "$root/tests/interop/godot/godot4" --version >/dev/null 2>&1 && [ "${BENCH_INSTALL_GODOT:-0}" = 1 ]; then
  "$root/tests/interop/godot/install_godot4.sh"
fi

echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${BENCH_SKIP_CODEC:-0}" != 1 ]; then
  echo "== codec micro-benchmarks (pinned to CPU 0)"
  quick=()
  [ "${BENCH_QUICK:-0}" = 1 ] && quick=(--warm-up-time 0.1 --measurement-time 0.3)
  (cd "$here" && taskset -c 0 cargo bench --bench codec -- --noplot "${quick[@]}" >"$CARGO_TARGET_DIR/codec-bench.log" 2>&1) \
    || { tail -20 "$CARGO_TARGET_DIR/codec-bench.log"; exit 1; }
fi

echo "== loopback servers"
python3 "$here/runner.py"
