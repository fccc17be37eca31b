#!/usr/bin/env bash
# One command, no account: start the mock Genesys API and pacer in front of it, send requests
# through pacer and straight to the mock, and show what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/pacer
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

RUST_LOG=warn "$bin" mock --listen 127.0.0.1:9000 & pids+=($!)
RUST_LOG=info "$bin" proxy --config config/quickstart.yaml & pids+=($!)
for port in 9000 8080; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

# Shows each command with the token masked: credentials stay out of terminals and logs.
show() { echo; echo "\$ ${*//$token/${token:0:8}...}"; "$@" -s -w '\n-> HTTP %{http_code}\n'; }
token=$(curl -s -u demo-client:demo-secret -d grant_type=client_credentials \
  http://127.0.0.1:9000/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "mock issued a token: ${token:0:8}..."

show curl -H "Authorization: Bearer $token" http://127.0.0.1:8080/api/v2/users
show curl -x http://127.0.0.1:8080 -H "Authorization: Bearer $token" http://api.mypurecloud.com/api/v2/scripts
show curl -x http://127.0.0.1:8080 http://not-configured.example.com/api/v2/users
echo
echo "mock counters:"
curl -s http://127.0.0.1:9000/__mock/stats | python3 -m json.tool | head -30
