#!/usr/bin/env bash
# Limits learned from the API's headers, side by side with the same limit written by hand (as a
# quota and as a rate) and with AIMD only: the mock enforcing N per W per token and advertising
# it in inin-ratelimit-* headers, each token offered twice that (figures in docs/benchmarks.md).
#   bash bench/learn.sh                      # the platform's 300 per 60 s, 20 tokens, 180 s each
#   (BENCH_TOKENS, BENCH_SECONDS, BENCH_MAX_WAIT (30 s), BENCH_ONLY=learn: see examples/learn_bench.rs)
#   BENCH_PER_WINDOW=30 BENCH_WINDOW_SECONDS=6 BENCH_SECONDS=60 bash bench/learn.sh   # scaled
set -euo pipefail
cd "$(dirname "$0")/.."
RUST_LOG=${RUST_LOG:-error} cargo run --release --quiet --example learn_bench
