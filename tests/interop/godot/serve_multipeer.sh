#!/usr/bin/env bash
# Runs multipeer-mio's `multipeer serve` as the runner's --server-cmd, with the flags the
# scenario's Godot version needs (ci.sh's mio-serve combinations):
#
#   MULTIPEER_BIN  the built binary (target/debug/multipeer)
#   MP_PORT, MP_BIND      where to listen (set by the runner)
#   MP_VERSION     3: --protocol godot3 (Godot 3's framing and set_buffers(64, 1024, 64, 1024)
#                  limits) and --handshake-timeout 1, 3.2.3's fixed 1 s; 4: the defaults
#   MP_TLS_CERT, MP_TLS_KEY   set by the runner's --tls: a wss:// server with that certificate
#
# The runner stops it with SIGTERM (it closes every peer with 1001 and exits 0).
set -euo pipefail
args=(serve --quiet --listen "${MP_BIND:-127.0.0.1}:${MP_PORT:?MP_PORT is set by the runner}")
if [[ "${MP_VERSION:-4}" == 3 ]]; then
  args+=(--protocol godot3 --handshake-timeout 1)
fi
if [[ -n "${MP_TLS_CERT:-}" ]]; then
  args+=(--tls-cert "$MP_TLS_CERT" --tls-key "${MP_TLS_KEY:?MP_TLS_KEY goes with MP_TLS_CERT}")
fi
exec "${MULTIPEER_BIN:?MULTIPEER_BIN names the multipeer binary}" "${args[@]}"
