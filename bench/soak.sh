#!/usr/bin/env bash
# Mixed soak: `pacer proxy` (a child process) in front of a fault upstream, with queued,
# throttled, faulting and slow lanes of closed-loop clients (examples/soak_bench.rs says what
# each does). Prints pacer's RSS at start, middle and end, the statuses per lane, unexpected
# statuses (target 0) and POSTs processed upstream more than once (target 0).
#   bash bench/soak.sh                      # 180 s, release build
#   BENCH_SECONDS=60 PROFILE=dev bash bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
cargo build --profile "$PROFILE" --quiet --bin pacer --example soak_bench
PACER_BIN="target/$dir/pacer" RUST_LOG=${RUST_LOG:-error} "target/$dir/examples/soak_bench"
