#!/usr/bin/env bash
# Pass-through throughput: pacer against nginx as a reverse proxy, same upstream (`pacer mock`
# with its limits off), alternated round by round in one run so machine noise hits both alike.
#
#   bash bench/passthrough.sh                 # 3 rounds of 10 s each
#   ROUNDS=5 DURATION=15s CONNS=64 bash bench/passthrough.sh
#   PACER_CONFIG_EXTRA=bench/shaping-extra.yaml bash bench/passthrough.sh   # with limits
#   FLOOR=1 bash bench/passthrough.sh         # also examples/hyper_floor.rs, a bare hyper proxy
#   ROUTES=20 bash bench/passthrough.sh       # also a pacer with 20 routes, the request on the last
#   BASELINE=../old/target/release/pacer bash bench/passthrough.sh   # also another pacer build
#   (both set: the other build with the 20 routes as well, `baseline_routes`)
#                                             # (an earlier commit's), same config, side by side
#
# Installs Debian's nginx-light and wrk when missing. Prints requests per second and p99 for each
# round, then the medians and the ratios pacer/nginx.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
PATH_UNDER_TEST=${PATH_UNDER_TEST:-/api/v2/users}
out=bench/out
mkdir -p "$out"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  echo "bench: installing nginx-light and wrk" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk) >&2
fi

cargo build --release --quiet
bin=target/release/pacer
if [ -n "${FLOOR:-}" ]; then cargo build --release --quiet --example hyper_floor; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port=$(free_port); pacer_port=$(free_port); nginx_port=$(free_port); floor_port=$(free_port)
routes_port=$(free_port); baseline_port=$(free_port); baseline_routes_port=$(free_port)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The upstream: the mock without limits, so both proxies see the same fast, always-200 server.
cat > "$out/mock.yaml" <<YAML
default_limit: off
YAML
RUST_LOG=warn "$bin" mock --listen "127.0.0.1:$mock_port" --config "$out/mock.yaml" &
pids+=($!)

{
  echo "listen: 127.0.0.1:$pacer_port"
  echo "upstreams:"
  echo "  mock: { base_url: 'http://127.0.0.1:$mock_port' }"
  if [ -n "${PACER_CONFIG_EXTRA:-}" ]; then cat "$PACER_CONFIG_EXTRA"; fi
} > "$out/pacer.yaml"
RUST_LOG=warn "$bin" proxy --config "$out/pacer.yaml" &
pids+=($!)

# `routes`: the same pacer with ROUTES routes (no limits), the request matching only the last, so
# every request tries them all: literal, `{id}` and `**` segments, and a method that differs.
if [ -n "${ROUTES:-}" ]; then
  {
    echo "listen: 127.0.0.1:$routes_port"
    echo "upstreams:"
    echo "  mock: { base_url: 'http://127.0.0.1:$mock_port' }"
    if [ -n "${PACER_CONFIG_EXTRA:-}" ]; then cat "$PACER_CONFIG_EXTRA"; fi
    echo "routes:"
    for i in $(seq $((ROUTES - 2))); do
      case $((i % 3)) in
        0) echo "  - match: \"GET /api/v2/area$i/{id}/**\"" ;;
        1) echo "  - match: \"GET /api/v2/**/item$i\"" ;;
        2) echo "  - match: \"* /api/v2/area$i/*\"" ;;
      esac
    done
    echo "  - match: \"POST $PATH_UNDER_TEST\""
    echo "  - match: \"GET $PATH_UNDER_TEST\""
  } > "$out/pacer-routes.yaml"
  RUST_LOG=warn "$bin" proxy --config "$out/pacer-routes.yaml" &
  pids+=($!)
fi

# `baseline`: another pacer binary (BASELINE) with the same config, to compare builds in one run.
if [ -n "${BASELINE:-}" ]; then
  sed "s/^listen: .*/listen: 127.0.0.1:$baseline_port/" "$out/pacer.yaml" > "$out/pacer-baseline.yaml"
  RUST_LOG=warn "$BASELINE" proxy --config "$out/pacer-baseline.yaml" &
  pids+=($!)
  if [ -n "${ROUTES:-}" ]; then
    sed "s/^listen: .*/listen: 127.0.0.1:$baseline_routes_port/" "$out/pacer-routes.yaml" > "$out/pacer-baseline-routes.yaml"
    RUST_LOG=warn "$BASELINE" proxy --config "$out/pacer-baseline-routes.yaml" &
    pids+=($!)
  fi
fi

cat > "$out/nginx.conf" <<NGINX
worker_processes auto;
pid $PWD/$out/nginx.pid;
error_log $PWD/$out/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
NGINX
nginx -c "$PWD/$out/nginx.conf" -g 'daemon off;' &
pids+=($!)

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
contenders="nginx pacer"
if [ -n "${FLOOR:-}" ]; then
  target/release/examples/hyper_floor "127.0.0.1:$floor_port" "127.0.0.1:$mock_port" &
  pids+=($!)
  contenders="nginx pacer floor"
fi
if [ -n "${ROUTES:-}" ]; then contenders="$contenders routes"; fi
if [ -n "${BASELINE:-}" ]; then contenders="$contenders baseline"; fi
if [ -n "${BASELINE:-}" ] && [ -n "${ROUTES:-}" ]; then contenders="$contenders baseline_routes"; fi
port_of() { case $1 in nginx) echo "$nginx_port" ;; pacer) echo "$pacer_port" ;; floor) echo "$floor_port" ;; routes) echo "$routes_port" ;; baseline) echo "$baseline_port" ;; baseline_routes) echo "$baseline_routes_port" ;; esac; }
for who in $contenders; do wait_port "$(port_of "$who")"; done
wait_port "$mock_port"

# Warm both paths (connection pools, page cache) before measuring.
for who in $contenders; do wrk -t1 -c8 -d2s "http://127.0.0.1:$(port_of "$who")$PATH_UNDER_TEST" >/dev/null; done

to_ms() { # wrk latency like 1.23ms / 850.00us / 1.02s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
measure() { # name port -> "rps p99ms"
  local res rps p99
  res=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2$PATH_UNDER_TEST")
  echo "$res" > "$out/wrk-$1-$round.txt"
  if grep -q "Non-2xx" <<<"$res"; then echo "bench: $1 returned non-2xx responses:" >&2; grep "Non-2xx" <<<"$res" >&2; fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$res")")
  echo "$rps $p99"
}

printf '%-6s %-15s %12s %10s\n' round proxy req/s p99_ms
: > "$out/results.txt"
for round in $(seq "$ROUNDS"); do
  # Alternate which goes first, so neither always runs on a warmer or cooler machine.
  order=$contenders
  if (( round % 2 == 0 )); then order=$(tr ' ' '\n' <<<"$contenders" | tac | tr '\n' ' '); fi
  for who in $order; do
    read -r rps p99 < <(measure "$who" "$(port_of "$who")")
    printf '%-6s %-15s %12s %10s\n' "$round" "$who" "$rps" "$p99"
    echo "$who $rps $p99" >> "$out/results.txt"
  done
done

python3 - "$out/results.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(who, col): return statistics.median(float(r[col]) for r in rows if r[0] == who)
n_rps, p_rps = med("nginx", 1), med("pacer", 1)
n_p99, p_p99 = med("nginx", 2), med("pacer", 2)
print(f"\nmedian req/s: nginx {n_rps:.0f}  pacer {p_rps:.0f}  ratio pacer/nginx {p_rps / n_rps:.3f}  (target >= 0.9)")
print(f"median p99 ms: nginx {n_p99:.2f}  pacer {p_p99:.2f}  ratio pacer/nginx {p_p99 / n_p99:.3f}  (target <= 1.5)")
if any(r[0] == "floor" for r in rows):
    f_rps = med("floor", 1)
    print(f"median req/s: floor (bare hyper) {f_rps:.0f}  ratio floor/nginx {f_rps / n_rps:.3f}  pacer/floor {p_rps / f_rps:.3f}")
if any(r[0] == "routes" for r in rows):
    r_rps, r_p99 = med("routes", 1), med("routes", 2)
    print(f"median req/s: pacer with routes {r_rps:.0f}  ratio routes/nginx {r_rps / n_rps:.3f}  routes/pacer {r_rps / p_rps:.3f}")
    print(f"median p99 ms: pacer with routes {r_p99:.2f}  ratio routes/nginx {r_p99 / n_p99:.3f}")
if any(r[0] == "baseline" for r in rows):
    b_rps, b_p99 = med("baseline", 1), med("baseline", 2)
    print(f"median req/s: baseline build {b_rps:.0f}  ratio baseline/nginx {b_rps / n_rps:.3f}  pacer/baseline {p_rps / b_rps:.3f}")
    print(f"median p99 ms: baseline build {b_p99:.2f}  pacer/baseline {p_p99 / b_p99:.3f}")
if any(r[0] == "baseline_routes" for r in rows):
    br_rps, br_p99 = med("baseline_routes", 1), med("baseline_routes", 2)
    print(f"median req/s: baseline build with routes {br_rps:.0f}  ratio baseline_routes/nginx {br_rps / n_rps:.3f}  routes/baseline_routes {r_rps / br_rps:.3f}")
    print(f"median p99 ms: baseline build with routes {br_p99:.2f}  routes/baseline_routes {r_p99 / br_p99:.3f}")
PY
