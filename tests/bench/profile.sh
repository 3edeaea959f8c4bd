#!/usr/bin/env bash
# Instruction profiles (callgrind) of the multipeer servers under the load generator, for
# PROFILE.md. perf counters do not work in this VM; callgrind counts are deterministic.
#
#   tests/bench/profile.sh            writes $CARGO_TARGET_DIR/profile/*.callgrind and a summary
#
# Every run is bounded: the load generator stops by itself after 3 s; the server is stopped
# by its pid.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
b="$CARGO_TARGET_DIR/release"
out="$CARGO_TARGET_DIR/profile"
mkdir -p "$out"
(cd "$here" && cargo build --release --bins)
(cd "$root" && cargo build --release -p multipeer-mio --bin multipeer)

profile() { # name port loadgen-args... -- server command...
  local name=$1 port=$2; shift 2
  local lg=(); while [ "$1" != -- ]; do lg+=("$1"); shift; done; shift
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/$name.callgrind" "$@" 2>"$out/$name.log" &
  local vp=$!
  sleep 2
  taskset -c 1 "$b/loadgen" "${lg[@]}" | tee "$out/$name.json"
  callgrind_control -d "$vp" >/dev/null
  sleep 1
  kill "$vp" 2>/dev/null || true
  wait "$vp" 2>/dev/null || true
  local f; f=$(ls -S "$out/$name.callgrind".* | head -1)
  echo "== $name: top functions (inclusive)"
  callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -E "multipeer|malloc|free|mem(cpy|set|move)" | head -25 | cut -c1-170
}

profile echo-20B 9601 echo 127.0.0.1:9601 100 20 16 3 ws -- "$b/mp_echo" 9601
profile echo-64KiB 9602 echo 127.0.0.1:9602 10 65536 4 3 ws -- "$b/mp_echo" 9602
profile relay-64B 9603 relay 127.0.0.1:9603 100 64 2 3 godot -- "$b/multipeer" serve --listen 127.0.0.1:9603 --quiet
