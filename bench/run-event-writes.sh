#!/usr/bin/env bash
# Event write-path benchmark: starts a fresh crmsyncd (temporary data dir,
# ephemeral port), drives it with crmsync-loadgen, stops it, and prints the
# load generator's report. Extra arguments go to crmsync-loadgen, e.g.
#   bench/run-event-writes.sh --connections 32 --duration 10
# Set NODE_ARGS to pass flags to crmsyncd (e.g. NODE_ARGS=--sync-writes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null

dir="$(mktemp -d /tmp/crmsync-bench-XXXXXX)"
token="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cleanup() {
  if [ -n "${node_pid:-}" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid"
    wait "$node_pid" || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# shellcheck disable=SC2086
build/bin/crmsyncd --listen 127.0.0.1:0 --data-dir "$dir/data" \
  --admin-token "$token" --log-level warn ${NODE_ARGS:-} >"$dir/out" &
node_pid=$!
for _ in $(seq 1 100); do
  if grep -q "listening on" "$dir/out"; then break; fi
  sleep 0.1
done
url="$(sed -n 's/^crmsyncd listening on //p' "$dir/out")"
if [ -z "$url" ]; then
  echo "crmsyncd did not start" >&2
  exit 1
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "node:    $url ${NODE_ARGS:-}"
build/bin/crmsync-loadgen --node "$url" --admin-token "$token" "$@"
