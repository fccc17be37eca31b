#!/usr/bin/env bash
# The cost of a shared limit (Redis on loopback) against the same limit in-process, and the
# precision of one shared rate across three instances:
#
#  1. added latency at a fixed 2,000 req/s (open model, `pacer generate`): p50/p99 through a
#     pacer with a shared per-token limit that never binds, against the same limit local
#     (target: p99 added <= 1 ms);
#  2. throughput, closed model (wrk, 50 connections): shared against local, alternated round
#     by round (target: >= 20,000 shaped req/s with the shared limit);
#  3. three pacers sharing `rate: 50/s, burst: 5` for PRECISION_S seconds, each offered more
#     than the limit (`pacer generate`, 30/s each): the most requests the mock saw in any
#     1-second window (target: <= 55) and the utilisation (target: >= 97%).
#
#   bash bench/shared.sh          ROUNDS=5 DURATION=10 PRECISION_S=60 bash bench/shared.sh
#
# REDIS_TIMEOUT (default 50ms, pacer's default) is `shared.timeout`: on a machine so loaded that
# a loopback Redis call takes longer, the pacers fall back to local limiting meanwhile, which
# the figures then measure too (the WARN lines say when). ONLY_PRECISION=1 runs part 3 alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
PRECISION_S=${PRECISION_S:-60}
REDIS_TIMEOUT=${REDIS_TIMEOUT:-50ms}
ONLY_PRECISION=${ONLY_PRECISION:-0}
out=bench/out/shared
mkdir -p "$out"
need() { command -v "$1" >/dev/null 2>&1; }
need wrk || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >&2
need redis-server || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
cargo build --release --quiet
bin=target/release/pacer
export PACER_SHARED_SECRET=bench-secret-0123456789abcdef

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

redis_port=$(free_port); mock_port=$(free_port); local_port=$(free_port); shared_port=$(free_port)
mkdir -p "$out/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$out/redis" --save '' --appendonly no >/dev/null & pids+=($!)
echo "default_limit: off" > "$out/mock.yaml"
RUST_LOG=warn "$bin" mock --listen "127.0.0.1:$mock_port" --config "$out/mock.yaml" & pids+=($!)

# One limit that never binds, keyed per token as the real configuration is; `shared` or not.
config() { # port shared(true|false) rate burst
  cat <<YAML
listen: 127.0.0.1:$1
upstreams: { mock: { base_url: 'http://127.0.0.1:$mock_port' } }
shared:
  redis: redis://127.0.0.1:$redis_port/0
  key_prefix: bench
  key_secret_env: PACER_SHARED_SECRET
  instances: 3
  timeout: $REDIS_TIMEOUT
limits:
  per-token: { rate: $3, burst: $4, key: token, shared: $2, queue: { max_depth: 100000, max_wait: 60s } }
routes:
  - { match: '* /api/v2/**', limits: [per-token] }
YAML
}
config "$local_port" false 1000000/s 100000 > "$out/local.yaml"
config "$shared_port" true 1000000/s 100000 > "$out/shared.yaml"
for cfg in local shared; do RUST_LOG=warn "$bin" proxy --config "$out/$cfg.yaml" & pids+=($!); done
for p in "$redis_port" "$mock_port" "$local_port" "$shared_port"; do wait_port "$p"; done

if [ "$ONLY_PRECISION" != 1 ]; then
echo "1. added latency at 2000 req/s for ${DURATION}s (open model), p50 / p99 ms"
open_run() { # port name
  cat > "$out/open-$2.yaml" <<YAML
target: http://127.0.0.1:$1
headers: { authorization: "Bearer bench-token" }
max_in_flight: 1000
phases: [{ name: open, duration: ${DURATION}s, rate: 2000/s }]
requests: [{ path: /api/v2/users }]
YAML
  "$bin" generate --scenario "$out/open-$2.yaml" --out "$out/open-$2.json" > /dev/null
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency_ms"]; print("%.3f %.3f" % (l["p50"], l["p99"]))' "$out/open-$2.json"
}
: > "$out/latency.txt"
for round in $(seq "$ROUNDS"); do
  for name in local shared; do
    port=$local_port; [ "$name" = shared ] && port=$shared_port
    read -r p50 p99 < <(open_run "$port" "$name")
    printf '%-6s %-7s p50 %8s p99 %8s\n' "$round" "$name" "$p50" "$p99"
    echo "$name $p50 $p99" >> "$out/latency.txt"
  done
done

echo
echo "2. throughput, closed model: wrk, $CONNS connections, ${DURATION}s"
: > "$out/throughput.txt"
for round in $(seq "$ROUNDS"); do
  for name in local shared; do
    port=$local_port; [ "$name" = shared ] && port=$shared_port
    rps=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -H 'Authorization: Bearer bench-token' \
      "http://127.0.0.1:$port/api/v2/users" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    printf '%-6s %-7s %10s req/s\n' "$round" "$name" "$rps"
    echo "$name $rps" >> "$out/throughput.txt"
  done
done
python3 - "$out/latency.txt" "$out/throughput.txt" <<'PY'
import statistics, sys
lat = [l.split() for l in open(sys.argv[1]) if l.strip()]
thr = [l.split() for l in open(sys.argv[2]) if l.strip()]
med = lambda rows, name, i: statistics.median(float(r[i]) for r in rows if r[0] == name)
print()
for name in ("local", "shared"):
    print(f"median {name:<7} p50 {med(lat, name, 1):.3f} ms  p99 {med(lat, name, 2):.3f} ms  {med(thr, name, 1):.0f} req/s")
print(f"shared adds p50 {med(lat, 'shared', 1) - med(lat, 'local', 1):.3f} ms, p99 {med(lat, 'shared', 2) - med(lat, 'local', 2):.3f} ms (target <= 1 ms)")
PY
fi

echo
echo "3. precision: three pacers share rate 50/s burst 5, each offered 30/s for ${PRECISION_S}s"
curl -s -X POST "http://127.0.0.1:$mock_port/__mock/reset" >/dev/null
redis-cli -p "$redis_port" FLUSHALL >/dev/null
ports=()
for n in 1 2 3; do
  p=$(free_port); ports+=("$p")
  config "$p" true 50/s 5 > "$out/precision-$n.yaml"
  RUST_LOG=warn "$bin" proxy --config "$out/precision-$n.yaml" & pids+=($!)
done
for p in "${ports[@]}"; do wait_port "$p"; done
gens=()
for n in 1 2 3; do
  cat > "$out/offer-$n.yaml" <<YAML
target: http://127.0.0.1:${ports[$((n-1))]}
headers: { authorization: "Bearer org-token" }
timeout: 120s
max_in_flight: 10000
phases: [{ name: offer, duration: ${PRECISION_S}s, rate: 30/s }]
requests: [{ path: /api/v2/users }]
YAML
  "$bin" generate --scenario "$out/offer-$n.yaml" --out "$out/offer-$n.json" > /dev/null & gens+=($!)
done
# The mock's per-second counts while the three run (its stats are cumulative; sample each second).
python3 - "$mock_port" "$PRECISION_S" > "$out/per-second.txt" <<'PY'
import json, sys, time, urllib.request
port, seconds = sys.argv[1], int(sys.argv[2])
def total():
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__mock/stats") as r:
        return json.load(r)["requests_total"]
last = total(); start = time.monotonic()
for i in range(1, seconds + 1):
    time.sleep(max(0.0, start + i - time.monotonic()))
    now = total(); print(now - last); last = now
PY
for g in "${gens[@]}"; do wait "$g" || true; done
python3 - "$out/per-second.txt" "$PRECISION_S" <<'PY'
import sys
counts = [int(l) for l in open(sys.argv[1]) if l.strip()]
steady = counts[1:]  # the first second holds the burst
print(f"per-second counts at the mock: max {max(counts)} (limit 50 + burst 5), min after the first {min(steady)}")
print(f"utilisation over seconds 2..{len(counts)}: {sum(steady) / (50 * len(steady)) * 100:.1f}% (target >= 97%)")
PY
