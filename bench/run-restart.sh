#!/usr/bin/env bash
# Restart benchmark (issue 13): USERS Office 365 users (default 10,000) in
# calendar sync and idle, then crmsyncd is stopped and started again on the
# same data. Reports the time until it answers /readyz and the Graph
# requests it sends per second for WATCH seconds after the start (from its
# crmsync_graph_requests_total): a node that runs every user at start sends
# one burst of USERS requests; one that waits for each user's
# reconciliation reminder sends about USERS / reconcile interval per second.
#   bench/run-restart.sh [USERS] [WATCH]
# Environment: BENCH_BUILD, NODE_ARGS, THREADS, TENANTS as for
# bench/run-steady.sh; WAVE (users whose sync is turned on before the setup
# waits for them to be active, default 5,000).
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-10000}
watch=${2:-60}
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_build crmsyncd graph-emulator crmsyncctl crmsync-loadgen

# shellcheck disable=SC2086
bench_setup --signin-burst 1e9 --signin-per-minute 1e9 ${NODE_ARGS:-}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "node:    $N ${NODE_ARGS:-}"
echo "== setup: $users users"
"$BENCH_BIN/crmsync-loadgen" --node "$N" --emulator "$E" --admin-token "$admin" \
  --steady-setup "$dir/steady.state" --users "$users" \
  --tenants "${TENANTS:-0}" --threads "${THREADS:-16}" --enable-wave "${WAVE:-5000}"
# Idle: every user's sync is active and nothing is queued.
sleep 10
before=$(bench_graph_requests); sleep 10; after=$(bench_graph_requests)
echo "Graph requests/s while idle before the restart: $(( (after - before) / 10 )) ($after since the start)"

echo "== restart"
start=$(date +%s.%N)
bench_restart_node
until curl -sf "$N/readyz" >/dev/null; do sleep 0.05; done
ready=$(date +%s.%N)
echo "ready after: $(echo "$ready - $start" | bc) s (stop and start)"
bench_watch_graph_requests "$watch"
