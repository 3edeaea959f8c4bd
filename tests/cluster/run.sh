#!/usr/bin/env bash
# Rooms spanning several `multipeer serve --cluster` instances through the distribution's
# nats-server (issue 16, CLUSTER.md). Installs nats-server if missing; every test starts its own
# nats-server on a free loopback port and its instances, and stops them.
#   1. Rust clients of one room over three instances: one world, per-sender order, zero loss.
#   2. SIGKILL of one instance: its peers leave everyone's view within the 3 s deadline, the
#      rest relays on with zero loss; a restarted instance's clients join the same room.
#   3. Forged and malformed messages on the room and node subjects: nothing crashes, nothing
#      changes, they are counted.
#   4. A broker outage: reported, local relaying goes on, the rooms join again after it.
#   5. Real Godot 4.6.3 clients of one room over three instances (send_bytes and RPCs in order),
#      then SIGKILL of an instance under Godot clients, and a restart.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if ! command -v nats-server >/dev/null && [[ ! -x /usr/sbin/nats-server ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
fi

cargo test --locked -p multipeer-tests --test cluster_serve -- --ignored --test-threads 1 --nocapture

if [[ "${CLUSTER_GODOT:-1}" == 1 ]]; then
    bash tests/interop/godot/install_godot4.sh
    # The tests above built `multipeer` with the cluster feature and kept it as multipeer-cluster.
    target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    MULTIPEER_CLUSTER_BIN="$target_dir/debug/multipeer-cluster" \
        python3 tests/interop/godot/scenarios.py --version 4 --scenario cluster --no-control \
        --out "${MP_OUT:-/tmp/multipeer-cluster-godot}"
fi
