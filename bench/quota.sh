#!/usr/bin/env bash
# Quotas against fixed windows, side by side with nginx limit_req (delay mode): the mock
# enforcing 30 per 6 s per token, each token offered twice that (figures in docs/benchmarks.md).
#   bash bench/quota.sh                              # 60 s of offering per contender, 5 tokens
#   BENCH_SECONDS=120 BENCH_TOKENS=20 bash bench/quota.sh
# nginx is looked up in /usr/sbin, /usr/local/sbin and /usr/bin (apt-get install -y nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
RUST_LOG=${RUST_LOG:-error} cargo run --release --quiet --example quota_bench
