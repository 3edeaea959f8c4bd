#!/usr/bin/env bash
# The fuzzing campaign of issue 6: each target runs until its fuzzer process has used
# CPU_SECONDS of CPU time (user + system, read from /proc), not wall time, so a run that shares
# the machine with builds still gets its full share of fuzzing. Up to JOBS targets at once.
#
#   fuzz/campaign.sh [target ...]          # default: every target of `cargo fuzz list`
#   CPU_SECONDS=1800 JOBS=2 fuzz/campaign.sh server_stateful dcep
#
# Each finished run appends one tab-separated line to target/fuzz-campaign/runs.tsv:
#   target  cpu_s  wall_s  execs  corpus_files  peak_rss_mb  slowest_unit_s  result  commit
# and keeps libFuzzer's output in target/fuzz-campaign/<target>.log. Crash, leak, timeout and
# out-of-memory inputs land in fuzz/artifacts/<target>/. A run is "clean" only when libFuzzer
# stopped because we interrupted it at the CPU budget.
#
# Creating target/fuzz-campaign/pause makes the runner start no new target until it is removed
# (running targets finish), so a quiet benchmark can be scheduled between runs.
#
# FUZZ_TARGET_DIR (default fuzz/target) is where the binaries are built; a second campaign
# started beside a running one needs its own, or its build replaces the first one's binaries.
set -euo pipefail

CPU_SECONDS=${CPU_SECONDS:-1800}
JOBS=${JOBS:-1}
# A single input that takes longer than this (wall seconds) is a finding: a hang.
UNIT_TIMEOUT=${UNIT_TIMEOUT:-30}

FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$FUZZ_DIR/.." && pwd)
OUT="$REPO/target/fuzz-campaign"
mkdir -p "$OUT"
cd "$FUZZ_DIR"

FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-$FUZZ_DIR/target}
cargo +nightly fuzz build -a --target-dir "$FUZZ_TARGET_DIR"
BIN_DIR="$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release"
COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
if [[ -n "$(git -C "$REPO" status --porcelain -- core fuzz)" ]]; then
    COMMIT="$COMMIT+dirty"
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cpu_ticks() { # utime + stime of a pid, in clock ticks; empty once it is gone
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || true
}

run_target() {
    local t=$1 log="$OUT/$1.log"
    mkdir -p "corpus/$t" "artifacts/$t"
    local dirs=("corpus/$t")
    [[ -d "seeds/$t" ]] && dirs+=("seeds/$t")
    [[ -d "regressions/$t" ]] && dirs+=("regressions/$t")
    local hz start budget pid ticks status result
    hz=$(getconf CLK_TCK)
    budget=$((CPU_SECONDS * hz))
    start=$(date +%s)
    # -max_total_time is only a backstop (wall time); the CPU budget below ends the run.
    nice -n 19 "$BIN_DIR/$t" -artifact_prefix="artifacts/$t/" -timeout="$UNIT_TIMEOUT" \
        -print_final_stats=1 -max_total_time=$((CPU_SECONDS * 4)) "${dirs[@]}" >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        ticks=$(cpu_ticks "$pid")
        if [[ -n "$ticks" ]] && ((ticks >= budget)); then
            kill -INT "$pid"
            break
        fi
        sleep 5
    done
    ticks=$(cpu_ticks "$pid")
    ticks=${ticks:-$budget}
    status=0
    wait "$pid" || status=$?
    if grep -q "libFuzzer: run interrupted" "$log"; then
        result=clean
    elif grep -q "Done [0-9]* runs" "$log"; then
        result="clean (wall-time backstop)"
    else
        result="FAILED (exit $status): $(grep -m1 -E '==[0-9]+== ERROR|panicked at|deadly signal|timeout|out-of-memory' "$log" || echo see log)"
    fi
    local execs peak slowest files
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | awk '{print $2}' || true)
    peak=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | awk '{print $2}' || true)
    slowest=$(grep -oE 'stat::slowest_unit_time_sec: *[0-9]+' "$log" | awk '{print $2}' || true)
    files=$(find "corpus/$t" -type f | wc -l)
    printf '%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" $((ticks / hz)) $(($(date +%s) - start)) \
        "${execs:-?}" "$files" "${peak:-?}" "${slowest:-?}" "$result" "$COMMIT" >>"$OUT/runs.tsv"
    echo "$t: $result"
}

for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
    # Looked at once a slot is free, so a pause set while waiting for one holds.
    while [[ -e "$OUT/pause" ]]; do sleep 10; done
    run_target "$t" &
done
wait
