#!/usr/bin/env bash
# WebRTC mesh interop: our mesh peer (mesh_node, str0m inside) against peers nobody here wrote,
# every one signalled through our lobby server (Godot's webrtc_signaling demo protocol), all on
# loopback inside a private network namespace that has only `lo`. The lobby is the tests'
# lobby_server (multipeer-std) except in three-party, where it is `multipeer lobby` (the
# multipeer-mio command; LOBBY=multipeer or LOBBY=tests overrides it for every scenario).
#
# usage: tests/interop/webrtc/run.sh [--no-install] [SCENARIO...]
#   scenarios: rust-rust rust-ndc rust-ndc-godot-literal rust-chromium rust-aiortc
#              three-party (rust + chromium + node-datachannel) rust-stun (coturn STUN)
#
# Every pair exchanges COUNT packets on each of Godot's lanes (reliable, unreliable ordered,
# unreliable) both ways; a pair passes when each side got all reliable packets in order, no
# lane was reordered or duplicated, and each side confirmed the other's delivery (see
# mesh_node's docs for the exact rules). Prints `N passed, N failed`; exits 1 on any failure.
# In three-party every pair is judged on its own: a pair with a multipeer end is asserted, the
# Chromium <-> node-datachannel pair (no multipeer code in it) is only reported, since it
# flaked here with Godot's own demo servers too.
#
# Installs what it needs from the registries (skipped with --no-install when present):
# Debian chromium and coturn (apt), npm node-datachannel and ws, PyPI aiortc and websockets
# in a venv; npm and PyPI packages go to tests/.tools/webrtc (gitignored). Needs root for
# apt and for `unshare -n`. Logs: tests/reports/webrtc/.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
TOOLS="$REPO/tests/.tools/webrtc"
LOGS="$REPO/tests/reports/webrtc"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$CARGO_TARGET_DIR/debug"
COUNT="${COUNT:-100}"
ALL=(rust-rust rust-ndc rust-ndc-godot-literal rust-chromium rust-aiortc three-party rust-stun)

install_tools() {
  local need_apt=0
  command -v chromium >/dev/null || need_apt=1
  command -v turnserver >/dev/null || need_apt=1
  if [ "$need_apt" = 1 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium coturn >/dev/null
  fi
  bash "$HERE/install_npm.sh" "$TOOLS" || return 1
  if [ ! -x "$TOOLS/venv/bin/python3" ] || ! "$TOOLS/venv/bin/python3" -c "import aiortc, websockets" 2>/dev/null; then
    python3 -m venv "$TOOLS/venv" &&
      "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "aiortc==1.16.0" "websockets>=15" || return 1
  fi
}

if [ "${MP_WEBRTC_INNER:-}" != 1 ]; then
  started=$(date +%s)
  if [ "${1:-}" = "--no-install" ]; then shift; else install_tools || { echo "install failed"; echo "0 passed, 1 failed"; exit 1; }; fi
  (cd "$REPO" && cargo build -q -p multipeer-tests --features webrtc --bin lobby_server --bin mesh_node &&
    cargo build -q -p multipeer-mio --bin multipeer) ||
    { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
  mkdir -p "$LOGS"
  # A namespace with only loopback: nothing can leave this machine, and Chromium offers
  # 127.0.0.1 (it has no other interface).
  MP_WEBRTC_INNER=1 unshare -n bash "$0" "$@"
  rc=$?
  echo "webrtc interop runtime: $(( $(date +%s) - started )) s"
  exit $rc
fi

ip link set lo up
NODE_PATH="$TOOLS/node_modules"
export NODE_PATH
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

# start_lobby LOG [KIND]: starts a lobby server on a free port, the tests' lobby_server or
# (KIND multipeer) `multipeer lobby`; sets LOBBY_URL and LOBBY_PID.
start_lobby() {
  if [ "${LOBBY:-${2:-tests}}" = multipeer ]; then
    "$BIN/multipeer" lobby --listen 127.0.0.1:0 > "$1" 2>&1 &
    LOBBY_PID=$!
    PIDS+=("$LOBBY_PID")
    for _ in $(seq 100); do grep -q 'listening on ws://' "$1" && break; sleep 0.05; done
    LOBBY_URL="ws://$(sed -n 's|^multipeer: listening on ws://\([^ ]*\).*|\1|p' "$1" | head -1)"
    return
  fi
  "$BIN/lobby_server" 127.0.0.1:0 > "$1" 2>&1 &
  LOBBY_PID=$!
  PIDS+=("$LOBBY_PID")
  for _ in $(seq 100); do grep -q '^listening ' "$1" && break; sleep 0.05; done
  LOBBY_URL="ws://$(sed -n 's/^listening //p' "$1")"
}

# peer_cmd KIND NAME PEERS: the command line of a joining peer of that kind.
peer_cmd() {
  case "$1" in
    rust) echo "$BIN/mesh_node --lobby $LOBBY_URL --join $2 --peers $3 --count $COUNT --timeout 30" ;;
    ndc) echo "node $HERE/ndc_peer.js $LOBBY_URL $2 $3 $COUNT" ;;
    ndc-literal) echo "node $HERE/ndc_peer.js $LOBBY_URL $2 $3 $COUNT --godot-literal" ;;
    chromium) echo "python3 $HERE/chromium_peer.py $LOBBY_URL $2 $3 $COUNT 40" ;;
    aiortc) echo "$TOOLS/venv/bin/python3 $HERE/aiortc_peer.py $LOBBY_URL $2 $3 $COUNT 30" ;;
    rust-stun) echo "$BIN/mesh_node --lobby $LOBBY_URL --join $2 --peers $3 --count $COUNT --timeout 30 --stun stun:127.0.0.1:$STUN_PORT" ;;
  esac
}

# mesh SCENARIO HOST_ARGS KIND...: a Rust host creates the lobby, the others join; every
# process must print `done` and exit 0. MESH_LOBBY=multipeer uses `multipeer lobby`.
mesh() {
  local name=$1 host_args=$2; shift 2
  local kinds=("$@") n=$(( $# + 1 )) dir="$LOGS/$name" ok=1 t0
  rm -rf "$dir"; mkdir -p "$dir"
  t0=$(date +%s%N)
  start_lobby "$dir/lobby.log" "${MESH_LOBBY:-tests}"
  echo "    lobby: $LOBBY_URL ($(if grep -qs multipeer "$dir/lobby.log"; then echo multipeer lobby; else echo lobby_server; fi))"
  # shellcheck disable=SC2086
  "$BIN/mesh_node" --lobby "$LOBBY_URL" --peers $(( n - 1 )) --count "$COUNT" --timeout 40 $host_args \
    > "$dir/host-rust.log" 2>&1 &
  local host=$! pids=() logs=("$dir/host-rust.log")
  for _ in $(seq 100); do grep -q '^lobby ' "$dir/host-rust.log" && break; sleep 0.05; done
  local lobby
  lobby=$(sed -n 's/^lobby //p' "$dir/host-rust.log")
  local i=0
  for kind in "${kinds[@]}"; do
    i=$(( i + 1 ))
    # shellcheck disable=SC2046
    $(peer_cmd "$kind" "$lobby" $(( n - 1 ))) > "$dir/peer$i-$kind.log" 2>&1 &
    pids+=($!); logs+=("$dir/peer$i-$kind.log")
  done
  local exits=0
  wait "$host" || exits=1
  for p in "${pids[@]}"; do wait "$p" || exits=1; done
  kill "$LOBBY_PID" 2>/dev/null; wait "$LOBBY_PID" 2>/dev/null
  if [ "${PAIRWISE:-0}" = 1 ]; then
    judge_pairs "${logs[@]}" || ok=0
  else
    [ "$exits" = 0 ] || ok=0
    for log in "${logs[@]}"; do grep -q '^done$' "$log" || ok=0; done
  fi
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  # Datagrams the kernel dropped for full socket buffers in this namespace so far.
  local rcvbuf
  rcvbuf=$(awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 } else print $col["RcvbufErrors"] }' /proc/net/snmp)
  if [ "$ok" = 1 ]; then
    PASSED=$(( PASSED + 1 )); echo "PASS $name (${ms} ms; UDP receive-buffer drops so far: $rcvbuf)"
  else
    FAILED=$(( FAILED + 1 )); echo "FAIL $name (${ms} ms; UDP receive-buffer drops so far: $rcvbuf), logs in $dir"
  fi
  for log in "${logs[@]}"; do
    sed "s|^|    $(basename "$log" .log): |" "$log" | grep -E ': (connected|result|fail|pairfail|mapped|largest_datagram)' | head -20
  done
}

# judge_pairs LOG...: every two processes passed their pair when each printed `result <the
# other's id>`. Pairs with a Rust (multipeer) end are asserted; a pair of two third-party
# stacks is reported only. Returns 1 when an asserted pair failed.
judge_pairs() {
  local ok=0 i j a b ida idb verdict
  local logs=("$@")
  for (( i = 0; i < ${#logs[@]}; i++ )); do
    for (( j = i + 1; j < ${#logs[@]}; j++ )); do
      a=${logs[$i]}; b=${logs[$j]}
      ida=$(sed -n 's/^id //p' "$a" | head -1); idb=$(sed -n 's/^id //p' "$b" | head -1)
      verdict=fail
      if [ -n "$ida" ] && [ -n "$idb" ] && grep -q "^result $idb " "$a" && grep -q "^result $ida " "$b"; then
        verdict=pass
      fi
      local pair
      pair="$(basename "$a" .log) <-> $(basename "$b" .log)"
      case "$(basename "$a")$(basename "$b")" in
        *rust*)
          echo "    pair $pair: $verdict"
          [ "$verdict" = pass ] || ok=1 ;;
        *)
          echo "    pair $pair: $verdict (third-party pair, reported, not asserted)" ;;
      esac
    done
  done
  return $ok
}

stun_mesh() {
  # coturn as a plain STUN server on loopback (no TURN, no auth).
  STUN_PORT=34780
  turnserver --stun-only --listening-ip=127.0.0.1 --listening-port=$STUN_PORT --no-cli \
    --log-file=stdout --simple-log > "$LOGS/coturn.log" 2>&1 &
  local stun=$!
  PIDS+=("$stun")
  sleep 0.5
  mesh rust-stun "--stun stun:127.0.0.1:$STUN_PORT" rust-stun
  kill "$stun" 2>/dev/null
  # Both sides must have learned their mapped address from coturn.
  local mapped
  mapped=$(cat "$LOGS/rust-stun/"*.log | grep -c '^mapped ')
  if [ "$mapped" -lt 2 ]; then
    echo "FAIL rust-stun: $mapped of 2 peers learned a mapped address"
    PASSED=$(( PASSED - 1 )); FAILED=$(( FAILED + 1 ))
  fi
}

PASSED=0
FAILED=0
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -eq 0 ] && SCENARIOS=("${ALL[@]}")
for s in "${SCENARIOS[@]}"; do
  case "$s" in
    rust-rust) mesh rust-rust "" rust ;;
    rust-ndc) mesh rust-ndc "" ndc ;;
    rust-ndc-godot-literal) mesh rust-ndc-godot-literal "" ndc-literal ;;
    rust-chromium) mesh rust-chromium "" chromium ;;
    rust-aiortc) mesh rust-aiortc "" aiortc ;;
    three-party) PAIRWISE=1 MESH_LOBBY=multipeer mesh three-party "" chromium ndc ;;
    rust-stun) stun_mesh ;;
    *) echo "unknown scenario $s"; FAILED=$(( FAILED + 1 )) ;;
  esac
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
