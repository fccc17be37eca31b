#!/usr/bin/env bash
# The seed scenarios with the platform's limits written at 100% as `quota:` against the same
# scenarios written as `rate:` at 90% (bucket rule: rate x window + burst <= N), side by side:
# for each scenario, two `pacer mock`s enforcing the platform's fixed windows, one pacer per
# config in front of each, and `pacer generate` offering about twice the binding limit through
# both at once. Test scale: the platform's 300 per 60 s per token becomes 30 per 6 s.
#
#   scenario   load (pacer generate)                          binding limit (the mock's)
#   scripts    10 users polling GET /api/v2/scripts, think 1s   30 per 6 s per token
#   flows      20 users doing PUT /api/v2/flows/{id}, no think  30 per 6 s per token
#   analytics  10 users posting the analytics query (200 ms,    30 per 6 s per token
#              5 at once at the mock, pacer's cap 5)
#   users      open model 3.3/s, GET /api/v2/users/{id}         the route's 10 per 6 s per token
#   mixed      open model 10/s, scripts:analytics 10:1          30 per 6 s per token
#
# Per scenario and config: client success (2xx of all requests; target 100%), upstream 429s
# (target 0) and utilisation of the binding limit: the API's 200s on that limit in the first
# SECONDS after the first request, against what its windows allow in that time (target >= 97%).
#   bash bench/scenarios.sh                SECONDS_PER_RUN=30 bash bench/scenarios.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_S=${SECONDS_PER_RUN:-18}   # offered load per scenario; a multiple of the 6 s window
out=bench/out/scenarios
mkdir -p "$out"
cargo build --release --quiet --bin pacer
bin=target/release/pacer

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

# The platform at test scale: fixed windows per token, the analytics query slow and capped at 5
# in flight, and a per-route limit on user lookups tighter than the token's.
cat > "$out/mock.yaml" <<YAML
default_limit: { requests: 30, window: 6s }
latency: 20ms
routes:
  - match: POST /api/v2/analytics/conversations/details/query
    concurrency: 5
    latency: 200ms
  - match: GET /api/v2/users/{userId}
    rate: { requests: 10, window: 6s }
YAML

# pacer's config: $1 port, $2 mock port, $3 per-token limit, $4 user-lookup limit.
config() {
  cat <<YAML
listen: 127.0.0.1:$1
upstreams:
  mock: { base_url: 'http://127.0.0.1:$2', hosts: [api.mypurecloud.com] }
limits:
  per-token: { $3, key: token, queue: { max_depth: 10000, max_wait: 50s } }
  users: { $4, key: token, queue: { max_depth: 10000, max_wait: 50s } }
  analytics-query: { concurrency: 5, queue: { max_depth: 1000, max_wait: 50s } }
routes:
  - { match: POST /api/v2/analytics/conversations/details/query, limits: [analytics-query, per-token] }
  - { match: 'GET /api/v2/users/{userId}', limits: [users, per-token] }
  - { match: '* /api/v2/**', limits: [per-token] }
YAML
}

# A scenario file: $1 phases line, then request lines.
scenario() {
  cat <<YAML
target: http://api.mypurecloud.com
auth: { token_url: http://api.mypurecloud.com/oauth/token, client_id: bench, client_secret: bench }
headers: { Content-Type: application/json }
timeout: 90s
max_in_flight: 10000
phases:
  - $1
requests:
YAML
  shift
  for r in "$@"; do echo "  - $r"; done
}
Q='{"interval":"2026-11-01T00:00:00Z/2026-11-02T00:00:00Z"}'
scenario "{ name: load, duration: ${RUN_S}s, users: 10, think: 1s }" \
  "{ name: poll-scripts, method: GET, path: /api/v2/scripts }" > "$out/scripts.yaml"
scenario "{ name: load, duration: ${RUN_S}s, users: 20 }" \
  "{ name: update-flow, method: PUT, path: /api/v2/flows/5b9e4a4c, body: '{\"name\":\"f\"}' }" > "$out/flows.yaml"
scenario "{ name: load, duration: ${RUN_S}s, users: 10 }" \
  "{ name: analytics, method: POST, path: /api/v2/analytics/conversations/details/query, body: '$Q' }" > "$out/analytics.yaml"
scenario "{ name: load, duration: ${RUN_S}s, rate: 200/min }" \
  "{ name: user, method: GET, path: /api/v2/users/42 }" > "$out/users.yaml"
scenario "{ name: load, duration: ${RUN_S}s, rate: 10/s }" \
  "{ name: poll-scripts, weight: 10, method: GET, path: /api/v2/scripts }" \
  "{ name: analytics, weight: 1, method: POST, path: /api/v2/analytics/conversations/details/query, body: '$Q' }" > "$out/mixed.yaml"

# What the API's windows allow on the binding limit, per scenario: requests per 6 s (every API
# request of a scenario passes its binding limit).
binding() { case $1 in users) echo 10;; *) echo 30;; esac; }

printf '%-10s %-22s %8s %9s %9s %8s %12s\n' scenario config requests success "client429" "API 429" utilisation
for name in scripts flows analytics users mixed; do
  ports=()
  for cfg in quota rate; do
    mp=$(free_port); pp=$(free_port)
    RUST_LOG=error "$bin" mock --listen "127.0.0.1:$mp" --config "$out/mock.yaml" > /dev/null & pids+=($!)
    if [ "$cfg" = quota ]; then
      config "$pp" "$mp" "quota: 30/6s" "quota: 10/6s" > "$out/$cfg.yaml"
    else # 90%: 27 per 6 s and 9 per 6 s, burst 1
      config "$pp" "$mp" "rate: 270/min, burst: 1" "rate: 90/min, burst: 1" > "$out/$cfg.yaml"
    fi
    cp "$out/$cfg.yaml" "$out/$name-$cfg-pacer.yaml"
    RUST_LOG=error "$bin" proxy --config "$out/$name-$cfg-pacer.yaml" > /dev/null & pids+=($!)
    wait_port "$mp"; wait_port "$pp"
    ports+=("$cfg:$mp:$pp")
  done
  gen=()
  for entry in "${ports[@]}"; do
    IFS=: read -r cfg mp pp <<< "$entry"
    "$bin" generate --scenario "$out/$name.yaml" --proxy "http://127.0.0.1:$pp" \
      --out "$out/$name-$cfg.json" > "$out/$name-$cfg.log" 2>&1 & gen+=($!)
  done
  for g in "${gen[@]}"; do wait "$g" || true; done
  for entry in "${ports[@]}"; do
    IFS=: read -r cfg mp pp <<< "$entry"
    curl -s "http://127.0.0.1:$mp/__mock/stats" > "$out/$name-$cfg-mock.json"
    python3 - "$out/$name-$cfg.json" "$out/$name-$cfg-mock.json" "$(binding "$name")" "$RUN_S" "$name" "$cfg" <<'PY'
import json, sys
report, mock = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
per, run_s, name, cfg = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
status = {int(k): v for k, v in report["status"].items()}
ok = sum(v for k, v in status.items() if 200 <= k < 300)
requests = report["requests"]
# The mock counts per second of its own clock, token request included; the windows start at
# the first API request, which comes right after the token.
seconds = mock["per_second"]
s0 = seconds[0]["second"] if seconds else 0
served = sum(s["requests"] - s["throttled"] for s in seconds if s0 <= s["second"] < s0 + run_s)
served -= mock["tokens_issued"]
allowed = per * run_s / 6
print(f"{name:<10} {'quota: at 100%' if cfg == 'quota' else 'rate: at 90%, burst 1':<22} {requests:>8} "
      f"{100 * ok / max(requests, 1):>8.1f}% {status.get(429, 0):>9} {mock['throttled_total']:>8} "
      f"{100 * served / allowed:>11.1f}%")
PY
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
done
