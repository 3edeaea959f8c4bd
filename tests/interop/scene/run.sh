#!/usr/bin/env bash
# SceneMultiplayer against the real Godot 4.6.3: io-std's `rpc_server` example serves Godot
# clients (rpc_client_g4.gd). Checks: a client's RPCs with one value of many Variant types
# arrive decoded (the server echoes each back with an RPC of its own, which the client compares
# with what it sent, sender 1); a broadcast RPC from the server; with --auth-token, a client
# with the right token is admitted and one with a wrong token is dropped at the auth timeout;
# two clients calling each other through the server's relay, and an authority-only method
# called by a client refused by Godot and by the server.
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
(cd "$repo" && cargo build -q --locked -p multipeer-std --example rpc_server --example rpc_bot) || fail "build failed"
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/examples/rpc_server"
bot="${CARGO_TARGET_DIR:-$repo/target}/debug/examples/rpc_bot"
rm -rf "$out"; mkdir -p "$out"; cp "$here/rpc_client_g4.gd" "$here/rpc_server_g4.gd" "$out/"
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
