#!/usr/bin/env bash
# Runs every multiplayer scenario between a server and Godot clients on loopback, for Godot 3.2.3
# and Godot 4.6.x, and checks the output lines. Ends with "N passed, N failed"; exit 1 on any
# failure. About 1 minute per version.
#
# usage: tests/interop/godot/run_godot_only.sh [--version 3,4] [--scenario main,refuse,...]
#            [--server-cmd CMD [--server-core multipeer]] [--client-cmd NAME=CMD]...
#            [--mp-bin DIR] [--mp-server] [--mp-clients A,B|*] [--label NAME]
#            [--no-control] [--proxy] [--out DIR]
#
# Environment equivalents: MP_VERSIONS, MP_SCENARIOS, SERVER_CMD, CLIENT_CMD (every client),
# CLIENT_CMD_<NAME>, MP_CONTROL=0, MP_OUT, MP_BIN, MP_SERVER=1, MP_CLIENTS, MP_SERVER_CORE,
# MP_LABEL. --mp-server / --mp-clients run multipeer's mp_server / mp_client from MP_BIN (see
# README.md); ci.sh runs every combination. Needs install_godot3.sh / install_godot4.sh first.
# A replacement server is started as `bash -c CMD` with MP_PORT, MP_BIND, MP_VERSION,
# MP_CONTROL and MP_TIMEOUT set; a replacement client gets MP_URL, MP_NAME, MP_SCENARIO and the
# other MP_* variables of README.md and must print the same lines as g4_client.gd.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v python3 >/dev/null || { echo "run_godot_only.sh: python3 is needed" >&2; exit 1; }
exec timeout --kill-after=10 600 python3 "$here/scenarios.py" "$@"
