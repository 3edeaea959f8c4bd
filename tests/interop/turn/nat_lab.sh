#!/usr/bin/env bash
# NAT lab: two Rust mesh peers, each in its own private network behind a symmetric NAT that
# drops unsolicited inbound traffic, and coturn (the distribution's turnserver, temporary config,
# long-term credentials) plus the lobby on the "public" side. All in network namespaces on this
# machine; needs root, `ip`, `nft` and `turnserver`.
#
#   lan1 (192.168.1.2) -- nat1 (192.168.1.1 | 10.99.0.11) --+
#                                                            +-- pub (10.99.0.1: coturn, lobby)
#   lan2 (192.168.2.2) -- nat2 (192.168.2.1 | 10.99.0.12) --+
#
# The NATs masquerade with fully random ports (a new mapping per destination: symmetric) and
# forward inbound only what belongs to a connection the inside opened.
#
# Run 1 (no relay): the peers gather host and server-reflexive candidates (coturn as STUN) and
#   must NOT connect: the proof that no direct path exists. The NATs' drop counters must show
#   the direct checks that were dropped, and each peer must report the ICE failure (every
#   candidate pair failed: Godot's STATE_FAILED) before its 30 s timeout.
# Run 2 (TURN): the same peers with coturn as TURN too must connect, exchange COUNT packets on
#   Godot's three lanes (mesh_node's rules), and report traffic sent and received through
#   their relays; coturn's log must show the allocations.
# Run 2b (TURN over TCP): the same pair reaching coturn over TCP (`?transport=tcp`), relay
#   candidates only; coturn's log must show allocations over TCP.
# Run 3 (mixed): a Rust host in lan1 meshes with headless Chromium (its own TURN client) and
#   node-datachannel (libdatachannel's TURN client), both in lan2, all three given coturn as
#   TURN with long-term credentials and signalled through `multipeer lobby`. The two pairs with
#   a Rust end are asserted (COUNT packets per lane, the lanes' loss rules, a relay candidate
#   at one end of the pair the Rust peer selected, new drops on the NATs); the
#   Chromium <-> node-datachannel pair (no multipeer code in it, and both in one LAN) is only
#   reported.
#
# usage: tests/interop/turn/nat_lab.sh [--no-install]
# Prints `PASS nat-lab` or `FAIL nat-lab: WHY`; exits 1 on failure. Removes its namespaces and
# stops its processes on exit (also on failure or interrupt). Bounded: about 120 s. Installs
# nftables, coturn, chromium and nodejs (apt) and npm node-datachannel (tests/.tools/webrtc)
# when missing.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$CARGO_TARGET_DIR/debug"
COUNT="${COUNT:-100}"
# Which runs (below) to do; all of them in CI.
RUNS="${RUNS:-direct relayed tcp mixed}"
NS=(mplab-pub mplab-nat1 mplab-nat2 mplab-lan1 mplab-lan2)
WORK="$(mktemp -d /tmp/multipeer-natlab-XXXXXX)"
LOGS="$REPO/tests/reports/nat-lab"
TOOLS="$REPO/tests/.tools/webrtc"
WEBRTC="$REPO/tests/interop/webrtc"
PIDS=()
USER_NAME=godot
PASSWORD="natlab-$$"

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  # What those started in the lab's namespaces (Chromium's processes under chromium_peer.py).
  for n in "${NS[@]}"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done
  # The logs stay in tests/reports/nat-lab (gitignored) for a look after a failure.
  rm -rf "$LOGS"; mkdir -p "$LOGS"
  cp -r "$WORK"/. "$LOGS"/ 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL nat-lab: $*"; exit 1; }

if [ "${1:-}" != "--no-install" ]; then
  need=()
  command -v nft >/dev/null || need+=(nftables)
  command -v turnserver >/dev/null || need+=(coturn)
  command -v ip >/dev/null || need+=(iproute2)
  command -v chromium >/dev/null || need+=(chromium)
  command -v npm >/dev/null || need+=(nodejs npm)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
      fail "apt-get install ${need[*]}"
  fi
  bash "$REPO/tests/interop/webrtc/install_npm.sh" "$TOOLS" || fail "npm install node-datachannel"
fi
(cd "$REPO" && cargo build -q -p multipeer-tests --features webrtc --bin mesh_node &&
  cargo build -q -p multipeer-mio --bin multipeer) || fail "build"

# Background processes are started with `ip netns exec` itself (not through this function),
# so that $! is the process (ip execs it) and the cleanup's kill reaches it.
in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }

# --- the networks -----------------------------------------------------------------------------
for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; ip netns add "$n" || fail "ip netns add $n"; done
for n in "${NS[@]}"; do in_ns "$n" ip link set lo up; done
in_ns mplab-pub ip link add br0 type bridge
in_ns mplab-pub ip addr add 10.99.0.1/24 dev br0
in_ns mplab-pub ip link set br0 up
for i in 1 2; do
  # nat$i: its public leg on pub's bridge, its private leg to lan$i.
  ip link add "mpl-n$i-pub" netns "mplab-nat$i" type veth peer name "mpl-p$i" netns mplab-pub
  in_ns mplab-pub ip link set "mpl-p$i" master br0 up
  in_ns "mplab-nat$i" ip addr add "10.99.0.1$i/24" dev "mpl-n$i-pub"
  in_ns "mplab-nat$i" ip link set "mpl-n$i-pub" up
  ip link add "mpl-n$i-lan" netns "mplab-nat$i" type veth peer name "mpl-l$i" netns "mplab-lan$i"
  in_ns "mplab-nat$i" ip addr add "192.168.$i.1/24" dev "mpl-n$i-lan"
  in_ns "mplab-nat$i" ip link set "mpl-n$i-lan" up
  in_ns "mplab-lan$i" ip addr add "192.168.$i.2/24" dev "mpl-l$i"
  in_ns "mplab-lan$i" ip link set "mpl-l$i" up
  in_ns "mplab-lan$i" ip route add default via "192.168.$i.1"
  in_ns "mplab-nat$i" sysctl -qw net.ipv4.ip_forward=1
  # Symmetric NAT: every new outbound flow gets a random source port; inbound is forwarded
  # only for flows the inside opened, everything else is counted and dropped.
  in_ns "mplab-nat$i" nft -f - <<NFT || fail "nft on nat$i"
table ip natlab {
  counter unsolicited {}
  chain nat_out {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "mpl-n$i-pub" masquerade fully-random
  }
  chain forward_filter {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "mpl-n$i-lan" oifname "mpl-n$i-pub" accept
    iifname "mpl-n$i-pub" counter name unsolicited drop
  }
  chain input_filter {
    type filter hook input priority filter; policy accept;
    iifname "mpl-n$i-pub" ct state established,related accept
    iifname "mpl-n$i-pub" counter name unsolicited drop
  }
}
NFT
done

# --- coturn and the lobby on the public side --------------------------------------------------
cat > "$WORK/turnserver.conf" <<CONF
listening-ip=10.99.0.1
relay-ip=10.99.0.1
listening-port=3478
min-port=49160
max-port=49200
lt-cred-mech
realm=natlab.multipeer.test
user=$USER_NAME:$PASSWORD
fingerprint
no-tls
no-dtls
no-cli
no-tcp-relay
# As production servers are configured: never relay into private networks. Without it coturn
# here tries the peers' host candidates (192.168.x.2), gets "network unreachable" from the
# public side, which has no route there, and drops the whole allocation.
denied-peer-ip=192.168.0.0-192.168.255.255
pidfile=$WORK/turnserver.pid
userdb=$WORK/turndb
log-file=stdout
simple-log
verbose
CONF
ip netns exec mplab-pub turnserver -c "$WORK/turnserver.conf" > "$WORK/coturn.log" 2>&1 &
PIDS+=($!)
ip netns exec mplab-pub "$BIN/multipeer" lobby --listen 10.99.0.1:9090 > "$WORK/lobby.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q 'listening on ws://' "$WORK/lobby.log" && break; sleep 0.05; done
grep -q 'listening on ws://' "$WORK/lobby.log" || fail "the lobby did not start"
# Both LANs reach the public side through their NAT (a TCP connection to the lobby).
for i in 1 2; do
  in_ns "mplab-lan$i" timeout 3 bash -c 'exec 3<>/dev/tcp/10.99.0.1/9090' ||
    fail "lan$i cannot reach the public side"
done
sleep 0.5

counter() { in_ns "mplab-nat$1" nft list counter ip natlab unsolicited | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }

# pair NAME TIMEOUT ARGS...: the host in lan1 and one joiner in lan2; returns 0 when both print
# `done`.
pair() {
  local name=$1 timeout=$2; shift 2
  local dir="$WORK/$name"
  mkdir -p "$dir"
  ip netns exec mplab-lan1 "$BIN/mesh_node" --lobby ws://10.99.0.1:9090 --peers 1 --count "$COUNT" \
    --timeout "$timeout" --local-ip 192.168.1.2 "$@" > "$dir/host.log" 2>&1 &
  local host=$!
  PIDS+=("$host")
  for _ in $(seq 100); do grep -qs '^lobby ' "$dir/host.log" && break; sleep 0.05; done
  local lobby
  lobby=$(sed -n 's/^lobby //p' "$dir/host.log")
  ip netns exec mplab-lan2 "$BIN/mesh_node" --lobby ws://10.99.0.1:9090 --join "$lobby" --peers 1 \
    --count "$COUNT" --timeout "$timeout" --local-ip 192.168.2.2 "$@" > "$dir/joiner.log" 2>&1 &
  local joiner=$!
  PIDS+=("$joiner")
  wait "$host"; wait "$joiner"
  for log in "$dir/host.log" "$dir/joiner.log"; do
    sed "s|^|    $name $(basename "$log" .log): |" "$log" | grep -E ': (connected|result|path|relay|fail|done)'
  done
  grep -q '^done$' "$dir/host.log" && grep -q '^done$' "$dir/joiner.log"
}

# mixed: run 3. The Rust host in lan1, Chromium and node-datachannel in lan2 join its lobby.
# Returns 1 when a pair with the Rust end failed or bypassed the relay, or no direct check was
# dropped; the Chromium <-> node-datachannel pair is reported only.
mixed() {
  local dir="$WORK/mixed" before lobby host chromium ndc
  mkdir -p "$dir"
  before=$(( $(counter 1) + $(counter 2) ))
  ip netns exec mplab-lan1 "$BIN/mesh_node" --lobby ws://10.99.0.1:9090 --peers 2 --count "$COUNT" \
    --timeout 60 --local-ip 192.168.1.2 --stun stun:10.99.0.1:3478 --turn turn:10.99.0.1:3478 \
    --turn-user "$USER_NAME" --turn-password "$PASSWORD" > "$dir/rust.log" 2>&1 &
  host=$!
  PIDS+=("$host")
  for _ in $(seq 100); do grep -qs '^lobby ' "$dir/rust.log" && break; sleep 0.05; done
  lobby=$(sed -n 's/^lobby //p' "$dir/rust.log")
  [ -n "$lobby" ] || { echo "    the Rust host created no lobby"; return 1; }
  # Godot's iceServers as a browser takes them; the page signals every candidate it gathers.
  local ice="[{\"urls\":[\"turn:10.99.0.1:3478?transport=udp\"],\"username\":\"$USER_NAME\",\"credential\":\"$PASSWORD\"}]"
  ip netns exec mplab-lan2 python3 "$WEBRTC/chromium_peer.py" ws://10.99.0.1:9090 "$lobby" 2 "$COUNT" 45 \
    "ice=$ice" > "$dir/chromium.log" 2>&1 &
  chromium=$!
  PIDS+=("$chromium")
  ip netns exec mplab-lan2 env NODE_PATH="$TOOLS/node_modules" node "$WEBRTC/ndc_peer.js" \
    ws://10.99.0.1:9090 "$lobby" 2 "$COUNT" --bind 192.168.2.2 \
    --turn "10.99.0.1:3478:$USER_NAME:$PASSWORD" > "$dir/ndc.log" 2>&1 &
  ndc=$!
  PIDS+=("$ndc")
  wait "$host"; wait "$chromium"; wait "$ndc"
  for log in rust chromium ndc; do
    sed "s|^|    mixed $log: |" "$dir/$log.log" | grep -E ': (id|connected|result|path|relay|fail|pairfail|done)'
  done
  local ok=0 rust_id id name verdict local remote
  rust_id=$(sed -n 's/^id //p' "$dir/rust.log" | head -1)
  grep -q '^done$' "$dir/rust.log" || { echo "    the Rust host did not complete"; ok=1; }
  for name in chromium ndc; do
    id=$(sed -n 's/^id //p' "$dir/$name.log" | head -1)
    verdict=fail
    if [ -n "$id" ] && [ -n "$rust_id" ] && grep -q "^result $id " "$dir/rust.log" &&
      grep -q "^result $rust_id " "$dir/$name.log"; then
      verdict=pass
    fi
    echo "    pair rust <-> $name: $verdict"
    [ "$verdict" = pass ] || { ok=1; continue; }
    read -r _ _ local remote <<< "$(grep "^path $id " "$dir/rust.log")"
    case "$local $remote" in
      10.99.0.1:*|*" 10.99.0.1:"*) echo "    rust -> $name over $local -> $remote (a relay at one end at least)" ;;
      *) echo "    rust -> $name: the selected pair $local -> $remote bypasses the relay"; ok=1 ;;
    esac
  done
  local cid nid
  cid=$(sed -n 's/^id //p' "$dir/chromium.log" | head -1)
  nid=$(sed -n 's/^id //p' "$dir/ndc.log" | head -1)
  verdict=fail
  if [ -n "$cid" ] && [ -n "$nid" ] && grep -q "^result $nid " "$dir/chromium.log" &&
    grep -q "^result $cid " "$dir/ndc.log"; then
    verdict=pass
  fi
  echo "    pair chromium <-> ndc: $verdict (third-party pair, reported, not asserted)"
  local dropped=$(( $(counter 1) + $(counter 2) - before ))
  echo "    unsolicited inbound datagrams the NATs dropped during the mixed run: $dropped"
  [ "$dropped" -gt 0 ] || { echo "    no direct check was dropped: nothing shows the NATs were in the way"; ok=1; }
  return $ok
}

started=$(date +%s)
if [[ " $RUNS " == *" direct "* ]]; then
  echo "run 1: host and server-reflexive candidates only (coturn as STUN)"
  before=$(( $(counter 1) + $(counter 2) ))
  if pair direct 30 --stun stun:10.99.0.1:3478; then
    fail "the peers connected without a relay: the NATs left a direct path"
  fi
  dropped=$(( $(counter 1) + $(counter 2) - before ))
  echo "    unsolicited inbound datagrams the NATs dropped: $dropped"
  [ "$dropped" -gt 0 ] || fail "no direct check reached a NAT (nothing was dropped): the lab proves nothing"
  for log in "$WORK/direct/host.log" "$WORK/direct/joiner.log"; do
    grep -q 'ICE failed' "$log" || fail "$(basename "$log"): the ICE failure was not reported"
  done
  echo "    both peers reported the ICE failure (every candidate pair failed)"
fi

if [[ " $RUNS " == *" relayed "* ]]; then
  echo "run 2: with coturn as TURN (long-term credentials)"
  pair relayed 30 --stun stun:10.99.0.1:3478 --turn turn:10.99.0.1:3478 --turn-user "$USER_NAME" \
    --turn-password "$PASSWORD" || fail "no connection through the relay"
  for log in "$WORK/relayed/host.log" "$WORK/relayed/joiner.log"; do
    line=$(grep '^relay ' "$log")
    sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<< "$line")
    received=$(sed -n 's/.*received=\([0-9]*\).*/\1/p' <<< "$line")
    allocated=$(sed -n 's/.*allocated=\([0-9]*\).*/\1/p' <<< "$line")
    [ "${allocated:-0}" -ge 1 ] || fail "$(basename "$log"): no relay allocated"
    [ "${sent:-0}" -gt 0 ] && [ "${received:-0}" -gt 0 ] ||
      fail "$(basename "$log"): no traffic through the relay ($line)"
  done
  # The pair each side sends over has the relay's public address at one end at least (our own
  # allocation, or the other side's): the peers' own addresses are private or NAT-mapped.
  for log in "$WORK/relayed/host.log" "$WORK/relayed/joiner.log"; do
    read -r _ _ local remote <<< "$(grep '^path ' "$log")"
    case "$local $remote" in
      10.99.0.1:*|*" 10.99.0.1:"*) ;;
      *) fail "$(basename "$log"): the selected pair $local -> $remote bypasses the relay" ;;
    esac
    [ "${local%:*}" = 10.99.0.1 ] && echo "    $(basename "$log" .log): sends from its relay candidate $local to $remote"
    [ "${local%:*}" = 10.99.0.1 ] || echo "    $(basename "$log" .log): sends from $local to the other's relay candidate $remote"
  done
  allocations=$(grep -c 'ALLOCATE processed, success' "$WORK/coturn.log")
  echo "    coturn: $allocations successful ALLOCATE requests"
  [ "$allocations" -ge 2 ] || fail "coturn logged $allocations allocations"
fi

if [[ " $RUNS " == *" tcp "* ]]; then
  echo "run 2b: relay only, the clients reaching coturn over TCP"
  pair relayed-tcp 30 --turn "turn:10.99.0.1:3478?transport=tcp" --turn-user "$USER_NAME" \
    --turn-password "$PASSWORD" --relay-only 1 || fail "no connection through the relay over TCP"
  for log in "$WORK/relayed-tcp/host.log" "$WORK/relayed-tcp/joiner.log"; do
    read -r _ _ local remote <<< "$(grep '^path ' "$log")"
    [ "${local%:*}" = 10.99.0.1 ] && [ "${remote%:*}" = 10.99.0.1 ] ||
      fail "$(basename "$log"): relay only, yet the pair is $local -> $remote"
    echo "    $(basename "$log" .log): relay $local -> relay $remote"
  done
  # Relay only, so both allocations were made; over TCP, as coturn saw both NATs connect.
  tcp_clients=$(grep -c 'tcp or tls connected to: 10\.99\.0\.1[12]:' "$WORK/coturn.log")
  echo "    coturn: $tcp_clients TCP connections from the NATs"
  [ "$tcp_clients" -ge 2 ] || fail "coturn saw $tcp_clients TCP connections from the NATs"
fi

if [[ " $RUNS " == *" mixed "* ]]; then
  echo "run 3: Rust (lan1) with Chromium and node-datachannel (lan2), every one through coturn"
  mixed || fail "the mixed mesh through TURN"
fi
echo "PASS nat-lab ($(( $(date +%s) - started )) s)"
