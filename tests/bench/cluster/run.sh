#!/usr/bin/env bash
# Relay latency (p50/p99) and deliveries per second of one room on one `multipeer serve`
# instance against the same room spread over two instances of a cluster, in one run (release
# builds, a local nats-server; see tests/src/bin/cluster_bench.rs). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
if ! command -v nats-server >/dev/null && [[ ! -x /usr/sbin/nats-server ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
fi
cargo run --locked --release -p multipeer-tests --bin cluster_bench
