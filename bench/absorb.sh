#!/usr/bin/env bash
# 429 absorption against the platform's contract (300 requests per 60 s per token), with a
# client asking for twice that and pacer's per-token limit set 20% too high with adaptive: true.
#   bash bench/absorb.sh                  # 150 s
#   BENCH_SECONDS=300 bash bench/absorb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUST_LOG=${RUST_LOG:-error} cargo run --release --quiet --example absorb_bench
