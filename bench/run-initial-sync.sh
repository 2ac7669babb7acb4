#!/usr/bin/env bash
# Initial-sync benchmark (issue 5, target a): one user with N CRM events
# (default 5000) enables calendar sync against graph-emulator with a fixed
# latency per Graph request (default 100 ± 50 ms); reports the wall time from
# PUT …/calendar-sync to "active" with every event in Office 365, next to
# the lower bound ceil(N/20)/4 × latency ($batch of 20, 4 in flight per
# mailbox), and runs the convergence checker.
#   bench/run-initial-sync.sh [EVENTS] [LATENCY_MS]
# With USERS=n (n > 1), n users of one organization (crmsync-loadgen's
# steady setup, sync left off) get EVENTS events each and all enable calendar
# sync at the same moment; reports each user's time to "active" with every
# event in Office 365 (none may starve) and checks the organization.
# Environment: GRAPH_LATENCY_MS and GRAPH_JITTER_MS (Graph's answer time,
# default 100 ± 50 ms, bench/lib.sh; LATENCY_MS, when given, is the
# latency), BENCH_BUILD (a build directory to use instead of build/).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_build crmsyncd graph-emulator crmsyncctl crmsync-loadgen
events=${1:-5000}
export GRAPH_LATENCY_MS=${2:-${GRAPH_LATENCY_MS:-100}}
latency=$GRAPH_LATENCY_MS
users=${USERS:-1}

bench_setup --max-initial-events "$events" --signin-burst 1e9 --signin-per-minute 1e9

if [ "$users" -gt 1 ]; then
  echo "uptime: $(uptime)"
  "$BENCH_BIN/crmsync-loadgen" --node "$N" --emulator "$E" --admin-token "$admin" \
    --steady-setup "$dir/users.state" --steady-no-sync --users "$users" --tenants 1 \
    | tail -1
  python3 - "$N" "$admin" "$dir/users.state" "$events" import <<'EOF2'
import json, sys, urllib.request
node, admin, state, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
hdr = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}
def call(method, path, body):
    req = urllib.request.Request(node + path, json.dumps(body).encode(), hdr, method=method)
    with urllib.request.urlopen(req) as r:
        return json.load(r)
for line in open(state):
    _, org, user = line.split()[:3]
    evs = [{"title": f"{user} event {i}",
            "start": f"2027-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T{8 + i % 10:02d}:00:00Z",
            "end": f"2027-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T{9 + i % 10:02d}:00:00Z"}
           for i in range(n)]
    ids = call("POST", f"/api/v1/orgs/{org}/events/import", {"owner": user, "events": evs})["ids"]
    # A mass update makes an imported event eligible (R19).
    call("POST", f"/api/v1/orgs/{org}/events/mass-update", {"ids": ids, "set": {"location": "HQ"}})
EOF2
  bench_graph_latency
  python3 - "$N" "$admin" "$dir/users.state" "$events" <<'EOF2'
import json, statistics, sys, threading, time, urllib.request
node, admin, state, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
hdr = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}
users = [line.split()[1:3] for line in open(state)]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(node + path, data, hdr, method=method)
    with urllib.request.urlopen(req) as r:
        return json.load(r)
times, errors = {}, []
go = threading.Barrier(len(users))
def run(org, user):
    path = f"/api/v1/orgs/{org}/users/{user}/calendar-sync"
    go.wait()
    start = time.monotonic()
    call("PUT", path, {"enabled": True})
    while time.monotonic() - start < 300:
        d = call("GET", path)
        if d["state"] == "active" and d["progress"]["done"] == n:
            times[user] = time.monotonic() - start
            return
        if d["state"] == "error":
            errors.append(f"{user}: {d}")
            return
        time.sleep(0.05)
    errors.append(f"{user}: not active after 300 s: {d['state']} {d['progress']}")
threads = [threading.Thread(target=run, args=u) for u in users]
t0 = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
wall = time.monotonic() - t0
v = sorted(times.values())
print(f"{len(users)} users x {n} events enabled at once: all active after {wall:.2f} s")
if v:
    print(f"time to active per user: min {v[0]:.2f}  p50 {statistics.median(v):.2f}  "
          f"p90 {v[int(0.9 * (len(v) - 1))]:.2f}  max {v[-1]:.2f} s")
    print("sorted: " + " ".join(f"{x:.1f}" for x in v))
for e in errors: print("FAILED " + e)
sys.exit(1 if errors else 0)
EOF2
  curl -sf -X POST "$E/_emulator/faults" -d '{"latency_ms":0,"jitter_ms":0}' >/dev/null
  o=$(awk '{print $2; exit}' "$dir/users.state")
  "$BENCH_BIN/crmsyncctl" --node "$N" --token "$admin" check "$o" | tail -3
  echo "uptime: $(uptime)"
  exit 0
fi

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
