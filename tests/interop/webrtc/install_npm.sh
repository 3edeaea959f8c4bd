#!/usr/bin/env bash
# Installs the npm packages of the WebRTC interop peers (node-datachannel, ws) into DIR
# (default tests/.tools/webrtc, gitignored), pinned; does nothing when they are there.
# Shared by tests/interop/webrtc/run.sh and tests/interop/turn/nat_lab.sh.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/../../.." && pwd)"
TOOLS="${1:-$REPO/tests/.tools/webrtc}"
mkdir -p "$TOOLS"
if [ ! -d "$TOOLS/node_modules/node-datachannel" ] || [ ! -d "$TOOLS/node_modules/ws" ]; then
  printf '{"private": true, "dependencies": {"node-datachannel": "0.33.4", "ws": "8.18.3"}}\n' \
    > "$TOOLS/package.json"
  (cd "$TOOLS" && npm install --no-audit --no-fund --silent) || exit 1
fi
