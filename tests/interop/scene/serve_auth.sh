#!/usr/bin/env bash
# `multipeer serve --auth-token` against real Godot 4.6.3 clients (auth_client_g4.gd): two
# clients that send the right token are admitted and call each other through the relay; one
# with a wrong token and one without auth_callback are dropped at the auth timeout, never
# announced to the others, and the server logs why and with which close reason.
#
# usage: tests/interop/scene/serve_auth.sh    Prints "serve auth: passed" or "... FAILED".
# Environment: MP_OUT (logs, default /tmp/multipeer-serve-auth), CARGO_TARGET_DIR.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${MP_OUT:-/tmp/multipeer-serve-auth}"
godot="$repo/tests/interop/godot/godot4"
fail() { echo "serve auth: $*" >&2; echo "serve auth: FAILED"; exit 1; }

"$repo/tests/interop/godot/install_godot4.sh" >/dev/null || fail "install_godot4.sh failed"
(cd "$repo" && cargo build -q --locked -p multipeer-mio --bin multipeer) || fail "build failed"
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/multipeer"
rm -rf "$out"; mkdir -p "$out"; cp "$here/auth_client_g4.gd" "$out/"
port=$((20000 + RANDOM % 20000))

# Generous timeouts: four Godot processes start at once, and CI machines are loaded.
timeout 60 "$bin" serve --listen "127.0.0.1:$port" --auth-token s3cret --auth-timeout 6 \
    --handshake-timeout 15 >"$out/serve.log" 2>&1 &
server=$!
for _ in $(seq 300); do grep -q "listening" "$out/serve.log" 2>/dev/null && break; sleep 0.1; done
client() { local log=$1; shift; (cd "$out" && exec timeout 50 "$godot" --headless -s auth_client_g4.gd -- "ws://127.0.0.1:$port" "$@") >"$out/$log" 2>&1; }
client ok-a.log --token s3cret --stay 7 --expect admitted & a=$!
client ok-b.log --token s3cret --stay 7 --expect admitted & b=$!
client wrong.log --token wrong --expect refused & w=$!
client none.log --expect refused & n=$!
wait "$a"; ra=$?; wait "$b"; rb=$?; wait "$w"; rw=$?; wait "$n"; rn=$?
kill -TERM "$server" 2>/dev/null; wait "$server"
grep -hE "^(PASS|FAIL|DONE)" "$out"/ok-a.log "$out"/ok-b.log "$out"/wrong.log "$out"/none.log
grep -E "auth" "$out/serve.log" | tail -n 5
[ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "right-token clients: exit $ra and $rb (logs in $out)"
[ $rw -eq 0 ] || fail "wrong-token client: exit $rw (logs in $out)"
[ $rn -eq 0 ] || fail "client without a token: exit $rn (logs in $out)"
grep -q 'authentication failed (wrong token): closed with 1008 "authentication failed"' "$out/serve.log" \
    || fail "the server did not log the wrong token's refusal"
grep -q 'authentication failed (no token): closed with 1008 "authentication failed"' "$out/serve.log" \
    || fail "the server did not log the missing token's refusal"
echo "serve auth: passed"
