#!/usr/bin/env bash
# Installs Godot 3.2.3, 3.6.2 and 4.6.x, builds multipeer's mp_server and mp_client (multipeer-std),
# `multipeer serve` (multipeer-mio) and mio_client (multipeer-mio's Client), and runs every real-Godot
# interop combination, for both Godot versions:
#
#   godot-only       Godot server, Godot clients: all scenarios (checks the scenes themselves)
#   mp-server        mp_server (multipeer-std) with Godot clients: main, refuse, handshake-timeout, size
#   mp-clients       Godot server with mp_clients A, B, C: main; a scripted server with mp_client: bad-id
#   mixed-B          mp_server with Godot A, C and mp_client B: main (Godot A's RPC to B decoded by B)
#   mixed-A          mp_server with mp_client A (the prober, it also stops the server), Godot B, C: main
#   mio-serve-rooms  `multipeer serve` with rooms by path: Godot 4 clients A, B, C in /a and D, E, F
#                    in /b at once, each trio running main and seeing only its own room: rooms
#   mio-serve        `multipeer serve` (multipeer-mio; serve_multipeer.sh adds --protocol godot3 and
#                    3.2.3's 1 s handshake timeout for 3) with Godot clients, --no-control:
#                    main, size, handshake-timeout
#   godot-only-tls   wss://, Godot server (TLSOptions.server / private_key + ssl_certificate) and
#                    Godot clients trusting the test CA: main, handshake-timeout
#   mio-serve-tls-ca      `multipeer serve --tls-cert --tls-key`, Godot clients trusting the test CA
#                    (4: TLSOptions.client(cert); 3: trusted_ssl_certificate): main, size,
#                    handshake-timeout
#   mio-serve-tls-unsafe  the same with TLSOptions.client_unsafe() (3: verify_ssl = false)
#   mio-clients-tls  Godot wss:// server, every client mio_client (multipeer-mio's
#                    Client, TlsOptions::client_with(test CA)): main, size, refuse, handshake-timeout
#   mixed-B-tls      Godot wss:// server, Godot A, C and mio_client B, all client_unsafe: main
#   godot36-only, mp-server-36, mp-clients-36, mixed-B-36, mio-serve-36
#                    the plain (ws://) Godot 3 combinations above again with Godot 3.6.2 (the last
#                    3.x, `godot36`) in place of 3.2.3
#
# The TLS combinations make a test CA and a certificate for 127.0.0.1 with openssl at run time.
# Prints each combination's result, then "interop: N passed, N failed"; exit 1 on any failure in a
# combination with a multipeer end (godot-only* and godot36-only, Godot with Godot, are reported).
# Needs root for the installers (apt, debootstrap) on a fresh machine; about 5 minutes when
# Godot is installed and the binaries are built.
#
# Environment: MP_OUT (logs, default /tmp/multipeer-godot-interop-ci), MP_COMBOS (comma list of
# the names above to run a subset), CARGO_TARGET_DIR (as cargo uses it).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${MP_OUT:-/tmp/multipeer-godot-interop-ci}"
all_combos="godot-only,mp-server,mp-clients,mixed-B,mixed-A,mio-serve,mio-serve-rooms,godot-only-tls,mio-serve-tls-ca"
all_combos+=",mio-serve-tls-unsafe,mio-clients-tls,mixed-B-tls"
all_combos+=",godot36-only,mp-server-36,mp-clients-36,mixed-B-36,mio-serve-36"
combos="${MP_COMBOS:-$all_combos}"
started=$SECONDS

echo "== install Godot 3.2.3, 4.6.x and 3.6.2"
"$here/install_godot3.sh" || { echo "interop: install_godot3.sh failed"; echo "0 passed, 1 failed"; exit 1; }
"$here/install_godot4.sh" || { echo "interop: install_godot4.sh failed"; echo "0 passed, 1 failed"; exit 1; }
"$here/install_godot36.sh" || { echo "interop: install_godot36.sh failed"; echo "0 passed, 1 failed"; exit 1; }

echo "== build mp_server and mp_client (multipeer-std), multipeer serve and mio_client (multipeer-mio)"
cd "$repo" || exit 1
if ! cargo build -p multipeer-tests --bin mp_server --bin mp_client --bin mio_client ||
  ! cargo build -p multipeer-mio --bin multipeer; then
  echo "interop: cargo build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
target_dir="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
export MP_BIN="$target_dir/debug"
export MULTIPEER_BIN="$target_dir/debug/multipeer"
serve="$here/serve_multipeer.sh"
client="$target_dir/debug/mio_client"

passed=0
failed=0
reference_failed=0
summary=()

# run NAME ARGS...: one runner invocation; its "N passed, N failed" line is added to the totals.
run() {
  local name="$1"
  shift
  [[ ",$combos," == *,"$name",* ]] || return 0
  echo "== $name: run_godot_only.sh $*"
  local log="$out/$name.log"
  mkdir -p "$out"
  MP_OUT="$out/$name" "$here/run_godot_only.sh" --label "$name" "$@" 2>&1 | tee "$log" | grep -E '^(FAIL|SKIP|NOTE|== )' || true
  local line
  line="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
  if [[ -z "$line" ]]; then
    echo "$name: the runner ended without a result (see $log)"
    failed=$((failed + 1))
    summary+=("$name: no result")
    return
  fi
  local p f
  p="$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")"
  f="$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")"
  passed=$((passed + p))
  if [[ "$name" == godot-only* || "$name" == godot36-only ]] && ((f > 0)); then
    # Godot server and Godot clients only: no multipeer code in the run, so a failure is Godot's
    # own behaviour (seen: a Godot 4 wss:// reader losing a close answer in the TLS shutdown on a
    # busy machine). Reported, not asserted; every combination with a multipeer end is.
    reference_failed=$((reference_failed + f))
    summary+=("$name: $line (Godot with Godot only: reported, not asserted)")
    return
  fi
  failed=$((failed + f))
  summary+=("$name: $line")
}

run godot-only
run mp-server --mp-server --scenario main,refuse,handshake-timeout,size
run mp-clients --mp-clients '*' --scenario main,bad-id
run mixed-B --mp-server --mp-clients B --scenario main
run mixed-A --mp-server --mp-clients A --scenario main
serve_args=(--no-control --server-core multipeer --server-cmd "$serve")
run mio-serve --scenario main,size,handshake-timeout "${serve_args[@]}"
run mio-serve-rooms --version 4 --scenario rooms "${serve_args[@]}"
run godot-only-tls --tls ca --scenario main,handshake-timeout
run mio-serve-tls-ca --tls ca --scenario main,size,handshake-timeout "${serve_args[@]}"
run mio-serve-tls-unsafe --tls unsafe --scenario main,size,handshake-timeout "${serve_args[@]}"
run mio-clients-tls --tls ca --scenario main,size,refuse,handshake-timeout --client-core multipeer \
  --client-cmd "*=$client"
run mixed-B-tls --tls unsafe --scenario main --client-core multipeer --client-cmd "B=$client"
g36=(--version 3 --godot3 godot36)
run godot36-only "${g36[@]}"
run mp-server-36 "${g36[@]}" --mp-server --scenario main,refuse,handshake-timeout,size
run mp-clients-36 "${g36[@]}" --mp-clients '*' --scenario main,bad-id
run mixed-B-36 "${g36[@]}" --mp-server --mp-clients B --scenario main
run mio-serve-36 "${g36[@]}" --scenario main,size,handshake-timeout "${serve_args[@]}"

echo "== summary ($((SECONDS - started)) s, logs in $out)"
for s in "${summary[@]}"; do
  echo "  $s"
done
if ((reference_failed > 0)); then
  echo "interop: $reference_failed failed check(s) between Godot processes only (not asserted; see above)"
fi
echo "interop: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
