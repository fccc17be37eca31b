#!/usr/bin/env bash
# Shaping overhead and queue cost, measured side by side in one run:
#
#  1. requests per second through pacer with limits that never bind, against the same pacer
#     binary passing through (no limits), alternated round by round (target: >= 0.95);
#  2. resident memory added by 10,000 queued requests (target: <= 64 MiB);
#  3. how late a queued request leaves after its slot (target: within 1 ms), from the limiter's
#     own release schedule measured in a release build.
#
#   bash bench/shaping.sh           ROUNDS=5 DURATION=10s bash bench/shaping.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
out=bench/out
mkdir -p "$out"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2; }
cargo build --release --quiet
bin=target/release/pacer
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

mock_port=$(free_port); plain_port=$(free_port); shaped_port=$(free_port); queue_port=$(free_port)
echo "default_limit: off" > "$out/mock.yaml"
RUST_LOG=warn "$bin" mock --listen "127.0.0.1:$mock_port" --config "$out/mock.yaml" & pids+=($!)

cat > "$out/plain.yaml" <<YAML
listen: 127.0.0.1:$plain_port
upstreams: { mock: { base_url: 'http://127.0.0.1:$mock_port' } }
YAML
# Limits that never bind: a huge rate and cap, keyed per token like the real configuration.
cat > "$out/shaped.yaml" <<YAML
listen: 127.0.0.1:$shaped_port
upstreams: { mock: { base_url: 'http://127.0.0.1:$mock_port' } }
limits:
  per-token: { rate: 1000000/s, burst: 100000, key: token }
  global-cap: { concurrency: 100000 }
routes:
  - { match: '* /api/v2/**', limits: [per-token, global-cap] }
YAML
# A limit that binds hard: one request per hour, so everything after the first queues. The
# limiter refuses at once a request whose slot lies past max_wait, so max_wait must reach the
# last one's slot, 10,000 hours away; with 1h, all but one request got an immediate 429 and
# the part measured idle connections instead of queued requests.
cat > "$out/queue.yaml" <<YAML
listen: 127.0.0.1:$queue_port
upstreams: { mock: { base_url: 'http://127.0.0.1:$mock_port' } }
limits:
  slow: { rate: 1/h, queue: { max_depth: 20000, max_wait: 20000h } }
routes:
  - { match: '* /api/v2/**', limits: [slow] }
YAML
for cfg in plain shaped queue; do RUST_LOG=warn "$bin" proxy --config "$out/$cfg.yaml" & pids+=($!); done
queue_pid=$!
wait_port "$mock_port"; wait_port "$plain_port"; wait_port "$shaped_port"; wait_port "$queue_port"

echo "== 1. shaping overhead (limits never bind)"
auth='Authorization: Bearer bench-token'
for p in $plain_port $shaped_port; do wrk -t1 -c8 -d2s -H "$auth" "http://127.0.0.1:$p/api/v2/users" >/dev/null; done
: > "$out/shaping.txt"
for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then order="plain shaped"; else order="shaped plain"; fi
  for who in $order; do
    port=$plain_port; [ "$who" = shaped ] && port=$shaped_port
    rps=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "$auth" "http://127.0.0.1:$port/api/v2/users" | awk '/Requests\/sec/ {print $2}')
    printf '%-6s %-7s %10s req/s\n' "$round" "$who" "$rps"
    echo "$who $rps" >> "$out/shaping.txt"
  done
done
python3 - "$out/shaping.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = lambda w: statistics.median(float(r[1]) for r in rows if r[0] == w)
print(f"median req/s: pass-through {med('plain'):.0f}  shaped {med('shaped'):.0f}  ratio {med('shaped')/med('plain'):.3f}  (target >= 0.95)")
PY

echo "== 2. memory of 10,000 queued requests"
# Connections first, then a request on each, so the figure splits into what an open HTTP/1.1
# connection costs and what its queued request adds.
python3 - "$queue_port" "$queue_pid" <<'PY'
import asyncio, resource, sys
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), 10000
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
def rss():
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")) / 1024
# The head a JMeter HTTP sampler sends with a bearer token: queued requests hold their heads, so
# a bare two-line request would understate the memory.
head = ("GET /api/v2/users?i={} HTTP/1.1\r\nHost: api.mypurecloud.com\r\n"
        "Connection: keep-alive\r\nUser-Agent: Apache-HttpClient/4.5.14 (Java/17.0.12)\r\n"
        "Accept: application/json\r\n"
        "Authorization: Bearer 0123456789abcdef0123456789abcdef0123456789abcdef\r\n\r\n")
async def settle():
    # RSS is read once the proxy has caught up: the figure stops moving.
    last = -1.0
    while abs(rss() - last) > 0.2:
        last = rss()
        await asyncio.sleep(0.5)
    return last
async def main():
    before = rss()
    conns = []
    for start in range(0, n, 500):
        batch = range(start, min(start + 500, n))
        conns += await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in batch))
    opened = await settle()
    for i, (_, w) in enumerate(conns):
        w.write(head.format(i).encode())
        if i % 500 == 499:
            await w.drain()
    queued = await settle()
    print(f"RSS before {before:.1f} MiB; {n} open connections +{opened - before:.1f} MiB "
          f"({(opened - before) * 1024 * 1024 / n:.0f} B each); a request queued on each "
          f"+{queued - opened:.1f} MiB ({(queued - opened) * 1024 * 1024 / n:.0f} B each)")
    print(f"10,000 queued requests with their connections: +{queued - before:.1f} MiB (target <= 64 MiB)")
asyncio.run(main())
PY

echo "== 3. release lateness of queued requests"
cargo test --release --quiet --test shape -- --ignored --nocapture release_lateness 2>/dev/null | grep -E "lateness|granted|observed|OS alone" || echo "(lateness benchmark not found)"
