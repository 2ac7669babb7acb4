#!/usr/bin/env bash
# Initial-sync benchmark (issue 5, target a): one user with N CRM events
# (default 5000) enables calendar sync against graph-emulator with a fixed
# latency per Graph request (default 100 ± 50 ms); reports the wall time from
# PUT …/calendar-sync to "active" with every event in Office 365, next to
# the lower bound ceil(N/20)/4 × latency ($batch of 20, 4 in flight per
# mailbox), and runs the convergence checker.
#   bench/run-initial-sync.sh [EVENTS] [LATENCY_MS]
# Environment: GRAPH_LATENCY_MS and GRAPH_JITTER_MS (Graph's answer time,
# default 100 ± 50 ms, bench/lib.sh; LATENCY_MS, when given, is the
# latency), BENCH_BUILD (a build directory to use instead of build/).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_build crmsyncd graph-emulator crmsyncctl
events=${1:-5000}
export GRAPH_LATENCY_MS=${2:-${GRAPH_LATENCY_MS:-100}}
latency=$GRAPH_LATENCY_MS

bench_setup --max-initial-events "$events"

# N individually eligible events: imported in one call, then mass-updated
# (a mass update makes an imported event eligible, R19).
python3 - "$user" "$events" >"$dir/import.json" <<'EOF'
import json, sys
user, n = sys.argv[1], int(sys.argv[2])
evs = []
for i in range(n):
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    year = 2027 + i // (28 * 12)
    evs.append({"title": f"Event {i}",
                "start": f"{year}-{month:02d}-{day:02d}T{8 + i % 10:02d}:00:00Z",
                "end": f"{year}-{month:02d}-{day:02d}T{9 + i % 10:02d}:00:00Z"})
print(json.dumps({"owner": user, "events": evs}))
EOF
ids=$(curl -sf -X POST "$N/api/v1/orgs/$org/events/import" "${auth[@]}" \
  --data @"$dir/import.json" | field '" ".join(d["ids"])')
set -- $ids
while [ $# -gt 0 ]; do
  chunk=("${@:1:1000}")
  shift $(( $# < 1000 ? $# : 1000 ))
  body=$(printf '%s\n' "${chunk[@]}" | python3 -c 'import json,sys; print(json.dumps({"ids":[l.strip() for l in sys.stdin if l.strip()],"set":{"location":"HQ"}}))')
  curl -sf -X POST "$N/api/v1/orgs/$org/events/mass-update" "${auth[@]}" -d "$body" >/dev/null
done

bench_graph_latency
start=$(date +%s.%N)
curl -sf -X PUT "$N/api/v1/orgs/$org/users/$user/calendar-sync" "${auth[@]}" \
  -d '{"enabled":true}' >/dev/null
while :; do
  status=$(curl -sf "$N/api/v1/orgs/$org/users/$user/calendar-sync" "${auth[@]}")
  state=$(echo "$status" | field 'd["state"]')
  done_n=$(echo "$status" | field 'd["progress"]["done"]')
  if [ "$state" = active ] && [ "$done_n" = "$events" ]; then break; fi
  if [ "$state" = error ]; then echo "sync failed: $status" >&2; exit 1; fi
  sleep 0.05
done
end=$(date +%s.%N)
curl -sf -X POST "$E/_emulator/faults" -d '{"latency_ms":0,"jitter_ms":0}' >/dev/null

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
python3 - "$start" "$end" "$events" "$latency" <<'EOF'
import math, sys
start, end, n, lat = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wall = end - start
bound = math.ceil(n / 20) / 4 * lat / 1000
print(f"initial sync of {n} events at {lat} ms mean latency: {wall:.2f} s "
      f"(lower bound {bound:.2f} s, ratio {wall / bound:.2f})")
EOF
"$BENCH_BIN/crmsyncctl" --node "$N" --token "$admin" check "$org" | tail -3
