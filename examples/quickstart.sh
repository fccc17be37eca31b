#!/usr/bin/env bash
# One command, no account: start the mock Genesys API and pacer in front of it (config/quickstart.yaml,
# a limit of 2 requests a second per token), send requests through pacer and straight to the mock,
# and show what happened. Needs bash, curl and cargo (or PACER_BIN naming a built pacer); both
# services take free ports. On a terminal it then keeps them running, and prints commands to
# paste into another terminal, until you press Enter.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PACER_BIN:-}" ]; then
  cargo build --release --quiet
  PACER_BIN=target/release/pacer
fi
work="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# Waits for a process's start line in its log and prints the value of FIELD= in it.
started() {
  local log=$1 field=$2
  for _ in $(seq 200); do
    local value
    value=$(sed -n "s/.* started.*$field=\([^ ]*\).*/\1/p" "$log" | head -n 1)
    if [ -n "$value" ]; then echo "$value"; return; fi
    sleep 0.05
  done
  echo "quickstart: it did not start:" >&2; cat "$log" >&2; exit 1
}

RUST_LOG=info NO_COLOR=1 "$PACER_BIN" mock --listen 127.0.0.1:0 2>"$work/mock.log" & pids+=($!)
mock=$(started "$work/mock.log" url)
# config/quickstart.yaml with the mock's port and a free port for pacer itself.
sed -e "s|http://127.0.0.1:9000|$mock|" -e 's|^listen: .*|listen: 127.0.0.1:0|' \
  config/quickstart.yaml > "$work/pacer.yaml"
RUST_LOG=info NO_COLOR=1 "$PACER_BIN" proxy --config "$work/pacer.yaml" 2>"$work/pacer.log" & pids+=($!)
pacer="http://$(started "$work/pacer.log" listen)"

# Prints a command as it can be pasted back, then runs it.
show() { echo; echo "\$ $*"; eval "$*"; }

echo "mock API: $mock    pacer: $pacer    (pacer's config: $work/pacer.yaml)"
echo
echo "# A token from the mock's OAuth endpoint (any client id and secret will do):"
TOKEN=$(curl -s -u demo-client:demo-secret -d grant_type=client_credentials "$mock/oauth/token" \
  | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
echo "TOKEN=$TOKEN"

echo
echo "# pacer as the base URL (origin-form), and as an HTTP proxy (absolute-form):"
show "curl -s -w '\n-> HTTP %{http_code}\n' -H \"Authorization: Bearer \$TOKEN\" $pacer/api/v2/users"
show "curl -s -w '\n-> HTTP %{http_code}\n' -x $pacer -H \"Authorization: Bearer \$TOKEN\" http://api.mypurecloud.com/api/v2/scripts"
echo
echo "# A host no upstream lists is refused: pacer is not an open proxy."
show "curl -s -w '\n-> HTTP %{http_code}\n' -x $pacer http://not-configured.example.com/api/v2/users"

echo
echo "# Shaping: 6 requests at once on one token, against a limit of 2 a second. All get 200;"
echo "# the ones over the limit wait their turn in pacer's queue, half a second apart."
show "(for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} after %{time_total}s\n' -H \"Authorization: Bearer \$TOKEN\" $pacer/api/v2/users/\$i & done; wait)"

echo
echo "# The mock's counters: what reached the API."
show "curl -s $mock/__mock/stats; echo"

if [ -t 0 ]; then
  echo
  echo "Both keep running: paste the commands above into another terminal (with TOKEN=$TOKEN)."
  read -r -p "Press Enter to stop them. " _
fi
