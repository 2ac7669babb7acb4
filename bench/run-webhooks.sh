#!/usr/bin/env bash
# Webhook ingress benchmark (issue 5, target c): graph-emulator and crmsyncd
# as in a real install (Ada installs the CRM for contoso.example and turns
# on calendar sync with a few events), then crmsync-loadgen posts Graph
# change notifications for Ada's subscription, with the clientState crmsyncd
# chose, to crmsyncd's /webhooks/graph over CONNECTIONS keep-alive
# connections for SECONDS; every 202 is a notification stored in the inbox.
# Accepted notifications also wake Ada's sync run, so the node keeps doing
# delta rounds against the emulator during the run: that is part of the
# ingress cost measured, until those back-to-back rounds have spent the
# mailbox's Graph budget (10,000 requests per 10 minutes, Outlook's limit,
# enforced by crmsyncd's Graph client): from then on Ada's sync waits for
# the window and the report's "sync after" shows last_sync stopped.
# First, a 3 s run with a wrong clientState (inbox and last_sync must not
# move).
# Graph answers GRAPH_LATENCY_MS ± GRAPH_JITTER_MS late once Ada's sync is
# active (default 100 ± 50 ms, bench/lib.sh), so the sync runs the
# notifications wake go at Microsoft's pace during the ingress.
#   bench/run-webhooks.sh [CONNECTIONS] [SECONDS]
# After each run: the node's CPU time (user + system, from /proc) per
# notification it received (crmsync_notifications_total), warmup included:
# a figure that depends little on what else runs on the machine.
# PERF_DIR=DIR records each run's node with `perf record -g` (cpu-clock)
# into DIR/wrong.data and DIR/valid.data.
# CALLGRIND_DIR=DIR runs the node under valgrind's callgrind with its
# instrumentation on during each run only: DIR/callgrind.out.PID.N, one
# dump per run (wrong, then valid), whose instruction counts do not depend
# on the machine's load (the node runs about 50 times slower).
# Environment: BENCH_BUILD, NODE_ARGS, GRAPH_LATENCY_MS, GRAPH_JITTER_MS,
# PERF_DIR, CALLGRIND_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-64}
seconds=${2:-10}

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_build crmsyncd graph-emulator crmsync-loadgen
if [ -n "${CALLGRIND_DIR:-}" ]; then
  mkdir -p "$CALLGRIND_DIR"
  NODE_WRAPPER="valgrind -q --tool=callgrind --instr-atstart=no
    --callgrind-out-file=$CALLGRIND_DIR/callgrind.out.%p"
fi
# shellcheck disable=SC2086
bench_setup ${NODE_ARGS:-}

for i in 1 2 3 4 5; do
  curl -sf -X POST "$N/api/v1/orgs/$org/users/$user/events" "${auth[@]}" \
    -d "{\"title\":\"Meeting $i\",\"start\":\"2027-01-0${i}T10:00:00Z\",\"end\":\"2027-01-0${i}T11:00:00Z\"}" >/dev/null
done
curl -sf -X PUT "$N/api/v1/orgs/$org/users/$user/calendar-sync" "${auth[@]}" \
  -d '{"enabled":true}' >/dev/null
sync_status() { curl -sf "$N/api/v1/orgs/$org/users/$user/calendar-sync" "${auth[@]}"; }
for _ in $(seq 1 200); do
  state=$(sync_status | field 'd["state"]')
  if [ "$state" = active ]; then break; fi
  if [ "$state" = error ]; then echo "sync failed: $(sync_status)" >&2; exit 1; fi
  sleep 0.05
done
[ "$state" = active ] || { echo "sync not active: $(sync_status)" >&2; exit 1; }
bench_graph_latency

# The subscription crmsyncd made, as Graph (the emulator) knows it.
subscription=$(curl -sf "$E/_emulator/subscriptions" | python3 -c '
import json, sys
subs = [s for s in json.load(sys.stdin)["value"]
        if "/webhooks/graph?" in s["notificationUrl"]]
assert len(subs) == 1, subs
s = subs[0]
print(s["id"], s["clientState"], s["tenantId"], s["resource"], s["expirationDateTime"])')
read -r sub_id client_state tenant resource expiration <<<"$subscription"

status_line() {
  sync_status | field '"state %s, last_sync %s, inbox %s" % (d["state"], d["last_sync"], d["inbox"])'
}
drain() { # waits (up to about 10 s) until the sync runs caught up
  for _ in $(seq 1 100); do
    if [ "$(sync_status | field 'd["inbox"]')" = 0 ]; then return 0; fi
    sleep 0.1
  done
}
# Exit 1 only says that some answers were not 202: the report shows them.
loadgen() { "$BENCH_BIN/crmsync-loadgen" "$@" || [ $? -eq 1 ]; }
node_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$node_pid/stat"; }
notifications_received() {
  curl -sf -H "Authorization: Bearer $admin" "$N/metrics" |
    awk '/^crmsync_notifications_total/ && /outcome="received"/ { n += $NF }
         END { printf "%d", n }'
}
# measured NAME LOADGEN-ARGS...: the loadgen run, then the node's CPU per
# notification received during it (and its profile with PERF_DIR).
measured() {
  local name=$1 perf_pid="" t0 t1 n0 n1 hz
  shift
  hz=$(getconf CLK_TCK)
  t0=$(node_cpu_ticks)
  n0=$(notifications_received)
  if [ -n "${CALLGRIND_DIR:-}" ]; then
    callgrind_control -i on "$node_pid" >/dev/null
    callgrind_control -z "$node_pid" >/dev/null
  fi
  if [ -n "${PERF_DIR:-}" ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -e cpu-clock -g -p "$node_pid" -o "$PERF_DIR/$name.data" \
      2>/dev/null &
    perf_pid=$!
  fi
  loadgen "$@"
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
  fi
  if [ -n "${CALLGRIND_DIR:-}" ]; then
    callgrind_control -d "$name" "$node_pid" >/dev/null
    callgrind_control -i off "$node_pid" >/dev/null
  fi
  t1=$(node_cpu_ticks)
  n1=$(notifications_received)
  echo "node CPU:     $(echo "scale=2; ($t1 - $t0) * 1000000 / $hz / ($n1 - $n0)" | bc) µs per notification" \
    "($((n1 - n0)) received, $(echo "scale=2; ($t1 - $t0) / $hz" | bc) CPU-s)"
}
hooks=(--webhooks "$N/webhooks/graph" --subscription "$sub_id"
  --tenant-id "$tenant" --resource "$resource" --expiration "$expiration"
  --connections "$connections")

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "uptime:  $(uptime)"
echo "node:    $N ${NODE_ARGS:-}, subscription $sub_id on $resource"
echo "sync before:  $(status_line)"
echo
echo "== wrong clientState: $connections connections, 3 s"
measured wrong "${hooks[@]}" --client-state "not-$client_state" --duration 3
sleep 1
echo "sync after:   $(status_line) (nothing stored, no run)"
echo
echo "== valid clientState: $connections connections, $seconds s"
measured valid "${hooks[@]}" --client-state "$client_state" --duration "$seconds"
echo "sync after:   $(status_line)"
drain || true
echo "sync drained: $(status_line)"
echo "uptime:  $(uptime)"
