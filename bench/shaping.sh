#!/usr/bin/env bash
# Shaping overhead and queue cost, measured side by side in one run:
#
#  1. requests per second through pacer with limits that never bind, against the same pacer
#     binary passing through (no limits), alternated round by round (target: >= 0.95);
#  2. resident memory added by 10,000 queued requests (target: <= 64 MiB), on connections that
#     have served a request before and on fresh ones;
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
used_port=$(free_port)
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
  - { match: '* /api/v2/users', limits: [slow] }
YAML
sed "s/:$queue_port/:$used_port/" "$out/queue.yaml" > "$out/used.yaml"
for cfg in plain shaped queue used; do RUST_LOG=warn "$bin" proxy --config "$out/$cfg.yaml" & pids+=($!); done
queue_pid=${pids[-2]}; used_pid=${pids[-1]}
wait_port "$mock_port"; wait_port "$plain_port"; wait_port "$shaped_port"; wait_port "$queue_port"; wait_port "$used_port"

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
# Two fresh proxies with the same binding limit, 10,000 connections each:
#  - cold: each connection's first request is the one that queues, so the figure includes the
#    pages that any first request on a connection writes (hyper's read and write buffers);
#  - used: each connection first has one unshaped request answered, 50 connections at a time
#    (the way a JMeter thread's keep-alive connection looks after its first sample), and then
#    queues one. Its last step is what queued requests themselves add, the target's figure.
python3 - "$queue_port" "$queue_pid" "$used_port" "$used_pid" <<'PY'
import asyncio, resource, sys
n = 10000
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * n), hard))
# The head a JMeter HTTP sampler sends with a bearer token: queued requests hold their heads, so
# a bare two-line request would understate the memory.
head = ("GET {} HTTP/1.1\r\nHost: api.mypurecloud.com\r\n"
        "Connection: keep-alive\r\nUser-Agent: Apache-HttpClient/4.5.14 (Java/17.0.12)\r\n"
        "Accept: application/json\r\n"
        "Authorization: Bearer 0123456789abcdef0123456789abcdef0123456789abcdef\r\n\r\n")
def rss(pid):
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")) / 1024
async def settle(pid):
    # RSS is read once the proxy has caught up: the figure stops moving.
    last = -1.0
    while abs(rss(pid) - last) > 0.2:
        last = rss(pid)
        await asyncio.sleep(0.5)
    return last
async def answered(reader):
    status = await reader.readuntil(b"\r\n\r\n")
    length = next(int(l.split(b":")[1]) for l in status.lower().split(b"\r\n") if l.startswith(b"content-length:"))
    await reader.readexactly(length)
    assert status.startswith(b"HTTP/1.1 200") and b"connection: close" not in status.lower(), status
async def measure(port, pid, used):
    each = lambda mib: f"+{mib:.1f} MiB ({mib * 1024 * 1024 / n:,.0f} B each)"
    before = rss(pid)
    conns = []
    for start in range(0, n, 500):
        batch = range(start, min(start + 500, n))
        conns += await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in batch))
    opened = await settle(pid)
    steps = [f"{n} connections opened {each(opened - before)}"]
    if used:
        for start in range(0, n, 50):
            batch = conns[start:start + 50]
            for _, w in batch:
                w.write(head.format("/api/v2/scripts").encode())
            await asyncio.gather(*(answered(r) for r, _ in batch))
        warm = await settle(pid)
        steps.append(f"one unshaped request answered on each {each(warm - opened)}")
        opened = warm
    for i, (_, w) in enumerate(conns):
        w.write(head.format(f"/api/v2/users?i={i}").encode())
        if i % 500 == 499:
            await w.drain()
    queued = await settle(pid)
    steps.append(f"a request queued on each {each(queued - opened)}")
    print(("used" if used else "cold") + ": " + "; ".join(steps) + f"; in all +{queued - before:.1f} MiB")
    for _, w in conns:
        w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)
    return queued - opened
async def main():
    await measure(int(sys.argv[1]), int(sys.argv[2]), used=False)
    added = await measure(int(sys.argv[3]), int(sys.argv[4]), used=True)
    print(f"10,000 queued requests add +{added:.1f} MiB (target <= 64 MiB)")
asyncio.run(main())
PY

echo "== 3. release lateness of queued requests"
cargo test --release --quiet --test it -- --ignored --nocapture shape::bench::release_lateness 2>/dev/null | grep -E "lateness|granted|observed|OS " || echo "(lateness benchmark not found)"
