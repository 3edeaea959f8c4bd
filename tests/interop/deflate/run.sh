#!/usr/bin/env bash
# permessage-deflate (RFC 7692) interop: our server and client against peers nobody here wrote,
# compressing both ways, all on loopback inside a private network namespace that has only `lo`.
#
#   chromium-client  headless Chromium's WebSocket (offer `permessage-deflate;
#                    client_max_window_bits`) -> ws_echo_mio --permessage-deflate
#   node-client      npm ws client (perMessageDeflate)    -> ws_echo_mio --permessage-deflate
#   python-client    PyPI websockets client (compression) -> ws_echo_mio --permessage-deflate
#   node-server      ws_deflate_client -> npm ws echo server (perMessageDeflate on, threshold 0)
#   python-server    ws_deflate_client -> websockets echo server (its 12-bit windows)
#
# Each exchanges JSON text of about 200 B, 2 KiB and 32 KiB, echoed and compared. Compression is
# proven by our side's own counters, not by the peer's word: the server prints each connection's
# deflate counters when it goes, the client prints its own; a scenario passes only when messages
# went compressed in both directions. Prints `N passed, M failed`; exits 1 on any failure.
#
# usage: tests/interop/deflate/run.sh [--no-install] [SCENARIO...]
# Installs what it needs from the registries (skipped with --no-install when present): Debian
# chromium (apt), npm ws, PyPI websockets in a venv, pinned; npm and PyPI packages go to
# tests/.tools/deflate (gitignored). Needs root for apt and `unshare -n`. Logs: tests/reports/deflate/.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
TOOLS="$REPO/tests/.tools/deflate"
LOGS="$REPO/tests/reports/deflate"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$CARGO_TARGET_DIR/debug"
WS_VERSION=8.23.0
WEBSOCKETS_VERSION=17.4
ROUNDS="${ROUNDS:-5}"
ALL=(chromium-client node-client python-client node-server python-server)

install_tools() {
  if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || return 1
  fi
  mkdir -p "$TOOLS"
  if [ "$(node -p "require('$TOOLS/node_modules/ws/package.json').version" 2>/dev/null)" != "$WS_VERSION" ]; then
    printf '{"private": true, "dependencies": {"ws": "%s"}}\n' "$WS_VERSION" >"$TOOLS/package.json"
    (cd "$TOOLS" && npm install --no-audit --no-fund --silent) || return 1
  fi
  if ! "$TOOLS/venv/bin/python3" -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
    python3 -m venv "$TOOLS/venv" &&
      "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION" || return 1
  fi
}

if [ "${MP_DEFLATE_INNER:-}" != 1 ]; then
  started=$(date +%s)
  if [ "${1:-}" = "--no-install" ]; then shift; else install_tools || { echo "install failed"; echo "0 passed, 1 failed"; exit 1; }; fi
  (cd "$REPO" && cargo build -q -p multipeer-tests --bin ws_echo_mio --bin ws_deflate_client) ||
    { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
  rm -rf "$LOGS"
  mkdir -p "$LOGS"
  # Nothing can leave this machine: the namespace has only loopback.
  MP_DEFLATE_INNER=1 unshare -n bash "$0" "$@"
  rc=$?
  echo "deflate interop runtime: $(( $(date +%s) - started )) s"
  exit $rc
fi

ip link set lo up
export NODE_PATH="$TOOLS/node_modules"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT

# start LOG CMD...: starts a server that prints `listening ADDR` first; sets ADDR and PID.
start() {
  local log="$1"; shift
  : >"$log" # before the server: the first `sed` must not race the redirection
  "$@" >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  ADDR=""
  for _ in $(seq 200); do
    ADDR="$(sed -n '1s/^listening //p' "$log" || true)"
    [ -n "$ADDR" ] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not start:"; cat "$log"
  return 1
}

# compressed_both_ways LINE: the deflate counters in LINE show messages compressed each way.
compressed_both_ways() {
  local sent got
  sent="$(sed -n 's/.*messages_compressed: \([0-9]*\).*/\1/p' <<<"$1")"
  got="$(sed -n 's/.*messages_inflated: \([0-9]*\).*/\1/p' <<<"$1")"
  [ "${sent:-0}" -gt 0 ] && [ "${got:-0}" -gt 0 ]
}

# Our server for the *-client scenarios, shared: each connection adds a `deflate` line at release.
start "$LOGS/ws_echo_mio.log" "$BIN/ws_echo_mio" --permessage-deflate 127.0.0.1:0 || { echo "0 passed, 1 failed"; exit 1; }
OUR_ADDR="$ADDR"

# against_our_server NAME CMD...: runs a foreign client; passes when it reports ok/done and our
# server's line for that connection shows compression both ways.
against_our_server() {
  local name="$1" before line; shift
  before="$(grep -c '^deflate ' "$LOGS/ws_echo_mio.log")"
  if ! timeout 60 "$@" >"$LOGS/$name.log" 2>&1; then
    echo "FAIL $name: $(tail -n 1 "$LOGS/$name.log")"; return 1
  fi
  for _ in $(seq 100); do
    [ "$(grep -c '^deflate ' "$LOGS/ws_echo_mio.log")" -gt "$before" ] && break
    sleep 0.05
  done
  line="$(grep '^deflate ' "$LOGS/ws_echo_mio.log" | sed -n "$((before + 1))p")"
  if [ -z "$line" ] || ! compressed_both_ways "$line"; then
    echo "FAIL $name: our server's counters show no compression both ways: ${line:-no deflate line}"; return 1
  fi
  echo "ok   $name: $(grep -m1 '^extensions' "$LOGS/$name.log"); server ${line#deflate * }"
}

# against_their_server NAME CMD...: starts a foreign echo server; passes when our client's
# echoes match and its counters show compression both ways.
against_their_server() {
  local name="$1" stats; shift
  start "$LOGS/$name-server.log" "$@" || { echo "FAIL $name: server did not start"; return 1; }
  if ! timeout 60 "$BIN/ws_deflate_client" "ws://$ADDR/" "$ROUNDS" >"$LOGS/$name.log" 2>&1; then
    echo "FAIL $name: $(tail -n 1 "$LOGS/$name.log")"; kill "$PID"; return 1
  fi
  kill "$PID"
  stats="$(grep '^stats ' "$LOGS/$name.log")"
  compressed_both_ways "$stats" || { echo "FAIL $name: no compression both ways: $stats"; return 1; }
  echo "ok   $name: $(grep -m1 '^extensions' "$LOGS/$name-server.log"); client $(grep '^agreed' "$LOGS/$name.log") $stats"
}

run_one() {
  case "$1" in
    chromium-client) against_our_server "$1" python3 "$HERE/chromium_deflate.py" "ws://$OUR_ADDR/" "$ROUNDS" ;;
    node-client) against_our_server "$1" node "$HERE/deflate_peer.js" client "ws://$OUR_ADDR/" "$ROUNDS" ;;
    python-client) against_our_server "$1" "$TOOLS/venv/bin/python3" "$HERE/deflate_peer.py" client "ws://$OUR_ADDR/" "$ROUNDS" ;;
    node-server) against_their_server "$1" node "$HERE/deflate_peer.js" server ;;
    python-server) against_their_server "$1" "$TOOLS/venv/bin/python3" "$HERE/deflate_peer.py" server ;;
    *) echo "FAIL $1: unknown scenario (known: ${ALL[*]})"; return 1 ;;
  esac
}

passed=0
failed=0
for scenario in "${@:-${ALL[@]}}"; do
  if run_one "$scenario"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
