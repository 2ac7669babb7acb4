#!/usr/bin/env bash
# graph-emulator throughput: starts an emulator on an ephemeral port, seeds
# one tenant, user and app, takes a client-credentials token and drives two
# simple Graph reads with wrk (installed if missing). Target: >= 20,000
# requests/s on 2 cores with latency injection off.
#   bench/run-emulator.sh [CONNECTIONS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq wrk >/dev/null
fi
conns="${1:-32}"
secs="${2:-5}"
out="$(mktemp)"
build/bin/graph-emulator --listen 127.0.0.1:0 --mailbox-limit 100000000 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.1; done
base="$(sed -n 's/^graph-emulator listening on //p' "$out")"
curl -sf -X POST "$base/_emulator/tenants" \
  -d '{"domain":"bench.example","users":[{"userPrincipalName":"u@bench.example"}]}' >/dev/null
curl -sf -X POST "$base/_emulator/apps" \
  -d '{"client_id":"bench","client_secret":"s","tenants":["bench.example"]}' >/dev/null
token="$(curl -sf -X POST "$base/bench.example/oauth2/v2.0/token" \
  -d 'grant_type=client_credentials&client_id=bench&client_secret=s' |
  sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"
echo "machine: $(nproc) cores, $(uname -sr); $conns connections, ${secs}s each"
for path in /v1.0/users/u@bench.example /v1.0/users/u@bench.example/calendars; do
  echo "== GET $path"
  wrk -t1 -c"$conns" -d"${secs}s" -H "Authorization: Bearer $token" "$base$path" |
    grep -E 'Latency|Requests/sec|Non-2xx'
done
