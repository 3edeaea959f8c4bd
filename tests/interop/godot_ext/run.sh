#!/usr/bin/env bash
# Acceptance tests of the multipeer GDExtension (io-godot): real headless Godot 4.6.3 processes
# with the extension loaded, running Godot's own WebRTCPeerConnection / WebRTCMultiplayerPeer /
# SceneMultiplayer, signalled through `multipeer lobby`, all on loopback inside a private
# network namespace that has only `lo`.
#
# usage: tests/interop/godot_ext/run.sh [--no-install] [SCENARIO...]
#   godot-godot          two Godot processes, SceneMultiplayer: send_bytes on the reliable,
#                        unreliable-ordered and unreliable lanes plus reliable RPCs, both ways
#   godot-mesh3          three Godot processes in one mesh, the same exchange between every pair
#                        (initialize() given the demo's iceServers)
#   godot-rust-chromium  one mesh of three engines: a Rust mesh_node (host), Godot with the
#                        extension (WebRTCMultiplayerPeer directly) and headless Chromium
#   godot-ndc            Godot with the extension and node-datachannel (libdatachannel, what
#                        webrtc-native wraps)
#   godot-panic          WebRTCPeerConnection.new() is multipeer's class; a Rust panic inside a
#                        call (fault injected) is a Godot error and a failed call, Godot lives on
#   godot-loss           two Godot processes with 10% of all UDP datagrams dropped (nftables):
#                        reliable packets and RPCs all arrive in order, the unreliable lanes
#                        lose some
#   godot-turn           two Godot processes whose only candidates are relayed by coturn on
#                        loopback (iceServers turn: with long-term credentials,
#                        iceTransportPolicy "relay"), every UDP datagram that does not touch
#                        coturn dropped by nftables; the godot-godot exchange; then, with a
#                        wrong credential, the refusal is a Godot error and the connection fails
#
# mesh_client.gd is the Godot side (written like Godot's webrtc_signaling demo client); every
# process prints `done` when each of its pairs completed. Prints `N passed, N failed`; exits 1
# on any failure. Installs Chromium, nftables and npm (apt) and node-datachannel (npm, to
# tests/.tools/webrtc) when a scenario needs them, unless --no-install. Needs root (unshare -n, nft). Logs:
# tests/reports/godot_ext/.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
WEBRTC="$REPO/tests/interop/webrtc"
TOOLS="$REPO/tests/.tools/webrtc"
LOGS="$REPO/tests/reports/godot_ext"
GODOT="$REPO/tests/interop/godot/godot4"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$CARGO_TARGET_DIR/debug"
COUNT="${COUNT:-100}"
ALL=(godot-godot godot-mesh3 godot-rust-chromium godot-ndc godot-loss godot-turn godot-panic)

needs_tools() {
  local s
  for s in "$@"; do case "$s" in godot-rust-chromium|godot-ndc|godot-loss|godot-turn) return 0 ;; esac; done
  return 1
}

install_tools() {
  local need=()
  command -v chromium >/dev/null || need+=(chromium)
  command -v nft >/dev/null || need+=(nftables)
  command -v turnserver >/dev/null || need+=(coturn)
  command -v npm >/dev/null || need+=(npm)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || return 1
  fi
  mkdir -p "$TOOLS"
  if [ ! -d "$TOOLS/node_modules/node-datachannel" ] || [ ! -d "$TOOLS/node_modules/ws" ]; then
    printf '{"private": true, "dependencies": {"node-datachannel": "0.33.4", "ws": "8.18.3"}}\n' \
      > "$TOOLS/package.json"
    (cd "$TOOLS" && npm install --no-audit --no-fund --silent) || return 1
  fi
}

if [ "${MP_GODOT_EXT_INNER:-}" != 1 ]; then
  started=$(date +%s)
  install=1
  if [ "${1:-}" = "--no-install" ]; then install=0; shift; fi
  scenarios=("$@"); [ ${#scenarios[@]} -eq 0 ] && scenarios=("${ALL[@]}")
  "$REPO/tests/interop/godot/install_godot4.sh" >/dev/null || { echo "Godot 4 install failed"; echo "0 passed, 1 failed"; exit 1; }
  if [ "$install" = 1 ] && needs_tools "${scenarios[@]}"; then
    install_tools || { echo "install failed"; echo "0 passed, 1 failed"; exit 1; }
  fi
  build_started=$(date +%s)
  (cd "$REPO" && cargo build -q --locked -p multipeer-mio --bin multipeer &&
    cargo build -q --locked -p multipeer-tests --features webrtc --bin mesh_node) ||
    { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
  "$REPO/io-godot/package.sh" --debug --features fault-injection "$CARGO_TARGET_DIR/godot-ext-test" | tail -1 ||
    { echo "extension build failed"; echo "0 passed, 1 failed"; exit 1; }
  echo "build time (lobby, mesh_node, extension): $(( $(date +%s) - build_started )) s"
  mkdir -p "$LOGS"
  MP_GODOT_EXT_INNER=1 unshare -n bash "$0" "${scenarios[@]}"
  rc=$?
  echo "godot_ext runtime: $(( $(date +%s) - started )) s"
  exit $rc
fi

ip link set lo up
export NODE_PATH="$TOOLS/node_modules"
PROJECT="$(mktemp -d /tmp/multipeer-godot-ext.XXXXXX)"
export MP_GODOT4_HOME="$PROJECT/home"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$PROJECT"
}
trap cleanup EXIT

# A Godot project with the addon, as a game would have it; .godot/extension_list.cfg is what the
# editor writes when it imports the addon (headless runs never import).
mkdir -p "$PROJECT/game/.godot"
cp -r "$CARGO_TARGET_DIR/godot-ext-test/addons" "$PROJECT/game/"
printf 'config_version=5\n\n[application]\nconfig/name="multipeer-godot-ext-test"\n' > "$PROJECT/game/project.godot"
echo "res://addons/multipeer/multipeer.gdextension" > "$PROJECT/game/.godot/extension_list.cfg"
cp "$HERE/mesh_client.gd" "$HERE/panic_probe.gd" "$PROJECT/game/"

start_lobby() {
  "$BIN/multipeer" lobby --listen 127.0.0.1:0 > "$1" 2>&1 &
  LOBBY_PID=$!
  PIDS+=("$LOBBY_PID")
  for _ in $(seq 100); do grep -qs 'listening on ws://' "$1" && break; sleep 0.05; done
  LOBBY_URL="ws://$(sed -n 's|^multipeer: listening on ws://\([^ ]*\).*|\1|p' "$1" | head -1)"
}

# godot LOG PEERS MODE [LOBBY] [extra env...]: starts a Godot client in the background (PID in
# LAST_PID).
godot() {
  local log=$1 peers=$2 mode=$3 lobby=${4:-}; shift 4 2>/dev/null || shift $#
  env MP_LOBBY_URL="$LOBBY_URL" MP_LOBBY="$lobby" MP_PEERS="$peers" MP_MODE="$mode" MP_COUNT="$COUNT" \
    MP_TIMEOUT="${MP_TIMEOUT:-40}" "$@" \
    timeout 60 "$GODOT" --path "$PROJECT/game" -s mesh_client.gd > "$log" 2>&1 &
  LAST_PID=$!
}

wait_lobby_name() {
  for _ in $(seq 600); do grep -qs '^lobby ' "$1" && break; sleep 0.05; done
  sed -n 's/^lobby //p' "$1" | head -1
}

# verdict NAME T0 PIDS... -- LOGS...: every process exited 0 and printed `done`.
verdict() {
  local name=$1 t0=$2; shift 2
  local ok=1 pids=() logs=()
  while [ "$1" != -- ]; do pids+=("$1"); shift; done; shift
  logs=("$@")
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  kill "$LOBBY_PID" 2>/dev/null; wait "$LOBBY_PID" 2>/dev/null
  for log in "${logs[@]}"; do grep -q '^done$' "$log" || ok=0; done
  [ "${EXTRA_OK:-1}" = 1 ] || ok=0
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  # Datagrams the kernel dropped for full socket buffers in this namespace so far.
  local rcvbuf
  rcvbuf=$(awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 } else print $col["RcvbufErrors"] }' /proc/net/snmp)
  LAST_OK=$ok
  if [ "$ok" = 1 ]; then PASSED=$(( PASSED + 1 )); echo "PASS $name (${ms} ms; UDP receive-buffer drops so far: $rcvbuf)"
  else FAILED=$(( FAILED + 1 )); echo "FAIL $name (${ms} ms; UDP receive-buffer drops so far: $rcvbuf), logs in $LOGS/$name"; fi
  for log in "${logs[@]}"; do
    sed "s|^|    $(basename "$log" .log): |" "$log" |
      grep -E ': (godot |connected|result|fail|pairfail|done|stats|SCRIPT ERROR|ERROR|WARNING)' | head -20
  done
}

# godot_mesh NAME N [extra env...]: N Godot processes (scene mode) in one mesh.
godot_mesh() {
  local name=$1 n=$2; shift 2
  local dir="$LOGS/$name" t0 pids=() logs=() lobby i
  rm -rf "$dir"; mkdir -p "$dir"
  t0=$(date +%s%N)
  start_lobby "$dir/lobby.log"
  godot "$dir/godot1.log" $(( n - 1 )) scene "" "$@"; pids+=("$LAST_PID"); logs+=("$dir/godot1.log")
  lobby=$(wait_lobby_name "$dir/godot1.log")
  for (( i = 2; i <= n; i++ )); do
    godot "$dir/godot$i.log" $(( n - 1 )) scene "$lobby" "$@"; pids+=("$LAST_PID"); logs+=("$dir/godot$i.log")
  done
  verdict "$name" "$t0" "${pids[@]}" -- "${logs[@]}"
}

# Three engines: mesh_node hosts, Godot (raw WebRTCMultiplayerPeer) and Chromium join.
rust_chromium() {
  local name=godot-rust-chromium dir="$LOGS/godot-rust-chromium" t0 pids=() lobby
  rm -rf "$dir"; mkdir -p "$dir"
  t0=$(date +%s%N)
  start_lobby "$dir/lobby.log"
  "$BIN/mesh_node" --lobby "$LOBBY_URL" --peers 2 --count "$COUNT" --timeout 40 > "$dir/rust.log" 2>&1 &
  pids+=($!)
  lobby=$(wait_lobby_name "$dir/rust.log")
  godot "$dir/godot.log" 2 raw "$lobby"; pids+=("$LAST_PID")
  python3 "$WEBRTC/chromium_peer.py" "$LOBBY_URL" "$lobby" 2 "$COUNT" 40 > "$dir/chromium.log" 2>&1 &
  pids+=($!)
  verdict "$name" "$t0" "${pids[@]}" -- "$dir/rust.log" "$dir/godot.log" "$dir/chromium.log"
}

godot_ndc() {
  local name=godot-ndc dir="$LOGS/godot-ndc" t0 pids=() lobby
  rm -rf "$dir"; mkdir -p "$dir"
  t0=$(date +%s%N)
  start_lobby "$dir/lobby.log"
  godot "$dir/godot.log" 1 raw ""; pids+=("$LAST_PID")
  lobby=$(wait_lobby_name "$dir/godot.log")
  node "$WEBRTC/ndc_peer.js" "$LOBBY_URL" "$lobby" 1 "$COUNT" > "$dir/ndc.log" 2>&1 &
  pids+=($!)
  verdict "$name" "$t0" "${pids[@]}" -- "$dir/godot.log" "$dir/ndc.log"
}

# 10% of UDP datagrams (both ways: every datagram passes the output hook once) dropped; TCP (the
# lobby) untouched. Each side sends one packet per lane (and one RPC) per frame, padded to about
# 1000 bytes so that each one is a datagram of its own, 200 per lane: the unreliable lanes must
# lose about a tenth (lost datagrams are not repaired), the reliable lane and the RPCs nothing.
godot_loss() {
  local dir="$LOGS/godot-loss"
  nft add table inet mp_loss &&
    nft add chain inet mp_loss out '{ type filter hook output priority 0; }' &&
    nft add rule inet mp_loss out meta l4proto udp numgen random mod 100 '<' 10 counter drop ||
    { FAILED=$(( FAILED + 1 )); echo "FAIL godot-loss: nftables rule not installed"; return; }
  COUNT=200 MP_TIMEOUT=50 godot_mesh godot-loss 2 MP_PACE=1
  local dropped
  dropped=$(nft list chain inet mp_loss out | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
  nft delete table inet mp_loss
  echo "    datagrams dropped by nftables: ${dropped:-?}"
  # Every pair completed (reliable and RPCs complete and in order); now each unreliable lane
  # must have lost some by the end, unrepaired: on the unreliable lane fewer than
  # 200 * (1 - 10% / 2) = 190 arrived, as the Rust mesh test asserts (retransmissions would
  # have delivered nearly all); on the ordered lane fewer than 200 (it lost 5% to 45% here: a
  # message behind a gap may wait for it until its 1 ms lifetime ends); each at least 20 (it is
  # loss, not a dead lane).
  local log lost=0 o u
  for log in "$dir"/godot*.log; do
    o=$(sed -n 's/^stats [0-9]* reliable=200 ordered=\([0-9]*\) unreliable=[0-9]* rpc=200$/\1/p' "$log")
    u=$(sed -n 's/^stats [0-9]* reliable=200 ordered=[0-9]* unreliable=\([0-9]*\) rpc=200$/\1/p' "$log")
    [ -n "$o" ] && [ -n "$u" ] && [ "$o" -lt 200 ] && [ "$u" -lt 190 ] && [ "$o" -ge 20 ] && [ "$u" -ge 20 ] &&
      lost=$(( lost + 1 ))
  done
  if [ "$LAST_OK" = 1 ] && [ "$lost" != 2 ]; then
    echo "FAIL godot-loss: $lost of 2 peers saw both unreliable lanes lose some but not all (expected 2)"
    PASSED=$(( PASSED - 1 )); FAILED=$(( FAILED + 1 ))
  fi
}

# coturn on 127.0.0.1 (UDP, long-term credentials, relayed ports 20000-20999); both Godot
# processes are relay-only, and nftables drops every UDP datagram that neither comes from nor
# goes to coturn (its listening port or a relayed port), so no direct path can work. coturn's
# log must show both allocations and the channels bound to each other's relayed address. Then
# two more with a wrong credential must print the refusal as a Godot error and fail.
godot_turn() {
  local dir="$LOGS/godot-turn" port=3478 user=godot secret=relay-secret
  # godot_mesh empties $dir: coturn logs beside it until then.
  local turn_log="$PROJECT/coturn.log"
  turnserver -n --no-cli --no-tls --no-dtls --no-tcp-relay --no-tcp \
    --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --allow-loopback-peers \
    --listening-port=$port --min-port=20000 --max-port=20999 \
    --lt-cred-mech --realm=multipeer.test --fingerprint --user="$user:$secret" \
    --pidfile="$PROJECT/turnserver.pid" --userdb="$PROJECT/turndb" \
    --log-file=stdout --simple-log -v > "$turn_log" 2>&1 &
  local turn_pid=$!
  PIDS+=("$turn_pid")
  for _ in $(seq 100); do grep -qs 'listener opened on' "$turn_log" && break; sleep 0.05; done
  sleep 0.3
  nft add table inet mp_turn &&
    nft add chain inet mp_turn out '{ type filter hook output priority 0; }' &&
    nft add rule inet mp_turn out meta l4proto udp udp sport != "{ $port, 20000-20999 }" \
      udp dport != "{ $port, 20000-20999 }" counter drop ||
    { FAILED=$(( FAILED + 1 )); echo "FAIL godot-turn: nftables rule not installed"; kill "$turn_pid"; return; }
  godot_mesh godot-turn 2 MP_ICE="turn:127.0.0.1:$port" MP_ICE_USER=$user MP_ICE_CREDENTIAL=$secret \
    MP_ICE_POLICY=relay
  local turn_ok=$LAST_OK
  # A wrong credential: coturn refuses the allocation (401); each Godot prints that as an
  # error, and its relay-only connection fails (the script then times out, as expected).
  local refused="$dir/refused" log p1 p2 lobby reported=0
  mkdir -p "$refused"
  start_lobby "$refused/lobby.log"
  MP_TIMEOUT=8 godot "$refused/godot1.log" 1 scene "" MP_ICE="turn:127.0.0.1:$port" MP_ICE_USER=$user \
    MP_ICE_CREDENTIAL=wrong MP_ICE_POLICY=relay; p1=$LAST_PID
  lobby=$(wait_lobby_name "$refused/godot1.log")
  MP_TIMEOUT=8 godot "$refused/godot2.log" 1 scene "$lobby" MP_ICE="turn:127.0.0.1:$port" MP_ICE_USER=$user \
    MP_ICE_CREDENTIAL=wrong MP_ICE_POLICY=relay; p2=$LAST_PID
  wait "$p1" "$p2"
  kill "$LOBBY_PID" 2>/dev/null; wait "$LOBBY_PID" 2>/dev/null
  for log in "$refused"/godot*.log; do
    grep -q 'ERROR: multipeer: TURN allocation failed: TURN server 127.0.0.1:[0-9]*: allocation refused: 401' "$log" &&
      grep -q 'ERROR: multipeer: the WebRTC connection failed: iceTransportPolicy is "relay"' "$log" &&
      reported=$(( reported + 1 ))
  done
  grep -h 'ERROR: multipeer' "$refused"/godot*.log | sort | uniq -c | sed 's/^/    wrong credential: /'
  local blocked
  blocked=$(nft list chain inet mp_turn out | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
  nft delete table inet mp_turn
  kill "$turn_pid" 2>/dev/null; wait "$turn_pid" 2>/dev/null
  cp "$turn_log" "$dir/coturn.log"
  local allocations channels
  allocations=$(grep -c 'ALLOCATE processed, success' "$dir/coturn.log")
  channels=$(grep -c 'CHANNEL_BIND processed, success' "$dir/coturn.log")
  echo "    coturn: $allocations allocations, $channels channel binds; direct datagrams dropped by nftables: ${blocked:-?}"
  if [ "$turn_ok" = 1 ] && { [ "$allocations" -lt 2 ] || [ "$channels" -lt 2 ]; }; then
    echo "FAIL godot-turn: coturn did not relay for both (expected 2 allocations and 2 channel binds)"
    PASSED=$(( PASSED - 1 )); FAILED=$(( FAILED + 1 ))
  elif [ "$turn_ok" = 1 ] && [ "$reported" != 2 ]; then
    echo "FAIL godot-turn: $reported of 2 Godot processes reported the refused allocation and failed"
    PASSED=$(( PASSED - 1 )); FAILED=$(( FAILED + 1 ))
  fi
}

godot_panic() {
  local dir="$LOGS/godot-panic" ok=1 expect
  rm -rf "$dir"; mkdir -p "$dir"
  timeout 30 "$GODOT" --path "$PROJECT/game" -s panic_probe.gd > "$dir/godot.log" 2>&1 || ok=0
  for expect in '^class MultipeerWebRTCPeerConnection$' '^initialize 0$' \
    'ERROR: multipeer: create_data_channel panicked \(fault injected' '^panicked call returned null: true$' \
    '^create_offer on the poisoned connection: 1$' '^a fresh connection works: true$' '^survived$'; do
    grep -qE "$expect" "$dir/godot.log" || { ok=0; echo "    missing: $expect"; }
  done
  if grep -q 'No default WebRTC extension' "$dir/godot.log"; then ok=0; echo "    the extension was not the default"; fi
  if [ "$ok" = 1 ]; then PASSED=$(( PASSED + 1 )); echo "PASS godot-panic"
  else FAILED=$(( FAILED + 1 )); echo "FAIL godot-panic, log in $dir"; fi
  grep -E '^(class|initialize|panicked|create_offer|a fresh|survived)|ERROR: multipeer' "$dir/godot.log" | sed 's/^/    /'
}

PASSED=0
FAILED=0
for s in "$@"; do
  case "$s" in
    godot-godot) godot_mesh godot-godot 2 ;;
    # With the demo's own iceServers: in this namespace the name cannot resolve, so the
    # connections use host candidates as on a LAN.
    godot-mesh3) godot_mesh godot-mesh3 3 MP_ICE=stun:stun.l.google.com:19302 ;;
    godot-rust-chromium) rust_chromium ;;
    godot-ndc) godot_ndc ;;
    godot-loss) godot_loss ;;
    godot-turn) godot_turn ;;
    godot-panic) godot_panic ;;
    *) echo "unknown scenario $s"; FAILED=$(( FAILED + 1 )) ;;
  esac
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
