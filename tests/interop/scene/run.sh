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
(cd "$repo" && cargo build -q --locked -p multipeer-std --example rpc_server) || fail "build failed"
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/examples/rpc_server"
rm -rf "$out"; mkdir -p "$out"; cp "$here/rpc_client_g4.gd" "$out/"
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
echo "scene interop: passed"
