#!/usr/bin/env bash
# SceneMultiplayer against the real Godot 4.6.3: io-std's `rpc_server` example serves Godot
# clients (rpc_client_g4.gd). Checks: a client's RPCs with one value of many Variant types
# arrive decoded (the server echoes each back with an RPC of its own, which the client compares
# with what it sent, sender 1); a broadcast RPC from the server; with --auth-token, a client
# with the right token is admitted and one with a wrong token is dropped at the auth timeout;
# two clients calling each other through the server's relay, and an authority-only method
# called by a client refused by Godot and by the server.
#
# Then Godot 3 with io-std's `rpc_godot3` example and rpc_g3.gd, against the real 3.2.3 (and
# 3.6.2 when tests/interop/godot/godot36 has it): a 3.x client and the Rust server, then the
# Rust client and a 3.x server. Each way: `rpc` and `rset` with one value of each 3.x type,
# checked on arrival against the sender's list and echoed back (sender 1), a broadcast, and a
# `master`/`puppet` call refused on both sides.
#
# usage: tests/interop/scene/run.sh     Prints "scene interop: passed" or "... FAILED".
# Environment: MP_OUT (logs, default /tmp/multipeer-scene-interop), CARGO_TARGET_DIR.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${MP_OUT:-/tmp/multipeer-scene-interop}"
godot="$repo/tests/interop/godot/godot4"
fail() { echo "scene interop: $*" >&2; echo "scene interop: FAILED"; exit 1; }

"$repo/tests/interop/godot/install_godot4.sh" >/dev/null || fail "install_godot4.sh failed"
(cd "$repo" && cargo build -q --locked -p multipeer-std --example rpc_server --example rpc_bot --example rpc_godot3) \
  || fail "build failed"
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/examples/rpc_server"
bot="${CARGO_TARGET_DIR:-$repo/target}/debug/examples/rpc_bot"
bin3="${CARGO_TARGET_DIR:-$repo/target}/debug/examples/rpc_godot3"
rm -rf "$out"; mkdir -p "$out"; cp "$here/rpc_client_g4.gd" "$here/rpc_server_g4.gd" "$here/rpc_g3.gd" "$out/"
port=$((20000 + RANDOM % 20000))

# server LOG ARGS...: starts rpc_server in the background (it stops by itself).
server() { local log=$1; shift; "$bin" "$port" --seconds 25 "$@" >"$out/$log" 2>&1 & echo $!; }
client() { (cd "$out" && timeout 30 "$godot" --headless -s rpc_client_g4.gd -- "ws://127.0.0.1:$port" "$@"); }

pid=$(server plain.log); sleep 1
client >"$out/client-plain.log" 2>&1; rc=$?
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
grep -E "^(PASS|FAIL|DONE)" "$out/client-plain.log"
[ $rc -eq 0 ] || fail "plain client: exit $rc (logs in $out)"

port=$((port + 1))
pid=$(server auth.log --auth-token s3cret); sleep 1
client --token s3cret >"$out/client-auth.log" 2>&1; rc=$?
client --token wrong >"$out/client-wrong.log" 2>&1; wrong=$?
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
grep -E "^DONE" "$out/client-auth.log"
[ $rc -eq 0 ] || fail "client with the token: exit $rc"
grep -q "peer_authentication_failed 1" "$out/client-wrong.log" || fail "wrong token not refused by the client's timeout"
grep -q "PeerAuthenticationFailed" "$out/auth.log" || fail "wrong token not refused by the server"
[ $wrong -ne 0 ] || fail "client with a wrong token passed"

# Two clients at once: client-to-client RPCs through the Rust relay; an authority-only method
# called by a client is refused by the other client (Godot) and by the server (us).
port=$((port + 1))
pid=$(server pair.log); sleep 1
client --pair >"$out/client-pair-a.log" 2>&1 & a=$!
client --pair >"$out/client-pair-b.log" 2>&1; rb=$?
wait "$a"; ra=$?
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
grep -hE "^(FAIL|DONE)|whisper|authority" "$out/client-pair-a.log" "$out/client-pair-b.log"
[ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "paired clients: exit $ra and $rb"
grep -q "NotAllowed" "$out/pair.log" || fail "the server did not refuse the forged pong"

# godot3 NAME GODOT: both directions with one Godot 3 binary.
values=33
godot3() {
  local name=$1 g=$2 pid rc
  port=$((port + 1))
  "$bin3" server "$port" --seconds 25 --check >"$out/$name-rust-server.log" 2>&1 & pid=$!
  sleep 1
  (cd "$out" && timeout 30 "$g" -s rpc_g3.gd -- client "ws://127.0.0.1:$port") >"$out/$name-client.log" 2>&1
  rc=$?
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  grep -E "^(FAIL|DONE)" "$out/$name-client.log"
  [ $rc -eq 0 ] && grep -q "^DONE 0" "$out/$name-client.log" || fail "$name client: exit $rc (logs in $out)"
  [ "$(grep -c '^MATCH' "$out/$name-rust-server.log")" -eq $((2 * values)) ] \
    && ! grep -q '^MISMATCH' "$out/$name-rust-server.log" || fail "$name client: values decoded wrong by the Rust server"
  grep -q "NotAllowed { node: \"Game\", method: \"pong\" }" "$out/$name-rust-server.log" \
    || fail "$name client: the Rust server did not refuse the puppet call"
  grep -q "RPC 'master_only' is not allowed" "$out/$name-client.log" || fail "$name client: Godot did not refuse master_only"

  port=$((port + 1))
  (cd "$out" && timeout 30 "$g" -s rpc_g3.gd -- server "$port") >"$out/$name-server.log" 2>&1 & pid=$!
  sleep 1
  timeout 30 "$bin3" client "ws://127.0.0.1:$port" --seconds 20 --check >"$out/$name-rust-client.log" 2>&1
  rc=$?
  wait "$pid"; local grc=$?
  grep -E "^(FAIL|DONE)" "$out/$name-rust-client.log" "$out/$name-server.log"
  [ $rc -eq 0 ] || fail "$name server: the Rust client failed, exit $rc (logs in $out)"
  [ $grc -eq 0 ] && grep -q "^DONE 0" "$out/$name-server.log" || fail "$name server: exit $grc"
  [ "$(grep -c '^PASS ping [0-9]' "$out/$name-server.log")" -eq $values ] || fail "$name server: pings missing"
  grep -q "RPC 'pong' is not allowed" "$out/$name-server.log" || fail "$name server: Godot did not refuse pong"
}
"$repo/tests/interop/godot/install_godot3.sh" >/dev/null || fail "install_godot3.sh failed"
godot3 g323 godot3-server
if "$repo/tests/interop/godot/godot36" --version >/dev/null 2>&1; then
  godot3 g362 "$repo/tests/interop/godot/godot36"
else
  echo "scene interop: Godot 3.6.2 not installed, skipped"
fi

# The Rust bot against a Godot server. godot_server LOG ARGS...: starts it in the background
# with its pid in $pid (it stops by itself once its bots are done, or after 25 s) and waits
# until it listens.
godot_server() {
    local log=$1; shift
    (cd "$out" && exec timeout 40 "$godot" --headless -s rpc_server_g4.gd -- "$port" "$@") >"$out/$log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do grep -q "^READY" "$out/$log" 2>/dev/null && break; sleep 0.1; done
}
port=$((port + 1))
godot_server godot-pair.log --clients 2 --pair
timeout 30 "$bot" "ws://127.0.0.1:$port" --pair >"$out/bot-a.log" 2>&1 & a=$!
timeout 30 "$bot" "ws://127.0.0.1:$port" --pair >"$out/bot-b.log" 2>&1; rb=$?
wait "$a"; ra=$?
wait "$pid"; rs=$?
grep -hE "^(FAIL|DONE)|calls|whispers|announcements|refused" "$out/bot-a.log" "$out/bot-b.log" "$out/godot-pair.log"
[ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "bots: exit $ra and $rb (logs in $out)"
[ $rs -eq 0 ] || fail "Godot server: exit $rs (logs in $out)"
[ "$(grep -c '^PASS check' "$out/godot-pair.log")" -ge 100 ] || fail "Godot checked too few values"

port=$((port + 1))
godot_server godot-auth.log --clients 1 --rejects 1 --token s3cret
timeout 30 "$bot" "ws://127.0.0.1:$port" --auth-token wrong >"$out/bot-wrong.log" 2>&1 & w=$!
timeout 30 "$bot" "ws://127.0.0.1:$port" --auth-token s3cret >"$out/bot-auth.log" 2>&1; rr=$?
wait "$w"; rw=$?
wait "$pid"; rs=$?
grep -hE "^(FAIL|DONE)|auth" "$out/bot-auth.log" "$out/bot-wrong.log" "$out/godot-auth.log"
[ $rr -eq 0 ] || fail "bot with the token: exit $rr"
[ $rw -ne 0 ] || fail "bot with a wrong token passed"
grep -q "peer_authentication_failed 1" "$out/bot-wrong.log" || fail "wrong token: the bot saw no auth failure"
[ $rs -eq 0 ] || fail "Godot auth server: exit $rs (a wrong token admitted, or the right one refused)"

MP_OUT="$out/serve-auth" bash "$here/serve_auth.sh" || fail "multipeer serve --auth-token"
echo "scene interop: passed"
