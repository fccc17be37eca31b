#!/usr/bin/env bash
# Load generator throughput: `pacer generate` (closed model: N users, no think time) against
# oha and wrk with the same N connections, the same duration and the same target (`pacer mock`
# with its limits off), alternated round by round in one run so machine noise hits all alike.
# Then the open model: the arrival rate `pacer generate` achieves when asked for 20,000/s.
#
#   bash bench/generate.sh                          # 3 rounds of 10 s, 50 connections
#   ROUNDS=5 DURATION=15 CONNS=64 bash bench/generate.sh
#   OPEN_RATE=30000 bash bench/generate.sh
#
# Installs Debian's wrk and (with cargo) oha when missing; a tool that cannot be installed is
# left out and said so. Prints requests per second and p99 per round, then medians and the ratio
# of pacer to the best of the others (target >= 0.9), then the open-model figures.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
OPEN_RATE=${OPEN_RATE:-20000}
OPEN_DURATION=${OPEN_DURATION:-10}
PATH_UNDER_TEST=${PATH_UNDER_TEST:-/api/v2/users}
out=bench/out/generate
mkdir -p "$out"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk; then
  echo "bench: installing wrk" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >&2 || true
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! need oha && [ "${OHA_INSTALL:-1}" = 1 ]; then
  echo "bench: installing oha with cargo (a few minutes, once)" >&2
  cargo install oha --locked --quiet >&2 || echo "bench: oha could not be installed" >&2
fi
tools=(pacer)
need oha && tools+=(oha) || echo "bench: oha unavailable; comparing with wrk only" >&2
need wrk && tools+=(wrk) || echo "bench: wrk unavailable" >&2

cargo build --release --quiet
bin=target/release/pacer

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
url="http://127.0.0.1:$port$PATH_UNDER_TEST"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

printf 'default_limit: off\n' > "$out/mock.yaml"
RUST_LOG=warn "$bin" mock --listen "127.0.0.1:$port" --config "$out/mock.yaml" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

cat > "$out/closed.yaml" <<YAML
target: http://127.0.0.1:$port
phases: [{ name: closed, duration: ${DURATION}s, users: $CONNS }]
requests: [{ path: $PATH_UNDER_TEST }]
YAML
cat > "$out/open.yaml" <<YAML
target: http://127.0.0.1:$port
max_in_flight: 1000
phases: [{ name: open, duration: ${OPEN_DURATION}s, rate: $OPEN_RATE/s }]
requests: [{ path: $PATH_UNDER_TEST }]
YAML

to_ms() { # wrk latency like 1.23ms / 850.00us / 1.02s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
measure() { # tool round -> "rps p99ms"
  local f="$out/$1-$2"
  case "$1" in
    pacer)
      "$bin" generate --scenario "$out/closed.yaml" --out "$f.json" > "$f.txt"
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f %.3f" % (r["rps"], r["latency_ms"]["p99"]))' "$f.json" ;;
    oha)
      oha -c "$CONNS" -z "${DURATION}s" --no-tui --output-format json "$url" > "$f.json"
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f %.3f" % (r["summary"]["requestsPerSec"], r["latencyPercentiles"]["p99"] * 1000))' "$f.json" ;;
    wrk)
      wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url" > "$f.txt"
      echo "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$f.txt") $(to_ms "$(awk '$1 == "99%" {print $2}' "$f.txt")")" ;;
  esac
}

# Warm the mock (allocator, page cache) before measuring.
for t in "${tools[@]}"; do [ "$t" = wrk ] && wrk -t1 -c8 -d2s "$url" >/dev/null; done

echo "closed model: $CONNS connections, ${DURATION}s, GET $PATH_UNDER_TEST on pacer mock (limits off)"
printf '%-6s %-6s %10s %10s\n' round tool req/s p99_ms
: > "$out/results.txt"
for round in $(seq "$ROUNDS"); do
  # Rotate the order so no tool always runs first or last.
  order=("${tools[@]:round % ${#tools[@]}}" "${tools[@]:0:round % ${#tools[@]}}")
  for t in "${order[@]}"; do
    read -r rps p99 < <(measure "$t" "$round")
    printf '%-6s %-6s %10s %10s\n' "$round" "$t" "$rps" "$p99"
    echo "$t $rps $p99" >> "$out/results.txt"
  done
done

python3 - "$out/results.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
tools = sorted({r[0] for r in rows})
med = {t: (statistics.median(float(r[1]) for r in rows if r[0] == t),
           statistics.median(float(r[2]) for r in rows if r[0] == t)) for t in tools}
print()
for t in tools:
    print(f"median {t:<6} {med[t][0]:>10.0f} req/s   p99 {med[t][1]:.2f} ms")
others = [t for t in tools if t != "pacer"]
if others:
    best = max(others, key=lambda t: med[t][0])
    print(f"pacer / best ({best}): {med['pacer'][0] / med[best][0]:.3f}  (target >= 0.9)")
PY

echo
echo "open model: $OPEN_RATE/s for ${OPEN_DURATION}s, max_in_flight 1000"
curl -s -X POST "http://127.0.0.1:$port/__mock/reset" >/dev/null
"$bin" generate --scenario "$out/open.yaml" --out "$out/open.json" > "$out/open.txt"
served=$(curl -s "http://127.0.0.1:$port/__mock/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_total"])')
python3 - "$out/open.json" "$OPEN_RATE" "$served" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rate = float(sys.argv[2]); served = int(sys.argv[3])
p = r["by_phase"]["open"]
dropped = r["error_kinds"].get("dropped", 0)
sent = r["requests"] - dropped
print(f"arrivals scheduled {r['requests']}, sent {sent}, dropped {dropped}, received by the mock {served}")
print(f"achieved arrival rate {p['achieved_rps']:.1f}/s ({(p['achieved_rps'] / rate - 1) * 100:+.2f}% of {rate:.0f}/s)")
print(f"sent rate {sent / p['duration_s']:.1f}/s ({(sent / p['duration_s'] / rate - 1) * 100:+.2f}%)")
lag = p["schedule_lag_ms"]
print(f"schedule lag ms: p50 {lag['p50']:.3f} p99 {lag['p99']:.3f} max {lag['max']:.3f}")
lat = r["latency_ms"]
print(f"latency from intended start ms: p50 {lat['p50']:.3f} p99 {lat['p99']:.3f} max {lat['max']:.3f}")
PY
