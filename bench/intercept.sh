#!/usr/bin/env bash
# What TLS interception costs: requests/s over one keep-alive connection and new connections/s,
# intercepted (CONNECT + TLS with pacer's leaf) against plain absolute-form, in one process.
#   bash bench/intercept.sh                       # 5 s per measurement, 4 parallel clients
#   BENCH_SECONDS=10 BENCH_CONNS=8 bash bench/intercept.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUST_LOG=${RUST_LOG:-error} cargo run --release --quiet --example intercept_bench
